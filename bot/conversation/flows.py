"""Setting things up by talking and clicking.

Plain-language DMs and @mentions become proposals with Create / Edit / Cancel buttons;
``/trigger`` and ``/hook`` with no arguments open modals; alerts carry Run now / Snooze /
Pause / History; the App Home tab lists each user's hooks and triggers with buttons.

Every one of these front doors ends where the slash commands end: `TriggerCommands`
(``create``, ``replace``, and its subcommands) and `HookCommands`. So validation,
permissions and saving are one code path whatever the door, and a button value is only
an id: the action is looked up and authorised again on every click.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel import col, select

from bot.clock import Clock
from bot.config import Settings
from bot.conversation.understand import NotUnderstood, Proposal, understand
from bot.db import Database
from bot.models import Draft, Hook, Trigger
from bot.outbox import Message, Outbox, enqueue
from bot.slack import blocks as kit
from bot.slack import views
from bot.slack.commands import Command, Reply, UsageError
from bot.slack.listeners import ActionHandler, ViewHandler
from bot.triggers.commands import SpecError, TriggerCommands, describe_state
from bot.triggers.schedule import local_time, schedule_from_dict
from bot.webhooks.commands import HookCommands

log = logging.getLogger(__name__)

GREETING = (
    "Hi! I post webhooks from GitHub, GitLab, Alertmanager, Grafana, Sentry, Stripe and anything "
    "that can POST into channels, and I run scheduled checks, feeds and reminders.\n"
    "Tell me what you need in plain words, e.g. _check https://status.example.com every 5 "
    "minutes and tell #ops if it's down_, or use `/trigger` and `/hook`."
)

# Trigger buttons → the /trigger subcommand they stand for.
TRIGGER_BUTTONS = {
    views.TRIGGER_SNOOZE: "mute {name} 1h",
    views.TRIGGER_PAUSE: "pause {name}",
    views.TRIGGER_RESUME: "resume {name}",
    views.TRIGGER_DELETE: "delete {name}",
    views.TRIGGER_HISTORY: "history {name}",
}
HOOK_BUTTONS = {
    views.HOOK_PAUSE: "pause {name}",
    views.HOOK_RESUME: "resume {name}",
    views.HOOK_DELETE: "delete {name}",
}


@dataclass(frozen=True)
class Click:
    """Who clicked what, where (a message in a channel, or the App Home tab)."""

    team_id: str
    user_id: str
    value: str
    trigger_id: str | None
    channel_id: str | None
    message_ts: str | None

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Click:
        action = (body.get("actions") or [{}])[0]
        container = body.get("container") or {}
        user = body.get("user") or {}
        return cls(
            team_id=str((body.get("team") or {}).get("id") or user.get("team_id") or ""),
            user_id=str(user.get("id", "")),
            value=str(action.get("value", "")),
            trigger_id=body.get("trigger_id"),
            channel_id=container.get("channel_id") or (body.get("channel") or {}).get("id"),
            message_ts=container.get("message_ts"),
        )

    def as_command(self, text: str, channel: str | None = None) -> Command:
        return Command(self.team_id, self.user_id, channel or self.channel_id or "", text)


@dataclass
class Conversation:
    """The conversational front doors; see the module docstring."""

    settings: Settings
    db: Database
    clock: Clock
    outbox: Outbox
    slack: AsyncWebClient
    triggers: TriggerCommands
    hooks: HookCommands

    # Slash commands: no arguments (or "new"/"edit NAME") open a modal.

    async def trigger_command(self, command: Command) -> Reply:
        words = command.text.split()
        if not words or words == ["new"]:
            return await self._open(command.trigger_id, await self._trigger_modal(command.user_id))
        if words[0] == "edit" and len(words) == 2:
            trigger = await self.triggers.find(command.team_id, words[1].lower())
            if trigger is None:
                return Reply(f"There is no trigger named `{words[1]}`.", ok=False)
            modal = await self._trigger_modal(
                command.user_id, form_of(trigger), editing=trigger.name
            )
            return await self._open(command.trigger_id, modal)
        return await self.triggers(command)

    async def hook_command(self, command: Command) -> Reply:
        if command.text.split() in ([], ["new"]):
            return await self._open(command.trigger_id, views.hook_modal(None))
        return await self.hooks(command)

    # Events.

    async def on_mention(self, event: dict[str, Any]) -> None:
        await self._understand(event)

    async def on_direct_message(self, event: dict[str, Any]) -> None:
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        await self._understand(event)

    async def on_home_opened(self, event: dict[str, Any]) -> None:
        if event.get("tab") in (None, "home"):
            await self.publish_home(str(event.get("user", "")))

    async def _understand(self, event: dict[str, Any]) -> None:
        team = str(event.get("team", ""))
        user, channel = str(event.get("user", "")), str(event.get("channel", ""))
        text = str(event.get("text", ""))
        heard = understand(
            text,
            default_tz=await self.triggers.user_zone(user),
            now=self.clock.now(),
            min_interval=timedelta(seconds=self.settings.trigger_min_interval),
            user_id=user,
        )
        if isinstance(heard, NotUnderstood):
            await self._post(
                channel,
                _not_understood(heard),
                [kit.section(_not_understood(heard)), _form_button()],
            )
            return
        command = Command(team, user, channel, heard.text)
        try:
            summary = await self._summary(command, heard)
        except UsageError as error:
            await self._post(channel, str(error), [kit.section(str(error)), _form_button()])
            return
        draft_id = await self._save_draft(command, heard)
        await self._post(
            channel,
            f"Here's what I understood: {summary}",
            views.proposal_message(summary, draft_id),
        )

    async def _summary(self, command: Command, proposal: Proposal) -> str:
        if proposal.command == "/hook":
            return f"a webhook: `/hook create {proposal.text}`"
        spec = await self.triggers.check(command, proposal.text.removeprefix("add "))
        return await self.triggers.preview(command, spec)

    # Buttons.

    def actions(self) -> dict[str, ActionHandler]:
        """Every button's action id → its handler (registered with Bolt by the root)."""
        handlers: dict[str, ActionHandler] = {
            views.DRAFT_CREATE: self._draft_create,
            views.DRAFT_EDIT: self._draft_edit,
            views.DRAFT_CANCEL: self._draft_cancel,
            views.TRIGGER_RUN: self._trigger_run,
            views.TRIGGER_EDIT: self._trigger_edit,
            views.HOME_NEW_TRIGGER: self._new_trigger,
            views.HOME_NEW_HOOK: self._new_hook,
        }
        for action_id, template in TRIGGER_BUTTONS.items():
            handlers[action_id] = self._trigger_button(template)
        for action_id, template in HOOK_BUTTONS.items():
            handlers[action_id] = self._hook_button(template)
        return handlers

    def modals(self) -> dict[str, ViewHandler]:
        """Every modal's callback id → its submission handler."""
        return {
            views.TRIGGER_MODAL: self._trigger_submitted,
            views.HOOK_MODAL: self._hook_submitted,
        }

    async def _draft_create(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        draft = await self._open_draft(click)
        if draft is None:
            return
        command = Command(draft.team_id, click.user_id, draft.channel_id, "")
        if draft.command == "/trigger":
            reply = await self.triggers(_with_text(command, draft.text))
        else:
            reply = await self.hooks(_with_text(command, f"create {draft.text}"))
        if reply.ok:
            await self._set_draft(draft, "created")
        await self._tell(click, reply.text)
        status = (
            f":white_check_mark: Created by <@{click.user_id}>."
            if reply.ok
            else f":warning: {reply.text}"
        )
        await self._replace_message(click, status)

    async def _draft_edit(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        draft = await self._open_draft(click)
        if draft is None:
            return
        if draft.command == "/hook":
            await self._open(click.trigger_id, views.hook_modal(None))
            return
        command = Command(draft.team_id, click.user_id, draft.channel_id, "")
        try:
            spec = await self.triggers.check(command, draft.text.removeprefix("add "))
        except UsageError:
            form = None
        else:
            form = views.TriggerForm(
                spec.name,
                spec.kind,
                spec.target,
                spec.schedule_text,
                spec.condition,
                spec.channel.id if spec.channel else draft.channel_id,
                None,
                " ".join(f"{k}={v}" for k, v in spec.options.items()) or None,
            )
        await self._open(click.trigger_id, await self._trigger_modal(click.user_id, form))

    async def _draft_cancel(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        draft = await self._open_draft(click)
        if draft is not None:
            await self._set_draft(draft, "cancelled")
            await self._replace_message(click, "Cancelled; nothing was created.")

    async def _trigger_run(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        trigger = await self._trigger_by_id(click)
        if trigger is not None:
            await self._tell(
                click, (await self.triggers(click.as_command(f"run {trigger.name}"))).text
            )

    async def _trigger_edit(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        trigger = await self._trigger_by_id(click)
        if trigger is not None:
            modal = await self._trigger_modal(click.user_id, form_of(trigger), editing=trigger.name)
            await self._open(click.trigger_id, modal)

    def _trigger_button(self, template: str) -> ActionHandler:
        async def handle(body: dict[str, Any]) -> None:
            click = Click.from_body(body)
            trigger = await self._trigger_by_id(click)
            if trigger is None:
                return
            reply = await self.triggers(
                click.as_command(template.format(name=trigger.name), trigger.channel_id)
            )
            await self._after_click(click, reply)

        return handle

    def _hook_button(self, template: str) -> ActionHandler:
        async def handle(body: dict[str, Any]) -> None:
            click = Click.from_body(body)
            hook = await self._hook_by_id(click)
            if hook is None:
                return
            reply = await self.hooks(
                click.as_command(template.format(name=hook.name), hook.channel_id)
            )
            await self._after_click(click, reply)

        return handle

    async def _new_trigger(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        await self._open(click.trigger_id, await self._trigger_modal(click.user_id))

    async def _new_hook(self, body: dict[str, Any]) -> None:
        await self._open(Click.from_body(body).trigger_id, views.hook_modal(None))

    # Modal submissions: errors go back inline; nothing is saved until it is valid.

    async def _trigger_submitted(self, body: dict[str, Any]) -> dict[str, str] | None:
        view = body.get("view") or {}
        form = views.read_trigger_form(view)
        try:
            text = form.to_command()
        except views.FormError as error:
            return error.errors()
        if not form.channel:
            return {"channel": "Pick the channel to report in."}
        user = body.get("user") or {}
        command = Command(
            str(user.get("team_id") or (body.get("team") or {}).get("id", "")),
            str(user.get("id", "")),
            form.channel,
            "",
        )
        editing = str(view.get("private_metadata") or "")
        try:
            reply = await (
                self.triggers.replace(command, editing, text)
                if editing
                else self.triggers.create(command, text)
            )
        except SpecError as error:
            if error.field:
                return {error.field: str(error)[: views.INLINE_ERROR_MAX]}
            return views.field_errors(error.part, str(error), form)
        except UsageError as error:
            return {"name": str(error)[: views.INLINE_ERROR_MAX]}
        await self._post_private(form.channel, command.user_id, reply.text)
        await self.publish_home(command.user_id)
        return None

    async def _hook_submitted(self, body: dict[str, Any]) -> dict[str, str] | None:
        form = views.read_hook_form(body.get("view") or {})
        try:
            text = form.to_command()
        except views.FormError as error:
            return error.errors()
        if not form.channel:
            return {"channel": "Pick the channel to post in."}
        user = body.get("user") or {}
        command = Command(
            str(user.get("team_id") or (body.get("team") or {}).get("id", "")),
            str(user.get("id", "")),
            form.channel,
            f"create {text}",
        )
        reply = await self.hooks(command)
        if not reply.ok:
            return {"name": reply.text[: views.INLINE_ERROR_MAX]}
        await self._post_private(form.channel, command.user_id, reply.text)
        await self.publish_home(command.user_id)
        return None

    # App Home.

    async def publish_home(self, user_id: str) -> None:
        """Show the user's hooks and triggers, with their state and buttons."""
        async with self.db.sessions() as session:
            hooks = (
                (
                    await session.execute(
                        select(Hook).where(col(Hook.created_by) == user_id).order_by(col(Hook.name))
                    )
                )
                .scalars()
                .all()
            )
            triggers = (
                (
                    await session.execute(
                        select(Trigger)
                        .where(col(Trigger.created_by) == user_id)
                        .order_by(col(Trigger.name))
                    )
                )
                .scalars()
                .all()
            )
        now = self.clock.now()
        states = {t.id: describe_state(t, now) for t in triggers if t.id is not None}
        next_runs = {t.id: _local(t) for t in triggers if t.id is not None}
        view = views.home_view(hooks, triggers, states=states, next_runs=next_runs)
        try:
            await self.slack.views_publish(user_id=user_id, view=view)
        except SlackApiError as error:
            log.warning(
                "publishing the App Home for %s failed: %s", user_id, error.response.get("error")
            )

    # Helpers.

    async def _trigger_modal(
        self, user_id: str, form: views.TriggerForm | None = None, *, editing: str | None = None
    ) -> dict[str, Any]:
        zone = await self.triggers.user_zone(user_id)
        return views.trigger_modal(form, editing=editing, user_zone=zone.key)

    async def _open(self, trigger_id: str | None, view: dict[str, Any]) -> Reply:
        if not trigger_id:
            return Reply(
                "I can't open a form from here; use the slash command with its arguments.", ok=False
            )
        try:
            await self.slack.views_open(trigger_id=trigger_id, view=view)
        except SlackApiError as error:
            log.warning("views.open failed: %s", error.response.get("error"))
            return Reply("Slack didn't let me open the form; please try again.", ok=False)
        return Reply("")

    async def _after_click(self, click: Click, reply: Reply) -> None:
        if click.channel_id:
            await self._tell(click, reply.text)
        else:  # the App Home: show the outcome by refreshing it
            await self.publish_home(click.user_id)
            if not reply.ok:
                await self._open(click.trigger_id, _notice_modal(reply.text))

    async def _tell(self, click: Click, text: str) -> None:
        if click.channel_id:
            await self._post_private(click.channel_id, click.user_id, text)
        else:
            await self._open(click.trigger_id, _notice_modal(text))

    async def _post(
        self, channel: str, text: str, blocks: list[dict[str, Any]] | None = None
    ) -> None:
        await self._send(Message(channel, text, blocks=blocks, source="conversation"))

    async def _post_private(self, channel: str, user: str, text: str) -> None:
        await self._send(Message(channel, text, kind="ephemeral", user=user, source="conversation"))

    async def _replace_message(self, click: Click, text: str) -> None:
        if click.channel_id and click.message_ts:
            await self._send(
                Message(
                    click.channel_id,
                    text,
                    blocks=[kit.section(text)],
                    kind="update",
                    ts=click.message_ts,
                )
            )

    async def _send(self, message: Message) -> None:
        async with self.db.transaction() as session:
            await enqueue(session, self.clock.now(), message)
        self.outbox.wake(message.channel)

    async def _save_draft(self, command: Command, proposal: Proposal) -> int:
        draft = Draft(
            team_id=command.team_id,
            user_id=command.user_id,
            channel_id=command.channel_id,
            command=proposal.command,
            text=proposal.text,
            created_at=self.clock.now(),
        )
        async with self.db.transaction() as session:
            session.add(draft)
            await session.flush()
            assert draft.id is not None
            return draft.id

    async def _open_draft(self, click: Click) -> Draft | None:
        async with self.db.sessions() as session:
            draft = await session.get(Draft, _int(click.value))
        if draft is None or draft.status != "open":
            await self._tell(click, "That proposal is no longer open.")
            return None
        if draft.user_id != click.user_id:
            await self._tell(
                click, f"Only <@{draft.user_id}>, who asked, can confirm or change this proposal."
            )
            return None
        return draft

    async def _set_draft(self, draft: Draft, status: str) -> None:
        async with self.db.transaction() as session:
            row = await session.get(Draft, draft.id)
            if row is not None:
                row.status = status

    async def _trigger_by_id(self, click: Click) -> Trigger | None:
        async with self.db.sessions() as session:
            trigger = await session.get(Trigger, _int(click.value))
        if trigger is None or trigger.team_id not in (click.team_id, ""):
            await self._tell(click, "That trigger no longer exists.")
            return None
        return trigger

    async def _hook_by_id(self, click: Click) -> Hook | None:
        async with self.db.sessions() as session:
            hook = await session.get(Hook, _int(click.value))
        if hook is None or hook.team_id not in (click.team_id, ""):
            await self._tell(click, "That hook no longer exists.")
            return None
        return hook


def form_of(trigger: Trigger) -> views.TriggerForm:
    """A trigger as the modal shows it for editing."""
    schedule = trigger.schedule_text or schedule_from_dict(trigger.schedule).describe()
    options = " ".join(f"{key}={value}" for key, value in trigger.options.items()) or None
    channel = trigger.channel_id if not trigger.channel_id.startswith("#") else None
    return views.TriggerForm(
        trigger.name,
        trigger.kind,
        trigger.target,
        schedule,
        trigger.condition,
        channel,
        None,
        options,
    )


def _with_text(command: Command, text: str) -> Command:
    return Command(command.team_id, command.user_id, command.channel_id, text)


def _not_understood(heard: NotUnderstood) -> str:
    near = f' (near "{heard.part}")' if heard.part else ""
    return f"Sorry, I didn't get that{near}: {heard.reason}. You can fill in a form instead, or see `/trigger help`."


def _form_button() -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": views.HOME_NEW_TRIGGER,
                "text": {"type": "plain_text", "text": "Open the form"},
            }
        ],
    }


def _notice_modal(text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Chat-ops bot"},
        "close": {"type": "plain_text", "text": "OK"},
        "blocks": [kit.section(text)],
    }


def _local(trigger: Trigger) -> str:
    if trigger.next_run_at is None or trigger.paused:
        return "—"
    tz = schedule_from_dict(trigger.schedule).tz
    return local_time(trigger.next_run_at, tz)


def _int(value: str) -> int:
    return int(value) if value.isdigit() else -1
