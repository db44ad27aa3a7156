"""Setting things up by talking and clicking.

Plain-language DMs and @mentions become proposals with Create / Edit / Cancel buttons;
``/trigger`` and ``/hook`` with no arguments open modals; alerts carry Run now / Snooze /
Pause / History; the App Home tab lists each user's hooks and triggers with buttons.

Every one of these front doors produces a spec or names a thing, and hands it to the same
service the slash commands use (`TriggerService`, `HookService`). So validation,
permissions and saving are one code path whatever the door, and a button value is only
an id: the thing is looked up and authorised again on every click.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.actions.service import ActionService
from bot.ai.steps import AISteps
from bot.audit import Actor
from bot.clock import Clock
from bot.config import Settings
from bot.conversation import asking, home
from bot.conversation import drafts as proposals
from bot.conversation import modals as forms
from bot.conversation.ai_read import AIAnswer, read_by_ai
from bot.conversation.change_flow import ChangesByTalking
from bot.conversation.questions import Answers, Pending, Question
from bot.conversation.reading import strip_filler
from bot.conversation.understand import HookProposal, NotUnderstood, understand
from bot.credentials import slash as secret_text
from bot.credentials.service import SecretService
from bot.credentials.spec import SecretTarget
from bot.errors import SpecError, UsageError
from bot.models import Hook, Trigger
from bot.outbox import Message, Outbox
from bot.slack import blocks as kit
from bot.slack import interactive as ui
from bot.slack.blocks import escape_mrkdwn
from bot.slack.listeners import ActionHandler, ShowInModal, ViewHandler
from bot.slack.payloads import Click, row_id, team_of, user_of
from bot.slack.slash import Command, CommandHandler, Reply
from bot.slack.users import UserDirectory
from bot.tasks import BackgroundTasks
from bot.triggers import messages
from bot.triggers import slash as trigger_text
from bot.triggers.service import TriggerService
from bot.triggers.slash import TriggerSlash
from bot.triggers.spec import TriggerSpec
from bot.webhooks import slash as hook_text
from bot.webhooks.service import HookService
from bot.webhooks.slash import HookSlash
from bot.webhooks.spec import HookSpec

log = logging.getLogger(__name__)

SNOOZE = timedelta(hours=1)
QUESTION_WAIT = timedelta(hours=1)  # a typed answer counts for a question this recent
TriggerAction = Callable[[Actor, Trigger], Awaitable[str]]
HookAction = Callable[[Actor, Hook], Awaitable[str]]


@dataclass
class Conversation:
    """The conversational front doors; see the module docstring."""

    settings: Settings
    clock: Clock
    outbox: Outbox
    slack: AsyncWebClient
    users: UserDirectory
    triggers: TriggerService
    trigger_slash: TriggerSlash
    hooks: HookService
    hook_slash: HookSlash
    drafts: proposals.Drafts
    background: BackgroundTasks
    secrets: SecretService
    action_service: ActionService
    action_slash: CommandHandler
    open_action_form: Callable[[Command], Awaitable[None]]
    ai: AISteps | None = None  # reads requests the rules do not understand (ai_read)

    # Slash commands: no arguments (or "new"/"edit NAME") open a modal.

    async def trigger_command(self, command: Command) -> Reply:
        words = command.text.split()
        if not words or words == ["new"]:
            return await self._open(command.trigger_id, await self._trigger_modal(command.user_id))
        if words[0] == "edit" and len(words) == 2:
            try:
                trigger = await self.triggers.named(command.team_id, words[1], verb="edit")
                await self.triggers.require_may_change(command.actor, trigger)
            except UsageError as error:
                return Reply(str(error), ok=False)
            form = forms.TriggerForm.of(trigger)
            modal = await self._trigger_modal(command.user_id, form, editing=trigger.name)
            return await self._open(command.trigger_id, modal)
        return await self.trigger_slash(command)

    async def hook_command(self, command: Command) -> Reply:
        if command.text.split() in ([], ["new"]):
            return await self._open(command.trigger_id, forms.hook_modal(None))
        return await self.hook_slash(command)

    # Events.

    async def on_mention(self, body: dict[str, Any]) -> None:
        await self._understand(body, in_dm=False)

    async def on_direct_message(self, body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        if event.get("channel_type") != "im" or event.get("bot_id") or event.get("subtype"):
            return
        await self._understand(body, in_dm=True)

    async def on_home_opened(self, body: dict[str, Any]) -> None:
        event = body.get("event") or {}
        if event.get("tab") in (None, "home"):
            await self.publish_home(Actor(team_of(body), str(event.get("user", "")), ""))

    async def _understand(self, body: dict[str, Any], *, in_dm: bool) -> None:
        """Read a request, or the typed answer to the question asked just before."""
        event = body.get("event") or {}
        asker = Actor(team_of(body), user_of(event), str(event.get("channel", "")))
        text = str(event.get("text", ""))
        waiting = await self.drafts.waiting_question(asker, self.clock.now() - QUESTION_WAIT)
        if waiting is not None and waiting.pending.replaces is not None:
            # A default offered beside a proposal: moot once that proposal was created.
            waiting = waiting if await self.drafts.is_open(waiting.pending.replaces) else None
        answer = (
            None if waiting is None else asking.typed_answer(waiting.pending.question.slot, text)
        )
        if waiting is not None and answer is not None:
            await self._answer(waiting, answer)
            return
        if await self.changes.reply(asker, strip_filler(text)):
            return
        await self._read(asker, text, {}, in_dm=in_dm)

    @property
    def changes(self) -> ChangesByTalking:
        """Changing existing things by talking (stateless: made from the same services)."""
        return ChangesByTalking(
            self.settings,
            self.clock,
            self.outbox,
            self.users,
            self.triggers,
            self.trigger_slash,
            self.hooks,
            self.drafts,
            self.action_service,
            {
                "/action": self.action_slash,
                "/trigger": self.trigger_slash,
                "/hook": self.hook_slash,
            },
            self.open_action_form,
        )

    async def _read(
        self,
        asker: Actor,
        text: str,
        answers: Answers,
        *,
        in_dm: bool,
        replacing: int | None = None,
    ) -> None:
        """Understand ``text`` (with ``answers`` to earlier questions) and reply: one
        question, a proposal with Create / Edit / Cancel, or what could not be read."""
        try:
            heard = await self._proposal(asker, text, answers, in_dm=in_dm)
        except UsageError as error:
            await self._post(
                asker.channel_id, str(error), [kit.section(str(error)), _form_button()]
            )
            return
        if isinstance(heard, Question):
            pending = Pending(text, answers, heard)
            question_id = await self.drafts.save_question(asker, pending)
            blocks = asking.question_blocks(heard, question_id)
            await self._post(asker.channel_id, heard.text, blocks)
            return
        if replacing is not None:
            await self.drafts.close(replacing, "replaced")
        draft_id = await self.drafts.save(asker, heard.spec, heard.template)
        blocks = proposals.proposal_message(heard.summary, draft_id)
        if heard.offer is not None:  # a default the person may change with one click
            pending = Pending(text, answers, heard.offer, replaces=draft_id)
            offer_id = await self.drafts.save_question(asker, pending)
            blocks.insert(1, asking.answer_row(heard.offer, offer_id))
        await self._post(asker.channel_id, f"Here's what I understood: {heard.summary}", blocks)

    async def _answer(self, waiting: proposals.OpenQuestion, value: str) -> None:
        """Continue the request ``waiting`` for an answer, with ``value`` as the answer."""
        await self.drafts.close(waiting.id, "answered")
        pending = waiting.pending
        in_dm = waiting.asker.channel_id.startswith("D")  # Slack's DM ids start with D
        await self._read(
            waiting.asker,
            pending.message,
            pending.answered(value),
            in_dm=in_dm,
            replacing=pending.replaces,
        )

    async def _proposal(
        self, asker: Actor, text: str, answers: Answers, *, in_dm: bool
    ) -> Heard | Question:
        """What ``text`` asks for, or the question to ask; `UsageError` when unclear."""
        heard = understand(
            text,
            default_tz=await self.users.zone(asker.user_id),
            now=self.clock.now(),
            min_interval=timedelta(seconds=self.settings.trigger_min_interval),
            user_id=asker.user_id,
            answers=answers,
            ask_for_channel=in_dm,
        )
        note = ""
        if isinstance(heard, Question):
            return heard
        if isinstance(heard, NotUnderstood):
            read = await read_by_ai(self.ai, asker, text, self.trigger_slash.parse)
            if read is None:
                raise UsageError(_not_understood(heard))
            if isinstance(read, AIAnswer):
                raise UsageError(read.text)
            heard, note = read.proposal, read.note
        if isinstance(heard, HookProposal):
            return Heard(_hook_summary(heard.spec, asker) + note, heard.spec)
        self.triggers.validate(heard.spec)
        preview = self.triggers.preview(asker, heard.spec)
        summary = trigger_text.summary_text(preview, heard.spec.schedule) + note
        summary += "".join(f"\n• _{escape_mrkdwn(n)}_" for n in heard.notes)
        return Heard(summary, heard.spec, heard.template, heard.offer)

    # Buttons.

    def actions(self) -> dict[str, ActionHandler]:
        """Every button's action id → its handler (registered with Bolt by the root)."""
        trigger_actions: dict[str, TriggerAction] = {
            messages.TRIGGER_RUN: self._run,
            messages.TRIGGER_SNOOZE: self._snooze,
            messages.TRIGGER_PAUSE: self._pause_trigger,
            messages.TRIGGER_RESUME: self._resume_trigger,
            messages.TRIGGER_DELETE: self._delete_trigger,
            messages.TRIGGER_HISTORY: self._history,
        }
        hook_actions: dict[str, HookAction] = {
            home.HOOK_PAUSE: self._pause_hook,
            home.HOOK_RESUME: self._resume_hook,
            home.HOOK_DELETE: self._delete_hook,
        }
        handlers: dict[str, ActionHandler] = {
            proposals.DRAFT_CREATE: self._draft_create,
            proposals.DRAFT_EDIT: self._draft_edit,
            proposals.DRAFT_CANCEL: self._draft_cancel,
            asking.QUESTION_ANSWER: self._question_answered,
            asking.QUESTION_OTHER: self._question_other,
            asking.QUESTION_CHANNEL: self._question_channel,
            messages.TRIGGER_EDIT: self._trigger_edit,
            home.HOME_NEW_TRIGGER: self._new_trigger,
            home.HOME_NEW_HOOK: self._new_hook,
        }
        handlers |= self.changes.actions()
        handlers |= {key: self._on_trigger(act) for key, act in trigger_actions.items()}
        handlers |= {key: self._on_hook(act) for key, act in hook_actions.items()}
        return handlers

    def modals(self) -> dict[str, ViewHandler]:
        """Every modal's callback id → its submission handler."""
        return {
            forms.TRIGGER_MODAL: self._trigger_submitted,
            forms.HOOK_MODAL: self._hook_submitted,
            forms.SECRET_MODAL: self._secret_submitted,
        }

    def _on_trigger(self, act: TriggerAction) -> ActionHandler:
        """A button on a trigger: find it (by the id in the value), act, tell the clicker."""

        async def handle(body: dict[str, Any]) -> None:
            click = Click.from_body(body)
            try:
                trigger = await self._trigger_clicked(click)
                text, ok = await act(click.actor, trigger), True
            except UsageError as error:
                text, ok = str(error), False
            await self._after_click(click, text, ok=ok)

        return handle

    def _on_hook(self, act: HookAction) -> ActionHandler:
        async def handle(body: dict[str, Any]) -> None:
            click = Click.from_body(body)
            try:
                hook = await self.hooks.by_id(click.team_id, click.number or -1)
                if hook is None:
                    raise UsageError("That hook no longer exists.")
                text, ok = await act(click.actor, hook), True
            except UsageError as error:
                text, ok = str(error), False
            await self._after_click(click, text, ok=ok)

        return handle

    async def _trigger_clicked(self, click: Click) -> Trigger:
        trigger = await self.triggers.by_id(click.team_id, click.number or -1)
        if trigger is None:
            raise UsageError("That trigger no longer exists.")
        return trigger

    async def _run(self, actor: Actor, trigger: Trigger) -> str:
        return await self.trigger_slash.run_for(actor, trigger)

    async def _snooze(self, actor: Actor, trigger: Trigger) -> str:
        until = self.clock.now() + SNOOZE
        muted = await self.triggers.mute(actor, trigger, until)
        return trigger_text.muted_text(muted, until, await self.users.zone(actor.user_id))

    async def _pause_trigger(self, actor: Actor, trigger: Trigger) -> str:
        return trigger_text.paused_text(await self.triggers.pause(actor, trigger))

    async def _resume_trigger(self, actor: Actor, trigger: Trigger) -> str:
        return trigger_text.resumed_text(await self.triggers.resume(actor, trigger))

    async def _delete_trigger(self, actor: Actor, trigger: Trigger) -> str:
        await self.triggers.delete(actor, trigger)
        return f"Deleted *{trigger.name}*."

    async def _history(self, actor: Actor, trigger: Trigger) -> str:
        return trigger_text.history_text(trigger, await self.triggers.runs(trigger, 20))

    async def _pause_hook(self, actor: Actor, hook: Hook) -> str:
        return hook_text.paused_text(await self.hooks.pause(actor, hook))

    async def _resume_hook(self, actor: Actor, hook: Hook) -> str:
        return f"Resumed *{(await self.hooks.resume(actor, hook)).name}*."

    async def _delete_hook(self, actor: Actor, hook: Hook) -> str:
        await self.hooks.delete(actor, hook)
        return f"Deleted hook *{hook.name}*; its URL now answers 404."

    async def _trigger_edit(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        try:
            trigger = await self._trigger_clicked(click)
            await self.triggers.require_may_change(click.actor, trigger)
        except UsageError as error:
            await self._tell(click, str(error))
            return
        form = forms.TriggerForm.of(trigger)
        modal = await self._trigger_modal(click.user_id, form, editing=trigger.name)
        await self._open(click.trigger_id, modal)

    async def _new_trigger(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        await self._open(click.trigger_id, await self._trigger_modal(click.user_id))

    async def _new_hook(self, body: dict[str, Any]) -> None:
        await self._open(Click.from_body(body).trigger_id, forms.hook_modal(None))

    # Proposals: Create saves exactly the spec the summary was made from.

    async def _draft_create(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        try:
            draft = await self.drafts.open_for(click.number, click.user_id)
        except UsageError as error:
            await self._tell(click, str(error))
            return
        try:
            text = await self._create(draft.asker, draft.spec, draft.template)
        except UsageError as error:
            await self._tell(click, str(error))
            await self._replace_message(click, f":warning: {error}")
            return
        await self.drafts.close(draft.id, "created")
        if isinstance(draft.spec, HookSpec):  # its URL and secret: shown once, never stored
            await self._open(click.trigger_id, _notice_modal(text))
        else:
            await self._tell(click, text)
        await self._replace_message(click, f":white_check_mark: Created by <@{click.user_id}>.")

    async def _create(self, asker: Actor, spec: proposals.Spec, template: str | None = None) -> str:
        if isinstance(spec, TriggerSpec):
            trigger = await self.triggers.create(asker, spec)
            if template is not None:  # a report from a URL: its starter template
                trigger = await self.triggers.set_template(asker, trigger, template)
            return trigger_text.added_text(trigger, spec.schedule)
        return hook_text.created_text(await self.hooks.create(asker, spec))

    # Questions: a click on an answer (or a channel picked) continues the request.

    async def _question_answered(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        draft_id, _, index = click.value.partition(":")
        try:
            waiting = await self.drafts.question_for(_number(draft_id), click.user_id)
            options = waiting.pending.question.options
            place = row_id(index)
            if place is None or place >= len(options):
                raise UsageError("That answer is no longer offered.")
        except UsageError as error:
            await self._tell(click, str(error))
            return
        await self._after_answer(click, waiting, options[place])

    async def _question_channel(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        action = (body.get("actions") or [{}])[0]
        block = str(action.get("block_id", ""))
        chosen = str(action.get("selected_conversation") or "")
        try:
            draft_id = _number(block.removeprefix(asking.CHANNEL_BLOCK_PREFIX))
            waiting = await self.drafts.question_for(draft_id, click.user_id)
            if not chosen:
                raise UsageError("Pick a channel, or click Here.")
        except UsageError as error:
            await self._tell(click, str(error))
            return
        await self._after_answer(click, waiting, chosen)

    async def _after_answer(
        self, click: Click, waiting: proposals.OpenQuestion, value: str
    ) -> None:
        shown = (
            f"<#{value}>"
            if waiting.pending.question.slot == "channel" and value[:1] in "CG"
            else value
        )
        await self._replace_message(click, asking.answered_text(waiting.pending.question, shown))
        await self._answer(waiting, value)

    async def _question_other(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        try:
            waiting = await self.drafts.question_for(click.number, click.user_id)
        except UsageError as error:
            await self._tell(click, str(error))
            return
        await self._tell(click, asking.other_prompt(waiting.pending.question))

    async def _draft_edit(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        try:
            draft = await self.drafts.open_for(click.number, click.user_id)
        except UsageError as error:
            await self._tell(click, str(error))
            return
        if isinstance(draft.spec, TriggerSpec):
            form = forms.TriggerForm.of_spec(draft.spec)
            if form.channel is None:
                form = replace(form, channel=draft.asker.channel_id)
            await self._open(click.trigger_id, await self._trigger_modal(click.user_id, form))
        else:
            spec = draft.spec
            channel = spec.channel or draft.asker.channel_id
            form_of_hook = forms.HookForm(spec.name, channel, spec.preset, None)
            await self._open(click.trigger_id, forms.hook_modal(form_of_hook))

    async def _draft_cancel(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        try:
            draft = await self.drafts.open_for(click.number, click.user_id)
        except UsageError as error:
            await self._tell(click, str(error))
            return
        await self.drafts.close(draft.id, "cancelled")
        await self._replace_message(click, "Cancelled; nothing was created.")

    # Modal submissions: errors go back inline; nothing is saved until it is valid. The
    # reply to a valid one waits for nothing else (the App Home refreshes afterwards).

    async def _trigger_submitted(self, body: dict[str, Any]) -> dict[str, str] | None:
        view = body.get("view") or {}
        form = forms.read_trigger_form(view)
        actor = Actor(team_of(body), user_of(body), form.channel or "")
        editing = str(view.get("private_metadata") or "")
        try:
            spec = forms.trigger_spec_of(
                form,
                user_zone=await self.users.zone(actor.user_id),
                now=self.clock.now(),
                min_interval=timedelta(seconds=self.settings.trigger_min_interval),
            )
            if editing:
                trigger = await self.triggers.named(actor.team_id, editing, verb="edit")
                text = trigger_text.updated_text(await self.triggers.redefine(actor, trigger, spec))
            else:
                text = trigger_text.added_text(
                    await self.triggers.create(actor, spec), spec.schedule
                )
        except SpecError as error:
            return forms.inline_errors(error)
        except UsageError as error:
            return {"name": str(error)[: ui.INLINE_ERROR_MAX]}
        await self._post_private(actor.channel_id, actor.user_id, text)
        self._refresh_home_later(actor)
        return None

    async def _hook_submitted(self, body: dict[str, Any]) -> dict[str, str] | ShowInModal | None:
        form = forms.read_hook_form(body.get("view") or {})
        actor = Actor(team_of(body), user_of(body), form.channel or "")
        try:
            created = await self.hooks.create(actor, forms.hook_spec_of(form))
        except SpecError as error:
            return forms.inline_errors(error)
        except UsageError as error:
            return {"name": str(error)[: ui.INLINE_ERROR_MAX]}
        self._refresh_home_later(actor)
        # Its URL and secret are shown once, in the modal: a message would be stored first.
        return ShowInModal(_notice_modal(hook_text.created_text(created)))

    # Secrets: ``/secret set NAME for HOST`` opens this form, so the value never travels
    # in a command's text; the confirmation names the secret, never its value.

    async def open_secret_form(self, command: Command, target: SecretTarget) -> Reply:
        """Open the form asking for the value of ``target``."""
        return await self._open(command.trigger_id, forms.secret_modal(target, command.channel_id))

    async def _secret_submitted(self, body: dict[str, Any]) -> dict[str, str] | None:
        actor = Actor(team_of(body), user_of(body), "")
        try:
            form = forms.read_secret_form(body.get("view") or {})
            actor = replace(actor, channel_id=form.channel)
            info = await self.secrets.set(actor, forms.secret_spec_of(form))
        except SpecError as error:
            return forms.secret_inline_errors(error)
        except UsageError as error:
            return {"value": str(error)[: ui.INLINE_ERROR_MAX]}
        if actor.channel_id:
            await self._post_private(actor.channel_id, actor.user_id, secret_text.set_text(info))
        return None

    # App Home.

    async def publish_home(self, viewer: Actor) -> None:
        """Show the viewer's hooks and triggers in their workspace, with state and buttons."""
        hooks = await self.hooks.all_of(viewer.team_id, created_by=viewer.user_id)
        triggers = await self.triggers.all_of(viewer.team_id, created_by=viewer.user_id)
        now = self.clock.now()
        zone = await self.users.zone(viewer.user_id)
        states = {
            t.id: trigger_text.describe_state(t, now, zone) for t in triggers if t.id is not None
        }
        next_runs = {t.id: trigger_text.next_run_text(t) for t in triggers if t.id is not None}
        glances = await home.load_glances(self.triggers.db, triggers, hooks, now, zone)
        view = home.home_view(hooks, triggers, states=states, next_runs=next_runs, glances=glances)
        try:
            await self.slack.views_publish(user_id=viewer.user_id, view=view)
        except SlackApiError as error:
            log.warning(
                "publishing the App Home for %s failed: %s",
                viewer.user_id,
                error.response.get("error"),
            )

    def _refresh_home_later(self, viewer: Actor) -> None:
        self.background.spawn(self.publish_home(viewer))

    # Helpers.

    async def _trigger_modal(
        self, user_id: str, form: forms.TriggerForm | None = None, *, editing: str | None = None
    ) -> dict[str, Any]:
        zone = await self.users.zone(user_id)
        return forms.trigger_modal(form, editing=editing, user_zone=zone.key)

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

    async def _after_click(self, click: Click, text: str, *, ok: bool) -> None:
        if click.channel_id:
            await self._tell(click, text)
        else:  # the App Home: show the outcome by refreshing it
            await self.publish_home(click.actor)
            if not ok:
                await self._open(click.trigger_id, _notice_modal(text))

    async def _tell(self, click: Click, text: str) -> None:
        if click.channel_id:
            await self._post_private(click.channel_id, click.user_id, text)
        else:
            await self._open(click.trigger_id, _notice_modal(text))

    async def _post(self, channel: str, text: str, blocks: list[kit.Block] | None = None) -> None:
        await self.outbox.send(Message(channel, text, blocks=blocks, source="conversation"))

    async def _post_private(self, channel: str, user: str, text: str) -> None:
        await self.outbox.send(
            Message(channel, text, kind="ephemeral", user=user, source="conversation")
        )

    async def _replace_message(self, click: Click, text: str) -> None:
        if click.channel_id and click.message_ts:
            await self.outbox.send(
                Message(
                    click.channel_id,
                    text,
                    blocks=[kit.section(text)],
                    kind="update",
                    ts=click.message_ts,
                )
            )


@dataclass(frozen=True)
class Heard:
    """A proposal as it will be shown: the summary, the spec, and what comes with it."""

    summary: str
    spec: proposals.Spec
    template: str | None = None
    offer: Question | None = None


def _number(text: str) -> int | None:
    return row_id(text)


def _hook_summary(spec: HookSpec, asker: Actor) -> str:
    channel = kit.channel_mention(spec.channel or asker.channel_id)
    sender = "any sender" if spec.preset == "auto" else spec.preset
    return f"a webhook *{spec.name}* for {sender}, posting in {channel}."


def _not_understood(heard: NotUnderstood) -> str:
    near = f' (near "{heard.part}")' if heard.part else ""
    return f"Sorry, I didn't get that{near}: {heard.reason}. You can fill in a form instead, or see `/trigger help`."


def _form_button() -> kit.Block:
    return ui.actions([ui.button("Open the form", home.HOME_NEW_TRIGGER, None)])


def _notice_modal(text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "Chat-ops bot"},
        "close": {"type": "plain_text", "text": "OK"},
        "blocks": [kit.section(text)],
    }
