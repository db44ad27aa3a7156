"""``/hook``: create and manage webhook endpoints from Slack.

Each subcommand parses its words into typed values once (`parse_create`,
`parse_settings`), hands them to `HookService`, and answers privately. Bad input never
raises out of here: it becomes a reply naming the part that is wrong, with an example that
works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from bot.ai.labels import LabelError, format_labels, parse_labels
from bot.ai.steps import AISteps, help_line
from bot.audit import note_in
from bot.errors import SpecError, UsageError
from bot.glance import traffic_drawing
from bot.limits import ManualLimits
from bot.models import Delivery, Hook
from bot.names import NAME_RULE, valid_name
from bot.outbox import THREAD_MODES
from bot.slack.blocks import channel_mention, escape_mrkdwn, plural
from bot.slack.channels import unknown_channel_note
from bot.slack.slash import Command, Reply, Subcommand, run_subcommand
from bot.slack.text import parse_channel, parse_key_values, unescape
from bot.slack.users import UserDirectory
from bot.webhooks.processor import default_thread_mode
from bot.webhooks.service import CreatedHook, HookService, Renewed
from bot.webhooks.setup import setup_instructions
from bot.webhooks.spec import PRESETS, HookSettings, HookSpec, label_names
from bot.webhooks.traffic import recent_traffic

SETTABLE = (
    "threads",
    "rate",
    "channel",
    "preset",
    "secret",
    "run",
    "categorise",
    "summary",
    "then",
    "post",
    "buttons",
)

HELP = """*Webhooks* — give any system a URL that posts into a channel.
• `/hook create NAME [#channel] [preset=auto|github|gitlab|alertmanager|grafana|sentry|stripe|generic] [secret=VALUE]`
• `/hook list` · `/hook show NAME` · `/hook log NAME` · `/hook test NAME`
• `/hook set NAME threads=update+thread|update|thread|off rate=600 channel=#ops preset=github secret=VALUE run=TRIGGER`
• `/hook template NAME {{ payload.action }} on {{ payload.repository.full_name }}` · `/hook template NAME clear`
• `/hook filter NAME event == "pull_request" and payload.action in ["opened", "closed"]` · `/hook filter NAME clear`
• `/hook pause NAME` · `/hook resume NAME` · `/hook rotate NAME [url|secret]` · `/hook delete NAME` · `/hook replay NAME DELIVERY_ID`
• `/hook set NAME categorise="sales: buying or prices; support: problems with the product; spam" summary=on|off`
• `/hook set NAME then=ACTION[,ACTION…] post=on|off buttons=ACTION[,…]` — run actions (`/action help`) for each delivery that passes the filter; `post=off` acts without posting
`run=TRIGGER` runs a trigger (say a health check) each time a delivery passes the filter. `categorise=` has the AI pick one label per event (`category` in templates and filters; `categorise=` alone stops it); `summary=on` puts an AI summary above long messages.
A hook's URL and secret are shown once, when made: `/hook rotate NAME url` makes a new URL.
Example: `/hook create deploys #ops preset=github`"""


@dataclass
class HookSlash:
    """The ``/hook`` slash command."""

    service: HookService
    default_rate_limit: int
    users: UserDirectory
    limits: ManualLimits
    ai: AISteps | None = None

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
        return await run_subcommand(command, "/hook", subcommands, f"{HELP}\n{help_line(self.ai)}")

    async def create(self, command: Command, words: list[str], _rest: str) -> Reply:
        created = await self.service.create(command.actor, parse_create(words))
        return Reply(created_text(created))

    async def list_all(self, command: Command, _words: list[str], _rest: str) -> Reply:
        hooks = await self.service.all_of(command.team_id)
        if not hooks:
            return Reply("No hooks yet. Create one: `/hook create deploys #ops preset=github`")
        return Reply("*Hooks*\n" + "\n".join(f"• {hook_line(h)}" for h in hooks))

    async def show(self, command: Command, words: list[str], _rest: str) -> Reply:
        await self.service.writer.traffic.flush()  # this process's requests of the last minute
        hook = await self._named(command, words, "show")
        zone = await self.users.zone(command.user_id)
        threads = hook.threads or f"{default_thread_mode(hook.preset)} (the {hook.preset} default)"
        deliveries = await self.service.deliveries(hook, limit=5)
        # Only the hash of the URL's token is stored, so no one can be shown the URL again.
        url = (
            f"shown once, when it was made; `/hook rotate {hook.name} url` makes a new one"
            if await self.service.may_change(command.actor, hook)
            else f"shown once, to <@{hook.created_by}>"
        )
        lines = [
            f"*{hook.name}* → {channel_mention(hook.channel_id)}{'  *(paused)*' if hook.paused else ''}",
            f"*URL:* {url}",
            f"*Preset:* {hook.preset} · *Signed:* {'yes' if hook.secret else 'no (the URL is the secret)'}",
            f"*Threads:* {threads} · *Rate limit:* {hook.rate_limit or self.default_rate_limit}/min",
            f"*Template:* {'`' + hook.template[:200] + '`' if hook.template else 'the preset default'}",
            f"*Filter:* {'`' + hook.filter + '`' if hook.filter else 'none'}",
            f"*Runs trigger:* {hook.run_trigger or 'none'}",
            f"*Actions:* {hook.actions or 'none'} · *Posts:* {'yes' if hook.post else 'no'}"
            f" · *Buttons:* {hook.buttons or 'none'}",
            ai_settings_line(hook),
            f"*Rejected requests:* {hook.rejected}",
            *(await self._glance(hook)),
            f"*Last change:* {note_in(hook.last_change, zone)}",
            f"Change these with `/hook set {hook.name} {' '.join(f'{key}=…' for key in SETTABLE)}`,"
            f" `/hook template {hook.name} …` and `/hook filter {hook.name} …`.",
            "*Last deliveries:*",
            *(delivery_line(d, m, zone) for d, m in deliveries),
        ]
        if not deliveries:
            lines.append("  none yet")
        return Reply("\n".join(lines))

    async def _glance(self, hook: Hook) -> tuple[str, ...]:
        """Deliveries per hour over the last day and the share that failed verification."""
        assert hook.id is not None  # a hook found by name is saved
        traffic = await recent_traffic(self.service.db, [hook.id], self.service.clock.now())
        return traffic_drawing(traffic[hook.id].received, traffic[hook.id].refused).lines

    async def set(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._named(command, words, "set")
        options, extra = parse_key_values(words[1:])
        if extra or not options:
            raise UsageError(
                f"`/hook set` takes settings as key=value ({', '.join(SETTABLE)}). "
                f"Example: `/hook set {hook.name} threads=thread rate=120`"
            )
        settings = parse_settings(options, hook.name)
        hook = await self.service.change(command.actor, hook, settings)
        moved = unknown_channel_note(hook.channel_id) if settings.channel else ""
        asks_ai = bool(settings.categorise or settings.summary)
        no_ai = f"\n{help_line(None)}" if asks_ai and not (self.ai and self.ai.enabled) else ""
        return Reply(f"Updated *{hook.name}*: {escape_mrkdwn(settings.describe())}{moved}{no_ai}")

    async def delete(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._named(command, words, "delete")
        await self.service.delete(command.actor, hook)
        return Reply(f"Deleted hook *{hook.name}*; its URL now answers 404.")

    async def pause(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self.service.pause(command.actor, await self._named(command, words, "pause"))
        return Reply(paused_text(hook))

    async def resume(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self.service.resume(command.actor, await self._named(command, words, "resume"))
        return Reply(f"Resumed *{hook.name}*.")

    async def rotate(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._named(command, words, "rotate")
        renew = _renewed(words[1:], hook.name)
        return Reply(rotated_text(await self.service.rotate(command.actor, hook, renew)))

    async def template(self, command: Command, words: list[str], rest: str) -> Reply:
        hook = await self._named(command, words, "template")
        source = _after_name(rest)
        if not source:
            raise UsageError(
                f"Give the template after the name. Example: `/hook template {hook.name} *{{{{ payload.action }}}}* by {{{{ payload.sender.login }}}}`"
            )
        if source == "clear":
            await self.service.set_template(command.actor, hook, None)
            return Reply(f"*{hook.name}* uses its preset's message again.")
        await self.service.set_template(command.actor, hook, source)
        return Reply(f"*{hook.name}* now uses your template. Try it: `/hook test {hook.name}`")

    async def filter(self, command: Command, words: list[str], rest: str) -> Reply:
        hook = await self._named(command, words, "filter")
        source = _after_name(rest)
        if not source:
            raise UsageError(
                f'Give the filter after the name. Example: `/hook filter {hook.name} event == "pull_request" and payload.action in ["opened", "closed"]`'
            )
        if source == "clear":
            await self.service.set_filter(command.actor, hook, None)
            return Reply(f"*{hook.name}* posts every delivery again.")
        await self.service.set_filter(command.actor, hook, source)
        return Reply(
            f"*{hook.name}* now posts only deliveries where `{source}`; others show as filtered in `/hook log {hook.name}`."
        )

    async def test(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._named(command, words, "test")
        if not await self.service.may_change(command.actor, hook):
            raise UsageError(
                f"A test posts in {channel_mention(hook.channel_id)}, so only "
                f"<@{hook.created_by}> or an admin can send one through *{hook.name}*."
            )
        self.limits.admit(command.user_id, f"hook-test:{hook.id}")
        sample = await self.service.send_sample(hook)
        return Reply(
            f"Sent a sample *{sample.sender} {sample.event}* event through *{hook.name}*; it will appear in {channel_mention(hook.channel_id)}."
        )

    async def log(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._named(command, words, "log")
        deliveries = await self.service.deliveries(hook, limit=20)
        if not deliveries:
            return Reply(f"*{hook.name}* has received nothing yet. Try `/hook test {hook.name}`.")
        zone = await self.users.zone(command.user_id)
        return Reply(
            f"*Last {plural(len(deliveries), 'delivery', 'deliveries')} of {hook.name}*\n"
            + "\n".join(delivery_line(d, m, zone) for d, m in deliveries)
        )

    async def replay(self, command: Command, words: list[str], _rest: str) -> Reply:
        hook = await self._named(command, words, "replay")
        if len(words) < 2:
            raise UsageError(
                f"Which delivery? Example: `/hook replay {hook.name} DELIVERY_ID` (ids are in `/hook log {hook.name}`)"
            )
        replayed = await self.service.replay(command.actor, hook, words[1])
        return Reply(f"Replaying `{words[1]}` as `{replayed.id}`.")

    async def _named(self, command: Command, words: list[str], verb: str) -> Hook:
        return await self.service.named(command.team_id, words[0] if words else "", verb=verb)


# Reading what was typed


def parse_create(words: list[str]) -> HookSpec:
    """``NAME [#channel] [preset=…] [secret=…]`` → a `HookSpec`; `SpecError` naming the part."""
    options, positional = parse_key_values(words)
    name = _name(positional[0] if positional else "")
    channel = _channel(positional[1:]) if positional[1:] else None
    _only_options(options, ("preset", "secret"), "/hook create deploys #ops preset=github")
    preset = _preset(options.get("preset", "auto"))
    return HookSpec(name=name, channel=channel, preset=preset, secret=options.get("secret"))


def parse_settings(options: Mapping[str, str], hook_name: str) -> HookSettings:
    """``/hook set`` options → `HookSettings`; `SpecError` naming the setting at fault."""
    _only_options(options, SETTABLE, f"/hook set {hook_name} threads=off")
    run = options.get("run")
    return HookSettings(
        threads=_threads(options["threads"]) if "threads" in options else None,
        rate_limit=_rate(options["rate"]) if "rate" in options else None,
        channel=_channel([options["channel"]]) if "channel" in options else None,
        preset=_preset(options["preset"]) if "preset" in options else None,
        secret=options.get("secret"),
        run_trigger=None if run is None else (_name(run) if run else ""),
        categorise=_labels(options["categorise"]) if "categorise" in options else None,
        summary=_on_off(options["summary"], "summary") if "summary" in options else None,
        actions=action_names(options["then"], "then") if "then" in options else None,
        post=_on_off(options["post"], "post") if "post" in options else None,
        buttons=action_names(options["buttons"], "buttons") if "buttons" in options else None,
    )


def action_names(value: str, key: str) -> tuple[str, ...]:
    """``then=crm,inventory`` → the action names ("" or "none": none)."""
    if value.strip().lower() in ("", "none"):
        return ()
    names = [part.strip() for part in value.split(",") if part.strip()]
    for name in names:
        if valid_name(name) is None:
            raise SpecError(
                f"`{key}={value}`: `{name}` can't be an action's name ({NAME_RULE}). "
                f"Example: `{key}=crm,inventory`",
                field=key,
                part=name,
            )
    return tuple(dict.fromkeys(name.lower() for name in names))


def _labels(value: str) -> str:
    """``categorise=`` text → the labels as stored ("" stops categorising)."""
    if not value.strip():
        return ""
    try:
        return format_labels(parse_labels(value))
    except LabelError as error:
        raise SpecError(
            f"`categorise=`: {error}. Example: "
            '`categorise="sales: questions about buying; support: problems; spam"`',
            field="categorise",
            part=value,
        ) from None


def _on_off(value: str, key: str) -> bool:
    if value.lower() not in ("on", "off"):
        raise SpecError(
            f"`{key}={value}`: use on or off. Example: `{key}=on`", field=key, part=value
        )
    return value.lower() == "on"


def ai_settings_line(hook: Hook) -> str:
    """``*AI:* categorise=sales, support · summary=on`` for ``/hook show``."""
    labels = label_names(hook.categorise) if hook.categorise else "off"
    return f"*AI:* categorise={escape_mrkdwn(labels)} · summary={'on' if hook.summary else 'off'}"


def _name(text: str) -> str:
    if not text:
        raise SpecError("Which hook? Example: `/hook create deploys`", field="name")
    name = valid_name(text)
    if name is None:
        raise SpecError(
            f"`{text}` can't be a name: use {NAME_RULE}. Example: `/hook create deploys`",
            field="name",
            part=text,
        )
    return name


def _channel(words: list[str]) -> str:
    ref = parse_channel(words[0])
    if ref is None or len(words) > 1:
        raise SpecError(
            f"I couldn't understand `{' '.join(words)}` as a channel. Example: `/hook create deploys #ops`",
            field="channel",
            part=" ".join(words),
        )
    return ref.target


def _preset(value: str) -> str:
    if value.lower() not in PRESETS:
        raise SpecError(
            f"`preset={value}` isn't one I know: use one of {', '.join(PRESETS)}. Example: `preset=github`",
            field="preset",
            part=value,
        )
    return value.lower()


def _threads(value: str) -> Any:
    if value not in THREAD_MODES:
        raise SpecError(
            f"`threads={value}`: use one of {', '.join(THREAD_MODES)}. Example: `threads=thread`",
            field="threads",
            part=value,
        )
    return value


def _rate(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 100_000:
        raise SpecError(
            f"`rate={value}`: give deliveries per minute, 1–100000. Example: `rate=120`",
            field="rate",
            part=value,
        )
    return int(value)


def _only_options(options: Mapping[str, str], allowed: tuple[str, ...], example: str) -> None:
    unknown = [key for key in options if key not in allowed]
    if unknown:
        raise SpecError(
            f"`{unknown[0]}=` isn't a setting here; use {', '.join(allowed)}. Example: `{example}`",
            field="options",
            part=unknown[0],
        )


def _renewed(words: list[str], hook_name: str) -> Renewed:
    if not words:
        return "both"
    if len(words) == 1 and words[0].lower() in ("url", "secret"):
        return "url" if words[0].lower() == "url" else "secret"
    raise UsageError(
        f"`/hook rotate {hook_name}` renews the URL and the secret; add `url` or `secret` "
        f"to renew only one. Example: `/hook rotate {hook_name} url`"
    )


def _after_name(rest: str) -> str:
    """What follows the hook's name in the command text, Slack's escaping undone."""
    parts = unescape(rest).split(None, 1)
    return parts[1].strip() if len(parts) == 2 else ""


# What is said about hooks, wherever it is said from.


def created_text(created: CreatedHook) -> str:
    """The answer to creating a hook: where it posts, its URL and secret once, set-up steps."""
    hook = created.hook
    url = created.url or ""
    return (
        f"Created hook *{hook.name}* → {channel_mention(hook.channel_id)}."
        f"{unknown_channel_note(hook.channel_id)}\n*URL:* `{url}` (shown once — keep it)\n"
        + (f"*Secret* (shown once — keep it): `{created.secret}`\n" if created.secret else "")
        + setup_instructions(hook.preset, url, created.secret)
    )


def rotated_text(rotated: CreatedHook) -> str:
    """The answer to rotating a hook: what is new, shown once, and the set-up steps."""
    hook = rotated.hook
    lines = [f"Rotated *{hook.name}*."]
    if rotated.url is not None:
        lines.append(f"The old URL now answers 404.\n*New URL* (shown once): `{rotated.url}`")
    if rotated.secret is not None:
        lines.append(f"*New secret* (shown once): `{rotated.secret}`")
    if rotated.url is None and rotated.secret is None:
        lines.append("It has no secret the bot made; the URL is unchanged.")
    if rotated.url is not None:
        kept = "(the secret it already has)" if hook.secret else None
        lines.append(setup_instructions(hook.preset, rotated.url, rotated.secret or kept))
    elif rotated.secret is not None:
        lines.append("Give the new secret to the sender; the old one is refused from now on.")
    return "\n".join(lines)


def paused_text(hook: Hook) -> str:
    return f"Paused *{hook.name}*: deliveries are accepted (202) but dropped, and shown in `/hook log {hook.name}`."


def hook_line(hook: Hook) -> str:
    return f"*{hook.name}* → {channel_mention(hook.channel_id)} · {hook.preset}{' · paused' if hook.paused else ''}"


def delivery_line(delivery: Delivery, message: Any, zone: ZoneInfo) -> str:
    """One delivery in ``/hook log`` and ``show``: id, when (in the reader's ``zone``),
    what it was, its verdict and the message it became."""
    when = f"{delivery.received_at.astimezone(zone):%m-%d %H:%M:%S %Z}"
    link = ""
    if message is not None and message.status == "sent" and message.channel.startswith("#"):
        link = " · sent"  # posted by channel name: no id to link to
    elif message is not None and message.ts and message.status == "sent":
        link = f" · <https://slack.com/archives/{message.channel}/p{message.ts.replace('.', '')}|message>"
    elif message is not None:
        link = f" · {message.status}" + (f" ({message.last_error})" if message.last_error else "")
    detail = f" ({delivery.detail})" if delivery.detail else ""
    return f"• `{delivery.id}` {when} {delivery.sender}/{delivery.event} → *{delivery.status}*{detail}{link}"
