"""Bolt wiring: which Slack commands and events go to which handler.

Every listener is registered here, in one place, so `manifest.yml` can be checked
against this list (see tests/test_manifest.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.response import BoltResponse

from bot.clock import Clock
from bot.db import Database, insert_ignoring_conflicts
from bot.models import SlackEvent
from bot.slack.slash import Command, CommandHandler, Reply

log = logging.getLogger(__name__)

# Events get the whole envelope (the workspace is there); the event itself is ``body["event"]``.
EventHandler = Callable[[dict[str, Any]], Awaitable[None]]
ActionHandler = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class ShowInModal:
    """Answer a modal submission by showing ``view`` in its place: for what is shown once
    (a new hook's URL and secret), which must not be stored on its way, as a message is."""

    view: dict[str, Any]


# A modal submission: None to close it, {block_id: message} to show inline errors, or
# `ShowInModal` to replace it with another view.
ViewHandler = Callable[[dict[str, Any]], Awaitable[dict[str, str] | ShowInModal | None]]


def _unchanged(text: str) -> str:
    return text


@dataclass(frozen=True)
class Listeners:
    """The handlers the composition root plugs into Bolt.

    ``redact`` hides secrets' values in every reply to a slash command and every inline
    error of a modal; the text of the commands in ``private_text`` (which may carry a
    secret being set) is never logged.
    """

    commands: dict[str, CommandHandler]
    events: dict[str, EventHandler]
    # Buttons by action id, or by a pattern for buttons whose ids carry a name.
    actions: dict[str | re.Pattern[str], ActionHandler] = field(default_factory=dict)
    views: dict[str, ViewHandler] = field(default_factory=dict)
    redact: Callable[[str], str] = _unchanged
    private_text: frozenset[str] = frozenset()


def register(app: AsyncApp, listeners: Listeners, db: Database, clock: Clock) -> None:
    """Attach the retry guard, every slash command and every event to ``app``."""
    app.middleware(_skip_events_already_handled(db, clock))
    for name, handler in listeners.commands.items():
        shown = _first_word if name in listeners.private_text else repr
        app.command(name)(_command_listener(name, handler, listeners.redact, shown))
    for event, event_handler in listeners.events.items():
        app.event(event)(_event_listener(event, event_handler))
    for action_id, action_handler in listeners.actions.items():
        app.action(action_id)(_action_listener(action_id, action_handler))
    for callback_id, view_handler in listeners.views.items():
        app.view(callback_id)(_view_listener(callback_id, view_handler, listeners.redact))


def _first_word(text: str) -> str:
    return repr(text.split(" ", 1)[0] + " …")


def _command_listener(
    name: str,
    handler: CommandHandler,
    redact: Callable[[str], str],
    shown: Callable[[str], str],
) -> Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]:
    async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
        command = Command.from_slack(body)
        try:
            reply = await handler(command)
        except Exception:
            log.exception("%s %s from %s failed", name, shown(command.text), command.user_id)
            reply = Reply("Sorry, something went wrong on my side. It has been logged.")
        if not reply.text and not reply.blocks:
            await ack()  # e.g. a modal was opened instead
            return
        await ack(
            text=redact(reply.text),
            blocks=_redacted(reply.blocks, redact),
            response_type="in_channel" if reply.public else "ephemeral",
        )

    return listener


def _redacted(data: Any, redact: Callable[[str], str]) -> Any:
    """Every string in Block Kit JSON passed through ``redact``."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, list):
        return [_redacted(item, redact) for item in data]
    if isinstance(data, dict):
        return {key: _redacted(value, redact) for key, value in data.items()}
    return data


def _event_listener(
    event: str, handler: EventHandler
) -> Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]:
    async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        try:
            await handler(body)
        except Exception:
            log.exception("handling %s event failed", event)

    return listener


def _action_listener(
    action_id: str | re.Pattern[str], handler: ActionHandler
) -> Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]:
    async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        try:
            await handler(body)
        except Exception:
            log.exception("button %s failed", action_id)

    return listener


def _view_listener(
    callback_id: str, handler: ViewHandler, redact: Callable[[str], str]
) -> Callable[[AsyncAck, dict[str, Any]], Awaitable[None]]:
    async def listener(ack: AsyncAck, body: dict[str, Any]) -> None:
        try:
            errors = await handler(body)
        except Exception:
            log.exception("modal %s failed", callback_id)
            errors = {"name": "Sorry, something went wrong on my side. It has been logged."}
        if isinstance(errors, ShowInModal):
            await ack(response_action="update", view=_redacted(errors.view, redact))
        elif errors:
            errors = {block: redact(text) for block, text in errors.items()}
            await ack(response_action="errors", errors=errors)
        else:
            await ack()

    return listener


def _skip_events_already_handled(
    db: Database, clock: Clock
) -> Callable[..., Awaitable[BoltResponse | None]]:
    """Slack retries an event it thinks went unanswered; answer a repeat without acting."""

    async def middleware(
        body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not await _first_time_seen(db, str(event_id), clock.now()):
            log.info("event %s already handled; acknowledging Slack's retry", event_id)
            return BoltResponse(status=200, body="")
        await next()
        return None

    return middleware


async def _first_time_seen(db: Database, event_id: str, now: datetime) -> bool:
    async with db.transaction() as session:
        row = {"event_id": event_id, "received_at": now}
        return await insert_ignoring_conflicts(session, SlackEvent, [row]) == 1
