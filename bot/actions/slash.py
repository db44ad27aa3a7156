"""``/action``: named outgoing requests, made and run from Slack.

Each subcommand parses its words into typed values once (`bot.actions.spec`), hands them
to `ActionService`, and answers privately. Bad input never raises out of here: it becomes
a reply naming the part that is wrong, with an example that works.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.actions.runs import outcome_line
from bot.actions.service import EVERYONE, ActionService
from bot.actions.spec import (
    ADD_EXAMPLE,
    BodyError,
    body_kind_of,
    encode_body,
    parse_add,
    plain_options,
    request_lines,
    settings_text,
)
from bot.audit import note_in
from bot.errors import SpecError, UsageError
from bot.models import Action, ActionRun
from bot.slack.blocks import escape_mrkdwn, truncate
from bot.slack.slash import Command, Reply, Subcommand, run_subcommand
from bot.slack.text import parse_channel, parse_key_values, parse_user, unescape
from bot.slack.users import UserDirectory
from bot.usercode import Failed

SETTABLE = ("allow", "confirm", "timeout", "retries")
YES = ("yes", "y", "on", "true")

HELP = f"""*Actions* — the bot sends a request to another system: a form → your CRM, a purchase → your inventory, a button → restart a service.
• `/action add NAME METHOD URL [auth=bearer:SECRET|basic:SECRET] [header.NAME=VALUE|secret:SECRET …] [body=json|form] [confirm=yes] [timeout=10s] [retries=5]` (`/action add` alone opens a form)
• `/action body NAME {{"email": {{{{ payload.email|tojson }}}}}}` — the body, a template rendering JSON (`body=form`: a JSON object of fields) · `/action body NAME clear`
• `/action reply NAME Lead {{{{ response.json.id }}}} created` — a line from the response, said in the thread
• `/action list` · `show NAME` · `test NAME [key=value …]` (shows the request, sends nothing) · `run NAME [key=value …]` · `log NAME`
• `/action set NAME allow=@user,#channel|everyone confirm=yes timeout=10s retries=5` · `pause` · `resume` · `delete`
Run them from a hook (`/hook set NAME then=ACTION post=off`), a trigger (`/trigger set NAME then=ACTION on=problem`) or buttons (`buttons=ACTION` on a hook or trigger).
Example: `{ADD_EXAMPLE}`"""

OpenForm = Callable[[Command], Awaitable[None]]


@dataclass
class ActionSlash:
    """The ``/action`` slash command."""

    service: ActionService
    users: UserDirectory
    open_form: OpenForm | None = None

    async def __call__(self, command: Command) -> Reply:
        subcommands: dict[str, Subcommand] = {
            "add": self.add,
            "create": self.add,
            "body": self.body,
            "reply": self.reply,
            "list": self.list_all,
            "show": self.show,
            "test": self.test,
            "run": self.run,
            "log": self.log,
            "set": self.set,
            "pause": self.pause,
            "resume": self.resume,
            "delete": self.delete,
        }
        return await run_subcommand(command, "/action", subcommands, HELP)

    async def add(self, command: Command, words: list[str], _rest: str) -> Reply:
        if not words and self.open_form is not None and command.trigger_id:
            await self.open_form(command)
            return Reply("")
        action = await self.service.create(command.actor, parse_add(words))
        then = (
            f'Give it a body: `/action body {action.name} {{"name": {{{{ payload.name|tojson }}}}}}`, '
            if action.method not in ("GET", "HEAD", "DELETE")
            else ""
        )
        return Reply(
            f"Made action *{action.name}*: `{action.method} {escape_mrkdwn(action.url)}`.\n"
            f"{then}try it with `/action test {action.name}`, and run it from a hook with "
            f"`/hook set HOOK then={action.name}`."
        )

    async def body(self, command: Command, words: list[str], rest: str) -> Reply:
        action = await self._named(command, words, "body")
        source = _after_name(rest)
        if not source:
            raise UsageError(
                f"Give the body after the name. Example: `/action body {action.name} "
                '{"email": {{ payload.email|tojson }}}`'
            )
        if source == "clear":
            await self.service.set_body(command.actor, action, None)
            return Reply(f"*{action.name}* sends no body now.")
        await self.service.set_body(command.actor, action, source)
        return Reply(
            f"*{action.name}* has its body. See it: `/action test {action.name} key=value`"
        )

    async def reply(self, command: Command, words: list[str], rest: str) -> Reply:
        action = await self._named(command, words, "reply")
        source = _after_name(rest)
        if not source:
            raise UsageError(
                f"Give the line after the name. Example: `/action reply {action.name} "
                "Lead {{ response.json.id }} created`"
            )
        if source == "clear":
            await self.service.set_reply(command.actor, action, None)
            return Reply(f"*{action.name}* says only its outcome in the thread now.")
        await self.service.set_reply(command.actor, action, source)
        return Reply(f"*{action.name}* will say that line in the thread after each success.")

    async def list_all(self, command: Command, _words: list[str], _rest: str) -> Reply:
        actions = await self.service.all_of(command.team_id)
        if not actions:
            return Reply(f"No actions yet. Make one: `{ADD_EXAMPLE}`")
        return Reply("*Actions*\n" + "\n".join(f"• {action_line(a)}" for a in actions))

    async def show(self, command: Command, words: list[str], _rest: str) -> Reply:
        action = await self._named(command, words, "show")
        zone = await self.users.zone(command.user_id)
        lines = [
            f"*{action.name}*{'  *(paused)*' if action.paused else ''}",
            "```" + "\n".join(request_lines(action, None, has_body=bool(action.body))) + "```",
            f"*Body template:* {'`' + action.body + '`' if action.body else 'none (no body)'}",
            f"*Options:* `{settings_text(action)}`",
            f"*Reply:* {'`' + action.reply + '`' if action.reply else 'none'}",
            f"*Who may run it:* {allowed_text(action)}",
            f"*Run by:* {', '.join(await self.service.users_of(action)) or 'nothing yet'}",
            f"*Last change:* {note_in(action.last_change, zone)}",
            *[f"• {run_line(run, zone)}" for run in await self.service.log(action, limit=3)],
        ]
        return Reply("\n".join(lines))

    async def test(self, command: Command, words: list[str], _rest: str) -> Reply:
        action = await self._named(command, words, "test")
        params = _params(words[1:], action.name, "test")
        rendered = await self.service.render_body(action, sample_context(params))
        if isinstance(rendered, Failed):
            return Reply(
                f"The body template of *{action.name}* fails on that sample ({rendered}); "
                "a run would fail the same way and send nothing.",
                ok=False,
            )
        try:
            kind = body_kind_of(action.body_kind)
            body = encode_body(rendered, kind) if rendered is not None else None
        except BodyError as error:
            return Reply(f"*{action.name}* would not be sent: {error}.", ok=False)
        shown = "\n".join(request_lines(action, body))
        return Reply(f"*{action.name}* would send (nothing was sent):\n```{shown}```")

    async def run(self, command: Command, words: list[str], _rest: str) -> Reply:
        action = await self._named(command, words, "run")
        params = _params(words[1:], action.name, "run")
        # Only a yes confirms: "confirm=no" must not run what asks first.
        if action.confirm and params.get("confirm", "").strip().lower() not in YES:
            kept = " ".join(w for w in words[1:] if not w.lower().startswith("confirm="))
            raise UsageError(
                f"*{action.name}* asks first: run it with `/action run {action.name} "
                f"{kept} confirm=yes`".replace("  ", " ")
            )
        params.pop("confirm", None)
        given = " ".join(f"{key}={value}" for key, value in params.items())
        how = f"ran it by hand{f' with {given}' if given else ''}"
        run = await self.service.run_by_hand(
            command.actor, action, {"params": params, "payload": params}, truncate(how, 300)
        )
        if run.status == "failed":
            return Reply(f"*{action.name}* was not sent: {run.detail}", ok=False)
        return Reply(f"Running *{action.name}*; see how it went with `/action log {action.name}`.")

    async def log(self, command: Command, words: list[str], _rest: str) -> Reply:
        action = await self._named(command, words, "log")
        runs = await self.service.log(action)
        if not runs:
            return Reply(f"*{action.name}* has not run yet. Try `/action test {action.name}`.")
        zone = await self.users.zone(command.user_id)
        return Reply(
            f"*Last runs of {action.name}*\n" + "\n".join(f"• {run_line(r, zone)}" for r in runs)
        )

    async def set(self, command: Command, words: list[str], _rest: str) -> Reply:
        action = await self._named(command, words, "set")
        options, extra = parse_key_values(words[1:])
        if extra or not options:
            raise UsageError(
                f"`/action set` takes settings as key=value ({', '.join(SETTABLE)}). "
                f"Example: `/action set {action.name} allow=#ops`"
            )
        changes = parse_settings(options, action.name)
        action = await self.service.change(command.actor, action, changes)
        return Reply(f"Updated *{action.name}*. Who may run it: {allowed_text(action)}.")

    async def pause(self, command: Command, words: list[str], _rest: str) -> Reply:
        action = await self._named(command, words, "pause")
        await self.service.pause(command.actor, action, True)
        return Reply(f"Paused *{action.name}*: its runs are not sent (they show in its log).")

    async def resume(self, command: Command, words: list[str], _rest: str) -> Reply:
        action = await self._named(command, words, "resume")
        await self.service.pause(command.actor, action, False)
        return Reply(f"Resumed *{action.name}*.")

    async def delete(self, command: Command, words: list[str], _rest: str) -> Reply:
        action = await self._named(command, words, "delete")
        await self.service.delete(command.actor, action)
        return Reply(f"Deleted action *{action.name}* and its log.")

    async def _named(self, command: Command, words: list[str], verb: str) -> Action:
        return await self.service.named(command.team_id, words[0] if words else "", verb=verb)


def parse_settings(options: Mapping[str, str], name: str) -> dict[str, Any]:
    """``/action set`` options → column values; `SpecError` naming the setting at fault."""
    unknown = [key for key in options if key not in SETTABLE]
    if unknown:
        raise SpecError(
            f"`{unknown[0]}=` isn't a setting here; use {', '.join(SETTABLE)}. "
            f"Example: `/action set {name} allow=#ops`",
            field="options",
            part=unknown[0],
        )
    changes: dict[str, Any] = {}
    if "allow" in options:
        changes["allow"] = parse_allow(options["allow"], name)
    return changes | plain_options({k: v for k, v in options.items() if k != "allow"})


def parse_allow(value: str, name: str) -> list[str]:
    """``@user,#channel`` (as Slack escapes them) or ``everyone`` → stored ids."""
    allowed: list[str] = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        if part.lower() == EVERYONE:
            allowed.append(EVERYONE)
            continue
        user = parse_user(part)
        channel = parse_channel(part)
        target = user or (channel.id if channel is not None else None)
        if target is None:
            raise SpecError(
                f"`{part}` in `allow=` is not a person or a channel Slack linked (pick them "
                f"from the list as you type @ or #). Example: `/action set {name} allow=@ana,#ops`",
                field="allow",
                part=part,
            )
        allowed.append(target)
    return list(dict.fromkeys(allowed))


