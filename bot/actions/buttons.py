"""Action buttons under hook and trigger messages (``buttons=ACTION``).

A button carries only the action's name and where its message came from
(``delivery:<id>``, ``trigger:<id>``); a click (`bot.conversation.action_clicks`) is
looked up and authorised again. An action with ``confirm=yes`` has Slack's confirmation
dialog in its button, so the click only arrives once confirmed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from bot.actions.spec import names_in
from bot.models import Action, Trigger
from bot.outbox import Message
from bot.slack import blocks as kit
from bot.slack import interactive as ui

ACTION_BUTTON: Final = "action_run"


def button_label(action: Action) -> str:
    """``restart-api`` → ``Restart api``."""
    return action.name.replace("-", " ").replace("_", " ").capitalize()


def button_row(actions: Sequence[Action], source: str) -> kit.Block:
    """A row of buttons, one per action; those with ``confirm=yes`` ask first."""
    return ui.actions(
        [
            ui.button(
                button_label(action),
                f"{ACTION_BUTTON}:{action.name}",
                json.dumps({"action": action.name, "from": source}),
                confirm=_dialog(action) if action.confirm else None,
            )
            for action in actions
        ]
    )


def with_buttons(message: Message, row: kit.Block) -> Message:
    """``message`` with the button row above its footnote (a hook's "From hook …")."""
    blocks = list(message.blocks or [kit.section(message.text)])
    keep = kit.MAX_BLOCKS - 1
    if blocks and blocks[-1].get("type") == "context":
        return replace(message, blocks=[*blocks[:-1][: keep - 1], row, blocks[-1]])
    return replace(message, blocks=[*blocks[:keep], row])


async def trigger_buttons(session: AsyncSession, trigger: Trigger) -> kit.Block | None:
    """The row of a trigger's ``buttons=`` (None when it has none, or none exist now)."""
    names = names_in((trigger.settings or {}).get("buttons"))
    if not names:
        return None
    rows = await session.execute(
        select(Action).where(col(Action.team_id) == trigger.team_id, col(Action.name).in_(names))
    )
    found = {action.name: action for action in rows.scalars().all()}
    actions = [found[name] for name in names if name in found]
    return button_row(actions, f"trigger:{trigger.id}") if actions else None


def _dialog(action: Action) -> dict[str, Any]:
    return ui.confirm_dialog(
        f"Run {action.name}?",
        f"This sends {action.method} {action.url}.",
        confirm="Run it",
        deny="Cancel",
    )
