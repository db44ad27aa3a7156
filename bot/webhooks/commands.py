"""``/hook``: create and manage webhook endpoints from Slack.

Each subcommand parses its words into typed values once, then acts. Bad input never
raises out of here: it becomes a private reply naming the part that is wrong, with an
example that works.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.clock import Clock
from bot.config import Settings
from bot.db import Database
from bot.expressions import ExpressionError, compile_expression, compile_template
from bot.models import Delivery, Hook
from bot.outbox import THREAD_MODES
from bot.permissions import Permissions
from bot.slack.blocks import channel_mention, plural
from bot.slack.commands import Command, Reply, Subcommand, UsageError, run_subcommand
from bot.slack.text import parse_channel, parse_key_values, unescape
from bot.webhooks import hooks as store
from bot.webhooks import presets
from bot.webhooks.event import SENDERS, Sender
from bot.webhooks.ingest import DeliveryWriter
from bot.webhooks.processor import default_thread_mode
from bot.webhooks.receiver import new_delivery_id
from bot.webhooks.setup import setup_instructions

NAME = re.compile(r"^[a-z0-9_-]{1,40}$")
PRESETS = ("auto", *SENDERS)
SETTABLE = ("threads", "rate", "channel", "preset", "secret", "run")

HELP = """*Webhooks* — give any system a URL that posts into a channel.
• `/hook create NAME [#channel] [preset=auto|github|gitlab|alertmanager|grafana|sentry|stripe|generic] [secret=VALUE]`
• `/hook list` · `/hook show NAME` · `/hook log NAME` · `/hook test NAME`
• `/hook set NAME threads=update+thread|update|thread|off rate=600 channel=#ops preset=github secret=VALUE`
• `/hook template NAME {{ payload.action }} on {{ payload.repository.full_name }}` · `/hook template NAME clear`
• `/hook filter NAME event == "pull_request" and payload.action in ["opened", "closed"]` · `/hook filter NAME clear`
• `/hook pause NAME` · `/hook resume NAME` · `/hook rotate NAME` · `/hook delete NAME` · `/hook replay NAME DELIVERY_ID`
Example: `/hook create deploys #ops preset=github`"""


@dataclass
class HookCommands:
    """The ``/hook`` slash command."""

    settings: Settings
    db: Database
    clock: Clock
    cache: store.HookCache
    writer: DeliveryWriter
    find_trigger: Callable[[str, str], Awaitable[object | None]]
    permissions: Permissions

    async def __call__(self, command: Command) -> Reply:
        subcommands: dict[str, Subcommand] = {
            "create": self.create,
            "new": self.create,
            "list": self.list_all,
            "show": self.show,
            "set": self.set,
            "delete": self.delete,
            "pause": self.pause,
            "resume": self.resume,
            "rotate": self.rotate,
            "template": self.template,
            "filter": self.filter,
            "test": self.test,
            "log": self.log,
            "replay": self.replay,
        }
        return await run_subcommand(command, "/hook", subcommands, HELP)

    async def create(self, command: Command, words: list[str], _rest: str) -> Reply:
        options, positional = parse_key_values(words)
        name = _valid_name(positional[0] if positional else "", "create")
        channel = _channel_of(positional[1:], command.channel_id)
        _only_options(options, ("preset", "secret"), "/hook create deploys #ops preset=github")
        preset = _valid_preset(options.get("preset", "auto"))
        if await store.find_hook(self.db, command.team_id, name):
            raise UsageError(
                f"A hook named `{name}` exists already. Pick another name, or `/hook show {name}`."
            )
        chosen = _setting("secret", options["secret"]) if "secret" in options else None
        secret = chosen or (store.new_secret() if preset not in ("sentry", "stripe") else None)
        hook = Hook(
            team_id=command.team_id,
            name=name,
            channel_id=channel,
            preset=preset,
            token=store.new_token(),
            secret=secret,
            created_by=command.user_id,
            created_at=self.clock.now(),
        )
        hook = await self._save(hook, command, "created")
        url = self.settings.hook_url(hook.token)
        return Reply(
            f"Created hook *{name}* → {channel_mention(channel)}.\n*URL:* `{url}`\n"
            + (f"*Secret* (shown once — keep it): `{secret}`\n" if secret else "")
            + setup_instructions(preset, url, secret)
        )

    async def list_all(self, command: Command, _words: list[str], _rest: str) -> Reply:
        hooks = await store.list_hooks(self.db, command.team_id)
        if not hooks:
            return Reply("No hooks yet. Create one: `/hook create deploys #ops preset=github`")
        lines = [
            f"• *{h.name}* → {channel_mention(h.channel_id)} · {h.preset}{' · paused' if h.paused else ''}"
            for h in hooks
        ]
        return Reply("*Hooks*\n" + "\n".join(lines))

    async def show(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._hook(command, words, "show")
        threads = hook.threads or f"{default_thread_mode(hook.preset)} (the {hook.preset} default)"
        deliveries = await store.recent_deliveries(self.db, _id(hook), limit=5)
        may_see = await self.permissions.may_change(command.user_id, hook.created_by)
        # Only who may change the hook sees its URL: without a secret the URL is its only
        # credential, and with one it is still where forged requests would be sent.
        url = (
            f"`{self.settings.hook_url(hook.token)}`"
            if may_see
            else f"shown to <@{hook.created_by}> and admins"
        )
        lines = [
            f"*{hook.name}* → {channel_mention(hook.channel_id)}{'  *(paused)*' if hook.paused else ''}",
            f"*URL:* {url}",
            f"*Preset:* {hook.preset} · *Signed:* {'yes' if hook.secret else 'no (the URL is the secret)'}",
            f"*Threads:* {threads} · *Rate limit:* {hook.rate_limit or self.settings.webhook_rate_limit}/min",
            f"*Template:* {'`' + hook.template[:200] + '`' if hook.template else 'the preset default'}",
            f"*Filter:* {'`' + hook.filter + '`' if hook.filter else 'none'}",
            f"*Rejected requests:* {hook.rejected}",
            f"*Last change:* {hook.last_change or '—'}",
            "*Last deliveries:*",
            *(_delivery_line(d, m) for d, m in deliveries),
        ]
        if not deliveries:
            lines.append("  none yet")
        return Reply("\n".join(lines))

    async def set(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._owned_hook(command, words, "set")
        options, extra = parse_key_values(words[1:])
        if extra or not options:
            raise UsageError(
                f"`/hook set` takes settings as key=value ({', '.join(SETTABLE)}). "
                f"Example: `/hook set {hook.name} threads=thread rate=120`"
            )
        _only_options(options, SETTABLE, f"/hook set {hook.name} threads=off")
        run = options.get("run")
        if run and await self.find_trigger(command.team_id, run.lower()) is None:
            raise UsageError(
                f"There is no trigger named `{run}` to run. `/trigger list` shows them; `run=` with nothing clears it."
            )
        changes = {
            _SETTING_COLUMNS.get(key, key): _setting(key, value) for key, value in options.items()
        }
        said = ", ".join(
            f"{k}={'(new secret)' if k == 'secret' else v}" for k, v in options.items()
        )
        hook = await self._save(replace_hook(hook, changes), command, f"set {said}")
        return Reply(f"Updated *{hook.name}*: {said}")

    async def delete(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._owned_hook(command, words, "delete")
        await store.delete_hook(self.db, hook, user_id=command.user_id, now=self.clock.now())
        self.cache.forget(hook.token)
        return Reply(f"Deleted hook *{hook.name}*; its URL now answers 404.")

    async def pause(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._owned_hook(command, words, "pause")
        await self._save(replace_hook(hook, {"paused": True}), command, "paused")
        return Reply(
            f"Paused *{hook.name}*: deliveries are accepted (202) but dropped, and shown in `/hook log {hook.name}`."
        )

    async def resume(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._owned_hook(command, words, "resume")
        await self._save(replace_hook(hook, {"paused": False}), command, "resumed")
        return Reply(f"Resumed *{hook.name}*.")

    async def rotate(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._owned_hook(command, words, "rotate")
        old_token = hook.token
        generated = hook.secret is not None and hook.preset not in ("sentry", "stripe")
        secret = store.new_secret() if generated else hook.secret
        changes = {"token": store.new_token(), "secret": secret}
        hook = await self._save(replace_hook(hook, changes), command, "rotated")
        self.cache.forget(old_token)
        url = self.settings.hook_url(hook.token)
        return Reply(
            f"Rotated *{hook.name}*. The old URL now answers 404.\n*New URL:* `{url}`\n"
            + (f"*New secret* (shown once): `{secret}`\n" if generated else "")
            + setup_instructions(hook.preset, url, secret)
        )

    async def template(self, command: Command, words: list[str], rest: str) -> Reply:
        hook = await self._owned_hook(command, words, "template")
        source = _after_name(rest)
        if not source:
            raise UsageError(
                f"Give the template after the name. Example: `/hook template {hook.name} *{{{{ payload.action }}}}* by {{{{ payload.sender.login }}}}`"
            )
        if source == "clear":
            await self._save(replace_hook(hook, {"template": None}), command, "template cleared")
            return Reply(f"*{hook.name}* uses its preset's message again.")
        try:
            compile_template(source)
        except ExpressionError as error:
            raise UsageError(
                f"That template doesn't compile: {str(error).rstrip('.')}. Nothing was changed."
            ) from None
        await self._save(replace_hook(hook, {"template": source}), command, "template set")
        return Reply(f"*{hook.name}* now uses your template. Try it: `/hook test {hook.name}`")

    async def filter(self, command: Command, words: list[str], rest: str) -> Reply:
        hook = await self._owned_hook(command, words, "filter")
        source = _after_name(rest)
        if not source:
            raise UsageError(
                f'Give the filter after the name. Example: `/hook filter {hook.name} event == "pull_request" and payload.action in ["opened", "closed"]`'
            )
        if source == "clear":
            await self._save(replace_hook(hook, {"filter": None}), command, "filter cleared")
            return Reply(f"*{hook.name}* posts every delivery again.")
        try:
            compile_expression(source)
        except ExpressionError as error:
            raise UsageError(
                f"That filter doesn't compile: {str(error).rstrip('.')}. Nothing was changed."
            ) from None
        await self._save(replace_hook(hook, {"filter": source}), command, "filter set")
        return Reply(
            f"*{hook.name}* now posts only deliveries where `{source}`; others show as filtered in `/hook log {hook.name}`."
        )

    async def test(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._hook(command, words, "test")
        sample = presets.sample_event(_sample_sender(hook.preset))
        row = _sample_row(hook, sample.sender, sample.event, sample.payload, self.clock.now())
        await self.writer.record(row)
        return Reply(
            f"Sent a sample *{sample.sender} {sample.event}* event through *{hook.name}*; it will appear in {channel_mention(hook.channel_id)}."
        )

    async def log(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._hook(command, words, "log")
        deliveries = await store.recent_deliveries(self.db, _id(hook), limit=20)
        if not deliveries:
            return Reply(f"*{hook.name}* has received nothing yet. Try `/hook test {hook.name}`.")
        return Reply(
            f"*Last {plural(len(deliveries), 'delivery', 'deliveries')} of {hook.name}*\n"
            + "\n".join(_delivery_line(d, m) for d, m in deliveries)
        )

    async def replay(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._owned_hook(command, words, "replay")
        if len(words) < 2:
            raise UsageError(
                f"Which delivery? Example: `/hook replay {hook.name} DELIVERY_ID` (ids are in `/hook log {hook.name}`)"
            )
        original = await store.get_delivery(self.db, _id(hook), words[1])
        if original is None:
            raise UsageError(
                f"*{hook.name}* has no delivery `{words[1]}`. See `/hook log {hook.name}` for ids."
            )
        row = _replay_row(original, self.clock.now())
        await self.writer.record(row)
        return Reply(f"Replaying `{original.id}` as `{row['id']}`.")

    async def _hook(self, command: Command, words: list[str], verb: str) -> Hook:
        name = _valid_name(words[0] if words else "", verb)
        hook = await store.find_hook(self.db, command.team_id, name)
        if hook is None:
            raise UsageError(f"There is no hook named `{name}`. `/hook list` shows them all.")
        return hook

    async def _owned_hook(self, command: Command, words: list[str], verb: str) -> Hook:
        """The named hook, if this user may change it (its creator or an admin)."""
        hook = await self._hook(command, words, verb)
        await self.permissions.require(command.user_id, hook.created_by, f"hook *{hook.name}*")
        return hook

    async def _save(self, hook: Hook, command: Command, action: str) -> Hook:
        saved = await store.save_hook(
            self.db, hook, user_id=command.user_id, action=action, now=self.clock.now()
        )
        self.cache.forget(saved.token)
        return saved


def replace_hook(hook: Hook, changes: dict[str, Any]) -> Hook:
    copy = hook.model_copy()
    for key, value in changes.items():
        setattr(copy, key, value)
    return copy


def _after_name(rest: str) -> str:
    """What follows the hook's name in the command text, Slack's escaping undone."""
    parts = unescape(rest).split(None, 1)
    return parts[1].strip() if len(parts) == 2 else ""


def _valid_name(name: str, verb: str) -> str:
    if not name:
        raise UsageError(f"Which hook? Example: `/hook {verb} deploys`")
    if not NAME.match(name.lower()):
        raise UsageError(
            f"`{name}` can't be a hook name: use 1–40 lowercase letters, digits, - or _. Example: `/hook {verb} deploys`"
        )
    return name.lower()


def _channel_of(words: list[str], default: str) -> str:
    if not words:
        return default
    ref = parse_channel(words[0])
    if ref is None or len(words) > 1:
        raise UsageError(
            f"I couldn't understand `{' '.join(words)}` as a channel. Example: `/hook create deploys #ops`"
        )
    return ref.id or f"#{ref.name}"


def _valid_preset(value: str) -> str:
    if value.lower() not in PRESETS:
        raise UsageError(
            f"`preset={value}` isn't one I know: use one of {', '.join(PRESETS)}. Example: `preset=github`"
        )
    return value.lower()


def _only_options(options: dict[str, str], allowed: tuple[str, ...], example: str) -> None:
    unknown = [key for key in options if key not in allowed]
    if unknown:
        raise UsageError(
            f"`{unknown[0]}=` isn't a setting here; use {', '.join(allowed)}. Example: `{example}`"
        )


def _setting(key: str, value: str) -> Any:
    """Validate one ``/hook set`` value and return what to store."""
    if key == "threads":
        if value not in THREAD_MODES:
            raise UsageError(
                f"`threads={value}`: use one of {', '.join(THREAD_MODES)}. Example: `threads=thread`"
            )
        return value
    if key == "rate":
        if not value.isdigit() or not 1 <= int(value) <= 100_000:
            raise UsageError(
                f"`rate={value}`: give deliveries per minute, 1–100000. Example: `rate=120`"
            )
        return int(value)
    if key == "channel":
        return _channel_of([value], "")
    if key == "preset":
        return _valid_preset(value)
    if key == "secret":
        if len(value) < 8:
            raise UsageError("`secret=` must be at least 8 characters. Example: `secret=whsec_…`")
        return value
    return value.lower() or None  # run=TRIGGER, checked against the triggers by `set`


_SETTING_COLUMNS = {"rate": "rate_limit", "channel": "channel_id", "run": "run_trigger"}


def _sample_sender(preset: str) -> Sender:
    for sender in SENDERS:
        if sender == preset:
            return sender
    return "generic"


def _id(hook: Hook) -> int:
    assert hook.id is not None
    return hook.id


def _delivery_line(delivery: Delivery, message: Any) -> str:
    when = f"{delivery.received_at:%m-%d %H:%M:%S} UTC"
    link = ""
    if message is not None and message.status == "sent" and message.channel.startswith("#"):
        link = " · sent"  # posted by channel name: no id to link to
    elif message is not None and message.ts and message.status == "sent":
        link = f" · <https://slack.com/archives/{message.channel}/p{message.ts.replace('.', '')}|message>"
    elif message is not None:
        link = f" · {message.status}" + (f" ({message.last_error})" if message.last_error else "")
    detail = f" ({delivery.detail})" if delivery.detail else ""
    return f"• `{delivery.id}` {when} {delivery.sender}/{delivery.event} → *{delivery.status}*{detail}{link}"


def _sample_row(hook: Hook, sender: str, event: str, payload: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": new_delivery_id(now),
        "hook_id": hook.id,
        "received_at": now,
        "sender": sender,
        "event": event,
        "dedupe_key": None,
        "content_type": "application/json",
        "headers": {"x-sample": "true"},
        "body": json.dumps(payload).encode(),
        "status": "received",
        "detail": "sample from /hook test",
    }


def _replay_row(original: Delivery, now: datetime) -> dict[str, Any]:
    return {
        "id": new_delivery_id(now),
        "hook_id": original.hook_id,
        "received_at": now,
        "sender": original.sender,
        "event": original.event,
        "dedupe_key": None,
        "content_type": original.content_type,
        "headers": original.headers,
        "body": original.body,
        "status": "received",
        "detail": f"replay of {original.id}",
    }