def sample_context(params: dict[str, str]) -> dict[str, Any]:
    """What ``/action test`` renders against: the key=value pairs as ``params``, and as
    the hook's ``payload`` and a trigger's ``item``, so either kind of template shows."""
    return {
        "params": params,
        "payload": params,
        "item": params,
        "headers": {},
        "event": "test",
        "sender": "generic",
        "hook": "(test)",
    }


def allowed_text(action: Action) -> str:
    said = ["its creator <@" + action.created_by + ">", "admins"]
    for target in action.allow:
        said.append(
            "everyone"
            if target == EVERYONE
            else f"<#{target}>"
            if target[:1] in "CG"
            else f"<@{target}>"
        )
    return ", ".join(said)


def action_line(action: Action) -> str:
    return (
        f"*{action.name}* `{action.method} {escape_mrkdwn(action.url)}`"
        + (" · asks first" if action.confirm else "")
        + (" · paused" if action.paused else "")
    )


def run_line(run: ActionRun, zone: ZoneInfo) -> str:
    """One run in ``/action log``: when, why, how it went, how many attempts."""
    when = f"{run.created_at.astimezone(zone):%m-%d %H:%M:%S %Z}"
    state = {
        "pending": "waiting to be sent" if run.attempts == 0 else "waiting to retry",
        "sending": "sending",
    }.get(run.status) or outcome_line("", run).removeprefix("→ : ")
    if run.status == "pending" and run.detail:
        state += f" (last: {run.detail})"
    attempts = f"{run.attempts} attempt{'s' if run.attempts != 1 else ''}"
    return f"{when} · {run.cause} · *{state}* · {attempts}"


def _params(words: list[str], name: str, verb: str) -> dict[str, str]:
    params, extra = parse_key_values(words)
    if extra:
        raise UsageError(
            f"After the name, give key=value pairs (they are `params` in the body). "
            f"Example: `/action {verb} {name} service=api`"
        )
    return params


def _after_name(rest: str) -> str:
    """What follows the action's name in the command text, Slack's escaping undone."""
    parts = unescape(rest).split(None, 1)
    return parts[1].strip() if len(parts) == 2 else ""
