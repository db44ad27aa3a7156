"""Talking to the bot outside slash commands: @mentions, DMs and the App Home tab.

For now the bot answers with what it can do and shows each user's hooks and triggers on
its Home tab; the plain-language setup flow builds on this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from bot.clock import Clock
from bot.db import Database
from bot.models import Hook, Trigger
from bot.outbox import Message, Outbox, enqueue
from bot.slack import blocks as kit

GREETING = (
    "Hi! I post webhooks from GitHub, GitLab, Alertmanager, Grafana, Sentry, Stripe and anything "
    "that can POST into channels, and I run scheduled checks, feeds and reminders.\n"
    "Start with `/hook help` or `/trigger help`."
)


@dataclass
class Conversation:
    """Answers mentions and DMs, and publishes the Home tab."""

    db: Database
    clock: Clock
    outbox: Outbox
    slack: AsyncWebClient

    async def on_mention(self, event: dict[str, Any]) -> None:
        await self._reply(event, GREETING)

    async def on_direct_message(self, event: dict[str, Any]) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        await self._reply(event, GREETING)

    async def on_home_opened(self, event: dict[str, Any]) -> None:
        if event.get("tab") not in (None, "home"):
            return
        user = str(event.get("user", ""))
        view = {"type": "home", "blocks": await self._home_blocks()}
        try:
            await self.slack.views_publish(user_id=user, view=view)
        except SlackApiError:
            return  # the Home tab is a convenience; the next open tries again

    async def _reply(self, event: dict[str, Any], text: str) -> None:
        channel = str(event.get("channel", ""))
        async with self.db.transaction() as session:
            await enqueue(session, self.clock.now(), Message(channel, text, source="conversation"))
        self.outbox.wake()

    async def _home_blocks(self) -> list[dict[str, Any]]:
        async with self.db.sessions() as session:
            hooks = (await session.execute(select(Hook).order_by(col(Hook.name)))).scalars().all()
            triggers = (
                (await session.execute(select(Trigger).order_by(col(Trigger.name)))).scalars().all()
            )
        hook_lines = [
            f"• *{h.name}* → <#{h.channel_id}> ({h.preset}{', paused' if h.paused else ''})"
            for h in hooks
        ]
        trigger_lines = [
            f"• *{t.name}* — {t.kind}{' (paused)' if t.paused else ''}" for t in triggers
        ]
        return [
            kit.header("Chat-ops bot"),
            kit.section(GREETING),
            kit.divider(),
            kit.section("*Hooks*\n" + ("\n".join(hook_lines) or "none yet — `/hook create NAME`")),
            kit.section(
                "*Triggers*\n" + ("\n".join(trigger_lines) or "none yet — `/trigger add …`")
            ),
        ]
