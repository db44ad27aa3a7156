"""The form ``/action add`` opens when typed alone: the same action, field by field, with
each error shown under its field."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.actions.service import ActionService, check_template_source
from bot.actions.spec import METHODS, spec_from_fields, split_options
from bot.audit import Actor
from bot.errors import SpecError, UsageError
from bot.outbox import Message, Outbox
from bot.slack import interactive as ui
from bot.slack.blocks import truncate
from bot.slack.payloads import team_of, user_of
from bot.slack.slash import Command
from bot.slack.text import CommandSyntaxError, tokenize

log = logging.getLogger(__name__)

ACTION_MODAL: Final = "action_add"
FIELDS: Final = ("name", "method", "url", "options", "body")


def action_modal(channel: str) -> dict[str, Any]:
    """The empty form; ``channel`` (where it was opened) is where the answer goes."""
    blocks = [
        ui.input_block("name", "Name", ui.text_input("name", None, "crm", max_length=40)),
        ui.input_block(
            "method",
            "Method",
            ui.static_select("method", [(m, m) for m in METHODS], "POST"),
        ),
        ui.input_block(
            "url", "URL", ui.text_input("url", None, "https://crm.example.com/api/leads")
        ),
        ui.input_block(
            "options",
            "Options",
            ui.text_input("options", None, "auth=bearer:crm-token body=json retries=5"),
            hint="auth=bearer:SECRET|basic:SECRET header.NAME=VALUE|secret:SECRET "
            "body=json|form confirm=yes timeout=10s retries=5",
            optional=True,
        ),
        ui.input_block(
            "body",
            "Body",
            ui.text_input(
                "body",
                None,
                '{"email": {{ payload.email|tojson }}}',
                multiline=True,
            ),
            hint="A template rendering JSON, like hook templates",
            optional=True,
        ),
    ]
    return ui.modal(ACTION_MODAL, "New action", "Save", blocks, json.dumps({"channel": channel}))


def inline_errors(error: UsageError) -> dict[str, str]:
    """An error under the form's field it belongs to (the name field otherwise)."""
    field = getattr(error, "field", "name")
    return {field if field in FIELDS else "name": truncate(str(error), ui.INLINE_ERROR_MAX)}


@dataclass
class ActionForm:
    """Opens the form and saves what is submitted through `ActionService`."""

    service: ActionService
    slack: AsyncWebClient
    outbox: Outbox

    async def open(self, command: Command) -> None:
        try:
            await self.slack.views_open(
                trigger_id=command.trigger_id, view=action_modal(command.channel_id)
            )
        except SlackApiError as error:
            log.warning("views.open failed: %s", error.response.get("error"))

    async def submitted(self, body: dict[str, Any]) -> dict[str, str] | None:
        """Save the action; errors under their fields, or None to close the form."""
        view = body.get("view") or {}
        values = ui.submitted_values(view)
        channel = _channel_of(view)
        actor = Actor(team_of(body), user_of(body), channel)
        try:
            spec = spec_from_fields(
                name=values.get("name", ""),
                method=values.get("method", "POST"),
                url=values.get("url", ""),
                options=_options(values.get("options", "")),
            )
            if values.get("body") and spec.method in ("GET", "HEAD"):
                raise SpecError(f"{spec.method} sends no body: leave it empty", field="body")
            if values.get("body"):
                check_template_source(values["body"], "body")
            action = await self.service.create(actor, spec)
            if values.get("body"):
                await self.service.set_body(actor, action, values["body"])
        except UsageError as error:
            return inline_errors(error)
        if channel:
            await self.outbox.send(
                Message(
                    channel,
                    f"Made action *{action.name}*. Try it with `/action test {action.name}`.",
                    kind="ephemeral",
                    user=actor.user_id,
                    source="action-form",
                )
            )
        return None


def _options(text: str) -> Mapping[str, str]:
    try:
        options, rest = split_options(tokenize(text))
    except CommandSyntaxError as error:
        raise SpecError(str(error), field="options", part=error.part) from None
    if rest:
        raise SpecError(
            f"`{rest[0]}`: options are key=value, e.g. auth=bearer:crm-token",
            field="options",
            part=rest[0],
        )
    return options


def _channel_of(view: Mapping[str, Any]) -> str:
    try:
        metadata = json.loads(str(view.get("private_metadata") or ""))
    except ValueError:
        return ""
    return str(metadata.get("channel") or "") if isinstance(metadata, dict) else ""
