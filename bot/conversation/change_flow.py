"""Changing hooks and triggers by talking, with **Apply / Cancel**.

"pause the standup reminder" is read (`bot.conversation.changes`), matched to the
person's things, checked against the same permission the slash command checks, and
answered with the exact change and Apply / Cancel; Apply looks the thing up again and
changes it through `TriggerService` / `HookService`, which check permission once more.
Questions ("what's failing?", "show me the sales report") are answered at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from bot.actions.service import ActionService
from bot.actions.spec import names_in
from bot.audit import Actor
from bot.clock import Clock
from bot.config import Settings
from bot.conversation import changes as said
from bot.conversation import drafts as proposals
from bot.conversation import modals as forms
from bot.conversation import spoken_actions as spoken
from bot.conversation.phrasing import respell
from bot.errors import SpecError, UsageError
from bot.models import Hook, Trigger
from bot.outbox import Message, Outbox
from bot.slack import blocks as kit
from bot.slack import interactive as ui
from bot.slack.blocks import escape_mrkdwn
from bot.slack.listeners import ActionHandler
from bot.slack.payloads import Click, row_id
from bot.slack.slash import Command, CommandHandler, Reply
from bot.slack.text import parse_channel
from bot.slack.users import UserDirectory
from bot.triggers import slash as trigger_text
from bot.triggers.acting import DEFAULT_ON
from bot.triggers.schedule import local_time, schedule_from_dict
from bot.triggers.service import TriggerService
from bot.triggers.slash import TriggerSlash
from bot.triggers.spec import TriggerSpec
from bot.webhooks.service import HookService
from bot.webhooks.spec import HookSettings

CHANGE_APPLY: Final = "change_apply"
CHANGE_CANCEL: Final = "change_cancel"
CHANGE_PICK: Final = "change_pick"
ACTION_FORM: Final = "change_action_form"
_CHOICES: Final = 5  # things offered as buttons when the words fit several
_LISTED: Final = 30  # things listed in one answer

Thing = Trigger | Hook
Post = Callable[[str, str, list[kit.Block] | None], Awaitable[None]]


@dataclass
class ChangesByTalking:
    """See the module docstring."""

    settings: Settings
    clock: Clock
    outbox: Outbox
    users: UserDirectory
    triggers: TriggerService
    trigger_slash: TriggerSlash
    hooks: HookService
    drafts: proposals.Drafts
    action_service: ActionService
    commands: Mapping[str, CommandHandler]  # "/action", "/trigger", "/hook": what Apply runs
    open_action_form: Callable[[Command], Awaitable[None]]

    async def reply(self, asker: Actor, text: str) -> bool:
        """Answer ``text`` if it asks about or changes an existing thing; False otherwise
        (it may be a request to set something new up)."""
        if await self._about_actions(asker, text):
            return True
        request = said.read_change(text)
        if request is None:
            return False
        if request.verb == "list":
            await self._post(asker, await self._list(asker))
            return True
        if request.verb == "failing":
            await self._post(asker, await self._failing(asker))
            return True
        found = await self._find(asker, request)
        if isinstance(found, str):
            if not request.strong:
                return False
            await self._post(asker, found)
            return True
        if isinstance(found, list):
            await self._ask_which(asker, request, found)
            return True
        try:
            await self._propose(asker, request, found)
        except UsageError as error:
            await self._post(asker, str(error))
        return True

    def actions(self) -> dict[str, ActionHandler]:
        """The Apply and Cancel buttons, and the buttons that pick which thing was meant."""
        return {
            CHANGE_APPLY: self._apply,
            CHANGE_CANCEL: self._cancel,
            CHANGE_PICK: self._pick,
            ACTION_FORM: self._action_form,
        }

    # Actions: run one, wire one to a trigger or hook, or ask what there is

    async def _about_actions(self, asker: Actor, text: str) -> bool:
        """Answer ``text`` if it is about actions (`bot.conversation.spoken_actions`)."""
        names = [a.name for a in await self.action_service.all_of(asker.team_id)]
        mine = await self._candidates(asker, created_by=asker.user_id)
        heard = spoken.answer(text, names, mine)
        if isinstance(heard, spoken.Unsure) and heard.slot == "thing" and not heard.choices:
            everyone = spoken.answer(text, names, await self._candidates(asker, created_by=None))
            heard = everyone if isinstance(everyone, spoken.Proposed) else heard
        if heard is None:
            return False
        try:
            if isinstance(heard, spoken.Unsure) and heard.choices and heard.request:
                await self._ask_which_wired(asker, heard.text, heard.request, heard.choices)
            elif isinstance(heard, spoken.Unsure):
                await self._post(asker, heard.text)
            elif heard.request.verb == "create":
                await self._offer_action_form(asker, heard.command)
            elif heard.request.verb in spoken.READ_ONLY:
                await self._post(asker, (await self._command(asker, heard.command)).text)
            else:
                await self._propose_command(asker, heard)
        except UsageError as error:
            await self._post(asker, str(error))
        return True

    async def _ask_which_wired(
        self,
        asker: Actor,
        text: str,
        request: spoken.ActionRequest,
        choices: tuple[said.Candidate, ...],
    ) -> None:
        """Several things fit: a button per thing, as for changes."""
        document: dict[str, object] = {
            "verb": "pick",
            "asked": "command",
            "request": spoken.stored(request),
            "choices": [{"thing": c.thing, "id": c.id} for c in choices],
        }
        pick_id = await self.drafts.save_change(asker, document)
        row = [
            ui.button(c.name, CHANGE_PICK, f"{pick_id}:{index}") for index, c in enumerate(choices)
        ]
        await self._post(asker, text, [kit.section(text), ui.actions(row)])

    async def _offer_action_form(self, asker: Actor, command: str) -> None:
        """Making an action needs its details said exactly: the form, or the command."""
        text = (
            "An action is a request the bot sends for you; its details need saying exactly, "
            f"so fill them in: `{command}` (add `auth=bearer:SECRET`, `header.NAME=VALUE`, "
            "`body=json` as needed), then `/action body NAME TEMPLATE`. Or open the form:"
        )
        button = ui.button("Open the /action add form", ACTION_FORM, "add", style="primary")
        await self._post(asker, text, [kit.section(text), ui.actions([button])])

    async def _action_form(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        channel = click.channel_id or ""
        await self.open_action_form(
            Command(click.team_id, click.user_id, channel, "", trigger_id=click.trigger_id)
        )

    async def _propose_command(self, asker: Actor, heard: spoken.Proposed) -> None:
        """Run or wire an action: checked now as the command will be, then Apply / Cancel."""
        request = heard.request
        action = await self.action_service.named(asker.team_id, request.action, verb="run")
        document: dict[str, object] = {"verb": "command"}
        if request.verb == "run":
            if not await self.action_service.may_run(asker, action):
                raise UsageError(
                    f"You may not run *{action.name}*: ask <@{action.created_by}> (who made "
                    f"it) or an admin to `/action set {action.name} allow=<@{asker.user_id}>`."
                )
            command = heard.command + (" confirm=yes" if action.confirm else "")
            given = ", ".join(f"{key}={value}" for key, value in request.params)
            line = f"Run *{action.name}* now{f' with {given}' if given else ''}."
        else:
            assert heard.thing is not None
            thing = await self._load(asker, heard.thing.thing, heard.thing.id)
            await self._require_may_change(asker, thing)
            _require_one_on(thing, request)
            command = spoken.command_of(request, heard.thing, _wired(thing, request))
            line = _wiring_line(request, thing)
            document |= _document("command", thing)
        document["command"] = command
        change_id = await self.drafts.save_change(asker, document)
        text = f"{line}\nSame as `{command}`."
        buttons = [
            ui.button("Apply", CHANGE_APPLY, str(change_id), style="primary"),
            ui.button("Cancel", CHANGE_CANCEL, str(change_id)),
        ]
        await self._post(asker, text, [kit.section(text), ui.actions(buttons)])

    async def _command(self, actor: Actor, command: str) -> Reply:
        """``command`` run as ``actor`` typed it: the same parsing and permission checks."""
        slash, _, rest = command.partition(" ")
        typed = Command(actor.team_id, actor.user_id, actor.channel_id, rest)
        return await self.commands[slash](typed)

    async def _ask_which(
        self, asker: Actor, request: said.ChangeRequest, matches: list[said.Candidate]
    ) -> None:
        """Several things fit the words: one question, a button per thing."""
        shown = matches[:_CHOICES]
        document: dict[str, object] = {
            "verb": "pick",
            "asked": request.verb,
            "schedule": request.schedule,
            "channel": request.channel,
            "span": request.span,
            "choices": [{"thing": c.thing, "id": c.id} for c in shown],
        }
        pick_id = await self.drafts.save_change(asker, document)
        text = f'Which one do you mean by "{escape_mrkdwn(request.said)}"?'
        row = [
            ui.button(c.name, CHANGE_PICK, f"{pick_id}:{index}") for index, c in enumerate(shown)
        ]
        await self._post(asker, text, [kit.section(text), ui.actions(row)])

    async def _pick(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        number, _, index = click.value.partition(":")
        try:
            waiting = await self.drafts.change_for(_number(number), click.user_id)
            choices = waiting.change.get("choices")
            place = row_id(index)
            if not isinstance(choices, list) or place is None or place >= len(choices):
                raise UsageError("That choice is no longer offered.")
            chosen = choices[place]
            thing = await self._load(click.actor, str(chosen["thing"]), int(chosen["id"]))
            wiring = spoken.restored(waiting.change.get("request"))
            request = _request_of(waiting.change) if wiring is None else None
        except UsageError as error:
            await self._tell(click, str(error))
            return
        await self.drafts.close(waiting.id, "answered")
        await self._replace(click, f"Which one: *{thing.name}*")
        try:
            if wiring is not None:
                await self._propose_command(waiting.asker, _wiring(wiring, thing))
                return
            assert request is not None
            await self._propose(waiting.asker, request, thing)
        except UsageError as error:
            await self._post(waiting.asker, str(error))

    # Finding the thing meant

    async def _find(
        self, asker: Actor, request: said.ChangeRequest
    ) -> Thing | list[said.Candidate] | str:
        """The one thing ``request`` names, the ones it could mean, or what to answer when
        it names none."""
        if request.subject == said.IT:
            last = await self._last_discussed(asker)
            return last or 'I\'m not sure what "it" is here: say its name, e.g. `pause standup`.'
        mine = await self._candidates(asker, created_by=asker.user_id)
        matches = said.match(request, mine) or said.match(
            request, await self._candidates(asker, created_by=None)
        )
        if len(matches) == 1:
            return await self._load(asker, matches[0].thing, matches[0].id)
        if matches:
            return matches
        yours = ", ".join(f"*{c.name}*" for c in mine[:_LISTED]) or "none yet"
        return (
            f'I couldn\'t find a trigger or hook that "{escape_mrkdwn(request.said)}" '
            f"names. Yours: {yours}. Say it with the name, e.g. `pause standup`."
        )

    async def _candidates(self, asker: Actor, *, created_by: str | None) -> list[said.Candidate]:
        triggers = await self.triggers.all_of(asker.team_id, created_by=created_by)
        hooks = await self.hooks.all_of(asker.team_id, created_by=created_by)
        found = [
            said.Candidate("trigger", t.id, t.name, t.kind, said.described(t.target, t.kind))
            for t in triggers
            if t.id is not None
        ]
        found += [
            said.Candidate("hook", h.id, h.name, "hook", f"{h.preset} hook")
            for h in hooks
            if h.id is not None
        ]
        return found

    async def _last_discussed(self, asker: Actor) -> Thing | None:
        last = await self.drafts.last_discussed(asker)
        if last is None:
            return None
        thing, number, name = last.get("thing"), last.get("id"), last.get("name")
        if isinstance(number, int) and thing in ("trigger", "hook"):
            try:
                return await self._load(asker, str(thing), number)
            except UsageError:
                return None
        if isinstance(name, str) and thing == "trigger":
            return await self.triggers.find(asker.team_id, name)
        if isinstance(name, str) and thing == "hook":
            return await self.hooks.find(asker.team_id, name)
        return None

    async def _load(self, asker: Actor, thing: str, number: int) -> Thing:
        found: Thing | None
        if thing == "trigger":
            found = await self.triggers.by_id(asker.team_id, number)
        else:
            found = await self.hooks.by_id(asker.team_id, number)
        if found is None:
            raise UsageError("That no longer exists.")
        return found

    # Proposing the change

    async def _propose(self, asker: Actor, request: said.ChangeRequest, thing: Thing) -> None:
        if request.verb == "show":
            await self._post(asker, await self._shown(asker, thing))
            await self.drafts.save_change(asker, _document("show", thing) | {"done": True})
            return
        if request.verb != "run":
            await self._require_may_change(asker, thing)
        document = _document(request.verb, thing)
        document |= await self._details(asker, request, thing)
        change_id = await self.drafts.save_change(asker, document)
        text = await self._describe(asker, document, thing)
        blocks = [
            kit.section(text),
            ui.actions(
                [
                    ui.button("Apply", CHANGE_APPLY, str(change_id), style="primary"),
                    ui.button("Cancel", CHANGE_CANCEL, str(change_id)),
                ]
            ),
        ]
        await self._post(asker, text, blocks)

    async def _require_may_change(self, asker: Actor, thing: Thing) -> None:
        if isinstance(thing, Trigger):
            await self.triggers.require_may_change(asker, thing)
        elif not await self.hooks.may_change(asker, thing):
            raise UsageError(
                f"Only <@{thing.created_by}>, who created *{thing.name}*, or an admin can "
                "change it."
            )

    async def _details(
        self, asker: Actor, request: said.ChangeRequest, thing: Thing
    ) -> dict[str, object]:
        """What the change needs beyond its verb, checked now so Apply cannot fail on it."""
        if request.verb == "mute":
            if not isinstance(thing, Trigger):
                raise UsageError(f"Hooks can't be muted; `pause {thing.name}` stops it.")
            until = said.mute_until(request.span, self.clock.now(), await self._zone(asker))
            if until is None:
                raise UsageError(
                    f'I couldn\'t read "{escape_mrkdwn(request.span or "")}" as how long: try '
                    f"`mute {thing.name} for 2 hours` or `mute {thing.name} until 18:00`."
                )
            return {
                "until": until.isoformat(),
                "span": _span_words(request.span, until, self.clock.now()),
            }
        if request.verb == "reschedule":
            if not isinstance(thing, Trigger):
                raise UsageError(f"A hook has no schedule: *{thing.name}* posts as it receives.")
            heard = respell(request.schedule or "", {}, "UTC")
            zone = heard.zone or schedule_from_dict(thing.schedule).tz_name
            document: dict[str, object] = {"schedule": heard.text, "zone": zone}
            await self._rescheduled(asker, thing, document)  # refuses a bad one now
            return document
        if request.verb == "move":
            ref = parse_channel(request.channel or "")
            if ref is None:
                raise UsageError("Say where to move it, e.g. `move blog to #news`.")
            return {"channel": ref.target, "channel_shown": kit.channel_mention(ref.target)}
        return {}

    async def _rescheduled(
        self, asker: Actor, trigger: Trigger, document: dict[str, object]
    ) -> TriggerSpec:
        """``trigger`` on the schedule in ``document``, in its zone unless one was said."""
        form = _form_of(trigger)
        form = replace(form, schedule=str(document["schedule"]), timezone=str(document["zone"]))
        try:
            return forms.trigger_spec_of(
                form,
                user_zone=await self._zone(asker),
                now=self.clock.now(),
                min_interval=timedelta(seconds=self.settings.trigger_min_interval),
            )
        except SpecError as error:
            raise UsageError(f"{error} Nothing was changed.") from None

    async def _describe(self, asker: Actor, document: dict[str, object], thing: Thing) -> str:
        """The exact change, as the person will see it before Apply."""
        name = f"*{thing.name}*"
        kind = "trigger" if isinstance(thing, Trigger) else "hook"
        verb = str(document["verb"])
        what = _what(thing)
        if verb == "mute":
            until = datetime.fromisoformat(str(document["until"]))
            when = local_time(until, await self._zone(asker))
            line = f"Mute {name} ({what}) until {when}: it keeps running, alerts wait."
        elif verb == "reschedule":
            assert isinstance(thing, Trigger)
            before = schedule_from_dict(thing.schedule).describe()
            spec = await self._rescheduled(asker, thing, document)
            line = f"Change {name}'s schedule: {before} → *{spec.schedule.describe()}*."
        elif verb == "move":
            before = kit.channel_mention(_channel_of(thing))
            line = f"Move {name} ({what}) from {before} to {document['channel_shown']}."
        else:
            line = {
                "pause": f"Pause {name} ({what}): it stops until resumed.",
                "resume": f"Resume {name} ({what}).",
                "delete": f"Delete {name} ({what}) for good.",
                "run": f"Run {name} ({what}) now.",
            }[verb]
        command = _command(kind, verb, thing.name, document)
        return f"{line}\nSame as `{command}`." if command else line

    # Apply / Cancel

    async def _apply(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        try:
            waiting = await self.drafts.change_for(click.number, click.user_id)
            document = waiting.change
            if document.get("verb") == "command":
                await self._apply_command(click, waiting.id, str(document["command"]))
                return
            number = document.get("id")
            if not isinstance(number, int):
                raise UsageError("That change is no longer waiting.")
            thing = await self._load(click.actor, str(document.get("thing")), number)
            text = await self._do(click.actor, document, thing)
        except (UsageError, SpecError) as error:
            await self._tell(click, str(error))
            return
        await self.drafts.close(waiting.id, "applied")
        await self._tell(click, text)
        await self._replace(click, f":white_check_mark: Applied by <@{click.user_id}>: {text}")

    async def _apply_command(self, click: Click, draft: int, command: str) -> None:
        """Apply a change said as its slash command, exactly as if the clicker typed it."""
        answer = await self._command(click.actor, command)
        if not answer.ok:
            await self._tell(click, answer.text)
            return
        await self.drafts.close(draft, "applied")
        await self._tell(click, answer.text)
        await self._replace(click, f":white_check_mark: Applied by <@{click.user_id}>: `{command}`")

    async def _do(self, actor: Actor, document: dict[str, object], thing: Thing) -> str:
        verb = str(document["verb"])
        if isinstance(thing, Hook):
            return await self._do_hook(actor, verb, document, thing)
        if verb == "pause":
            return trigger_text.paused_text(await self.triggers.pause(actor, thing))
        if verb == "resume":
            return trigger_text.resumed_text(await self.triggers.resume(actor, thing))
        if verb == "delete":
            await self.triggers.delete(actor, thing)
            return f"Deleted *{thing.name}*."
        if verb == "mute":
            until = datetime.fromisoformat(str(document["until"]))
            muted = await self.triggers.mute(actor, thing, until)
            return trigger_text.muted_text(muted, until, await self._zone(actor))
        if verb == "run":
            return await self.trigger_slash.run_for(actor, thing)
        if verb == "reschedule":
            spec = await self._rescheduled(actor, thing, document)
            return trigger_text.updated_text(await self.triggers.redefine(actor, thing, spec))
        form = replace(_form_of(thing), channel=str(document["channel"]))
        spec = forms.trigger_spec_of(
            form,
            user_zone=await self._zone(actor),
            now=self.clock.now(),
            min_interval=timedelta(seconds=self.settings.trigger_min_interval),
        )
        return trigger_text.updated_text(await self.triggers.redefine(actor, thing, spec))

    async def _do_hook(
        self, actor: Actor, verb: str, document: dict[str, object], hook: Hook
    ) -> str:
        if verb == "pause":
            return f"Paused hook *{(await self.hooks.pause(actor, hook)).name}*."
        if verb == "resume":
            return f"Resumed hook *{(await self.hooks.resume(actor, hook)).name}*."
        if verb == "delete":
            await self.hooks.delete(actor, hook)
            return f"Deleted hook *{hook.name}*; its URL now answers 404."
        if verb == "move":
            changed = await self.hooks.change(
                actor, hook, HookSettings(channel=str(document["channel"]))
            )
            return f"Hook *{changed.name}* now posts in {kit.channel_mention(changed.channel_id)}."
        raise UsageError(f"A hook can't be {verb}d; try `/hook test {hook.name}`.")

    async def _cancel(self, body: dict[str, Any]) -> None:
        click = Click.from_body(body)
        try:
            waiting = await self.drafts.change_for(click.number, click.user_id)
        except UsageError as error:
            await self._tell(click, str(error))
            return
        await self.drafts.close(waiting.id, "cancelled")
        await self._replace(click, "Cancelled; nothing was changed.")

    # Answers that change nothing

    async def _list(self, asker: Actor) -> str:
        triggers = await self.triggers.all_of(asker.team_id, created_by=asker.user_id)
        hooks = await self.hooks.all_of(asker.team_id, created_by=asker.user_id)
        if not triggers and not hooks:
            return (
                "You have no triggers or hooks yet. Tell me what to set up, e.g. "
                "`check https://example.com every 5 minutes and tell #ops if it's down`."
            )
        now, zone = self.clock.now(), await self._zone(asker)
        lines = [
            f"• *{t.name}*: {_what(t)}, {schedule_from_dict(t.schedule).describe()} · "
            f"{trigger_text.describe_state(t, now, zone)}"
            for t in triggers[:_LISTED]
        ]
        lines += [
            f"• hook *{h.name}* ({h.preset}) in {kit.channel_mention(h.channel_id)}"
            for h in hooks[:_LISTED]
        ]
        more = len(triggers) + len(hooks) - len(lines)
        tail = f"\n…and {more} more (`/trigger list`)" if more > 0 else ""
        return "Yours:\n" + "\n".join(lines) + tail

    async def _failing(self, asker: Actor) -> str:
        triggers = await self.triggers.all_of(asker.team_id)
        now, zone = self.clock.now(), await self._zone(asker)
        states = {t.name: trigger_text.describe_state(t, now, zone) for t in triggers}
        failing = [t for t in triggers if states[t.name].startswith(("failing", "flapping"))]
        if not failing:
            return f"Nothing is failing: {len(triggers)} triggers, none failing or flapping."
        lines = [f"• *{t.name}*: {_what(t)} · {states[t.name]}" for t in failing[:_LISTED]]
        return f"{len(failing)} failing:\n" + "\n".join(lines)

    async def _shown(self, asker: Actor, thing: Thing) -> str:
        if isinstance(thing, Hook):
            where = kit.channel_mention(thing.channel_id)
            state = "paused" if thing.paused else "active"
            return f"Hook *{thing.name}* ({thing.preset}) posts in {where} · {state}. More: `/hook show {thing.name}`."
        state = trigger_text.describe_state(thing, self.clock.now(), await self._zone(asker))
        summary = trigger_text.summary_text(thing, schedule_from_dict(thing.schedule))
        return f"{summary} State: {state}. More: `/trigger show {thing.name}`."

    # Helpers

    async def _zone(self, actor: Actor) -> Any:
        return await self.users.zone(actor.user_id)

    async def _post(self, asker: Actor, text: str, blocks: list[kit.Block] | None = None) -> None:
        message = Message(asker.channel_id, text, blocks=blocks, source="conversation")
        await self.outbox.send(message)

    async def _tell(self, click: Click, text: str) -> None:
        if click.channel_id:
            await self.outbox.send(
                Message(
                    click.channel_id,
                    text,
                    kind="ephemeral",
                    user=click.user_id,
                    source="conversation",
                )
            )

    async def _replace(self, click: Click, text: str) -> None:
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


def _number(text: str) -> int | None:
    return row_id(text)


def _request_of(document: dict[str, object]) -> said.ChangeRequest:
    """The request a "which one?" question was asked for, read back from its draft."""
    verb = said.verb_of(str(document.get("asked")))
    if verb is None:
        raise UsageError("That choice is no longer offered.")

    def text(key: str) -> str | None:
        value = document.get(key)
        return value if isinstance(value, str) else None

    return said.ChangeRequest(
        verb, schedule=text("schedule"), channel=text("channel"), span=text("span")
    )


def _document(verb: str, thing: Thing) -> dict[str, object]:
    kind = "trigger" if isinstance(thing, Trigger) else "hook"
    return {"verb": verb, "thing": kind, "id": thing.id, "name": thing.name}


def _wiring(request: spoken.ActionRequest, thing: Thing) -> spoken.Proposed:
    """``request`` completed with the thing picked for it."""
    kind: Literal["trigger", "hook"] = "hook" if isinstance(thing, Hook) else "trigger"
    assert thing.id is not None
    picked = said.Candidate(
        kind, thing.id, thing.name, thing.kind if isinstance(thing, Trigger) else "hook", ""
    )
    return spoken.Proposed(request, spoken.command_of(request, picked), picked)


def _wired(thing: Thing, request: spoken.ActionRequest) -> list[str]:
    """The actions ``thing`` already runs (or shows as buttons), kept beside the new one."""
    if isinstance(thing, Hook):
        listed = thing.buttons if request.buttons else thing.actions
    else:
        listed = (thing.settings or {}).get("buttons" if request.buttons else "then")
    return names_in(str(listed or ""))


def _require_one_on(thing: Thing, request: spoken.ActionRequest) -> None:
    """A trigger's actions share one ``on=``: adding one for another moment would silently
    move the others, so say so instead."""
    if isinstance(thing, Hook) or request.buttons:
        return
    settings = thing.settings or {}
    running = names_in(str(settings.get("then") or ""))
    on, wanted = str(settings.get("on") or DEFAULT_ON), request.on or DEFAULT_ON
    others = [name for name in running if name != request.action]
    if others and on != wanted:
        listed = ", ".join(f"*{name}*" for name in others)
        raise UsageError(
            f"*{thing.name}* already runs {listed} on={on}, and a trigger's actions share one "
            f"`on=`. To run *{request.action}* on={wanted} instead: "
            f"`/trigger set {thing.name} then={request.action} on={wanted}`; to run it with "
            f"them on={on}: `/trigger set {thing.name} then={','.join([*others, request.action])}`."
        )


def _wiring_line(request: spoken.ActionRequest, thing: Thing) -> str:
    """The change, in words: what will run the action, and when."""
    action, name = f"*{request.action}*", f"*{thing.name}*"
    if request.buttons:
        return f"Put a {action} button under {name}'s messages."
    if isinstance(thing, Hook):
        quiet = ", without posting to Slack" if request.quiet else ""
        return f"Run {action} for each delivery to hook {name}{quiet}."
    when = {
        "problem": "sees a problem",
        "recover": "recovers",
        "item": "finds a new item",
        "always": "runs",
    }[request.on or "problem"]
    return f"Run {action} each time {name} {when}."


def _what(thing: Thing) -> str:
    if isinstance(thing, Hook):
        return f"{thing.preset} hook in {kit.channel_mention(thing.channel_id)}"
    return f"{trigger_text.describe_target(thing, masked=True)} in {kit.channel_mention(thing.channel_id)}"


def _form_of(trigger: Trigger) -> forms.TriggerForm:
    """The trigger as its edit form holds it, its channel kept even when typed by hand."""
    form = forms.TriggerForm.of(trigger)
    zone = schedule_from_dict(trigger.schedule).tz_name
    return replace(form, channel=form.channel or trigger.channel_id, timezone=zone)


def _channel_of(thing: Thing) -> str:
    return thing.channel_id


def _command(kind: str, verb: str, name: str, document: dict[str, object]) -> str | None:
    """The slash command that makes the same change, where there is one."""
    if verb in ("pause", "resume", "delete", "run"):
        return f"/{kind} {verb} {name}"
    if verb == "move" and kind == "hook":
        return f"/hook set {name} channel={document['channel_shown']}"
    if verb == "mute":
        return f"/trigger mute {name} {document['span']}"
    return None


def _span_words(said: str | None, until: datetime, now: datetime) -> str:
    """A mute's span as ``/trigger mute`` takes it: ``until 18:00``, ``2h``, ``90m``."""
    if said is not None and said.lower().startswith("until "):
        return said.lower()
    minutes = max(1, round((until - now).total_seconds() / 60))
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"
