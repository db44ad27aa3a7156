"""Clicks on action buttons (`bot.actions.buttons`): who may, what the action sees, and
where its outcome is said.

A click is looked up and authorised again (`ActionService.run_by_hand`: the action's
``allow=``, its creator, admins), audited, and its run's outcome is said in the thread of
the clicked message; a refusal is said privately to the person who clicked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.actions.buttons import button_label
from bot.actions.service import ActionService
from bot.clock import Clock
from bot.db import Database, insert_ignoring_conflicts
from bot.errors import UsageError
from bot.models import Delivery, Hook, ThreadRoot, Trigger
from bot.outbox import Message, Outbox
from bot.slack.payloads import Click, row_id
from bot.webhooks.delivery import BadRequest, parse_body


@dataclass
class ActionButtons:
    """Handles clicks on action buttons."""

    service: ActionService
    db: Database
    clock: Clock
    outbox: Outbox

    async def on_click(self, body: dict[str, Any]) -> None:
        """Run the clicked action for the person who clicked, if they may; say why not
        privately otherwise."""
        click = Click.from_body(body)
        try:
            value = json.loads(click.value)
            name, source = str(value["action"]), str(value["from"])
        except (ValueError, KeyError, TypeError):
            return  # not one of ours: nothing to do
        try:
            action = await self.service.named(click.team_id, name, verb="run")
            context = await self._context(click.team_id, source)
            thread = await self._thread_of(body, click)
            await self.service.run_by_hand(
                click.actor,
                action,
                context,
                f"clicked {button_label(action)} under {source.replace(':', ' ')}",
                thread=thread,
            )
        except UsageError as refusal:
            await self._tell(click, str(refusal))

    async def _context(self, team_id: str, source: str) -> dict[str, Any]:
        """What the clicked action's templates see: the delivery's scope for a hook's
        message, the trigger for a trigger's."""
        kind, _, ident = source.partition(":")
        async with self.db.sessions() as session:
            if kind == "delivery":
                delivery = await session.get(Delivery, ident)
                hook = await session.get(Hook, delivery.hook_id) if delivery else None
                if delivery is not None and hook is not None and hook.team_id == team_id:
                    return _delivery_scope(delivery, hook)
            number = row_id(ident)
            if kind == "trigger" and number is not None:
                trigger = await session.get(Trigger, number)
                if trigger is not None and trigger.team_id == team_id:
                    scope = {"name": trigger.name, "kind": trigger.kind, "target": trigger.target}
                    return {"trigger": scope}
        return {}

    async def _thread_of(self, body: dict[str, Any], click: Click) -> tuple[str, str] | None:
        """A thread key for the clicked message, so the outcome line replies under it."""
        message = body.get("message")
        ts = (message.get("thread_ts") if isinstance(message, dict) else None) or click.message_ts
        if click.channel_id is None or not ts:
            return None
        key = f"click:{ts}"
        async with self.db.transaction() as session:
            row = {"channel": click.channel_id, "thread_key": key, "ts": ts}
            await insert_ignoring_conflicts(
                session, ThreadRoot, [row | {"created_at": self.clock.now()}]
            )
        return click.channel_id, key

    async def _tell(self, click: Click, text: str) -> None:
        if click.channel_id is None:
            return
        await self.outbox.send(
            Message(
                click.channel_id,
                text,
                kind="ephemeral",
                user=click.user_id,
                source="action-button",
            )
        )


def _delivery_scope(delivery: Delivery, hook: Hook) -> dict[str, Any]:
    try:
        payload = parse_body(delivery.content_type, delivery.body)
    except BadRequest:
        payload = None
    return {
        "payload": payload,
        "headers": dict(delivery.headers),
        "event": delivery.event,
        "sender": delivery.sender,
        "hook": hook.name,
    }
