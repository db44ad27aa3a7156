"""The trigger and hook modals: building them, reading a submission into a spec.

A submitted form becomes a `TriggerSpec` or `HookSpec` directly (`trigger_spec_of`,
`hook_spec_of`): each field is read by the parser of its own kind of value (a schedule,
a URL, options), so an error belongs to the field it was found in and a message may say
anything, quotes included. The spec then goes to the same service as a slash command's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from bot.credentials.spec import SecretSpec, SecretTarget, secret_target_from_dict
from bot.errors import SpecError
from bot.mail.imap import MailError, parse_mailbox_url
from bot.models import Trigger
from bot.names import NAME_RULE, valid_name
from bot.slack import interactive as ui
from bot.slack.blocks import Block, context, escape_mrkdwn, truncate
from bot.slack.text import parse_url
from bot.triggers.grammar import TriggerSyntaxError, example_command, parse_options
from bot.triggers.schedule import ScheduleError, parse_schedule, schedule_from_dict
from bot.triggers.spec import KINDS, TriggerKind, TriggerSpec, trigger_kind
from bot.webhooks.spec import PRESETS, HookSpec

TRIGGER_MODAL: Final = "trigger_modal"
HOOK_MODAL: Final = "hook_modal"
TRIGGER_BLOCKS: Final = (
    "name",
    "kind",
    "target",
    "schedule",
    "condition",
    "channel",
    "timezone",
    "options",
)
HOOK_BLOCKS: Final = ("name", "channel", "preset", "secret")
SECRET_MODAL: Final = "secret_modal"
SECRET_BLOCKS: Final = ("value", "user")

_KIND_LABELS: Final[Mapping[TriggerKind, str]] = {
    "http": "Check a website (http)",
    "rss": "Watch a feed for new items (rss)",
    "json": "Watch or report a JSON API (json)",
    "csv": "Report on a CSV export (csv)",
    "message": "Post a message (message)",
    "report": "Post a summary report (report)",
    "email": "Watch a mailbox and post new mail (email)",
}
_PRESET_LABELS: Final[Mapping[str, str]] = {
    "auto": "Detect the sender (auto)",
    "github": "GitHub",
    "gitlab": "GitLab",
    "alertmanager": "Prometheus Alertmanager",
    "grafana": "Grafana",
    "sentry": "Sentry",
    "stripe": "Stripe",
    "generic": "Anything else (generic)",
}
_SCHEDULE_HINT: Final = (
    'e.g. every 5m · every weekday at 9:30 · every monday at 9am · cron "0 9 * * 1-5" · '
    "in 2 hours · tomorrow at 8am"
)
_CONDITION_HINT: Final = (
    'Optional for http/rss/json: status != 200 · latency > 500ms · body contains "down" · '
    'json.status.indicator != "none" (a json trigger without one alerts only when the API fails)'
)
_OPTIONS_HINT: Final = (
    "Optional: retries=3 recover=2 timeout=5s repeat=1h max=5 latest=1 · "
    "json/csv: auth=bearer:NAME each=data key=id pages=10 · "
    "email: auth=basic:SECRET (required) tls=off latest=5"
)


def inline_errors(error: SpecError) -> dict[str, str]:
    """A `SpecError` as the ``errors`` of a ``{"response_action": "errors"}`` answer.

    Fields a modal does not have (a hook's template, say) fall back to its name field.
    """
    field = error.field if error.field in TRIGGER_BLOCKS + HOOK_BLOCKS else "name"
    return {field: truncate(str(error), ui.INLINE_ERROR_MAX)}


# ---------------------------------------------------------------------------------------------
# Trigger modal


@dataclass(frozen=True)
class TriggerForm:
    """What the trigger modal holds. ``channel`` is a channel id, ``timezone`` an IANA name,
    ``options`` the raw ``key=value key=value`` text. Empty fields are None."""

    name: str | None
    kind: str
    target: str | None
    schedule: str | None
    condition: str | None
    channel: str | None
    timezone: str | None
    options: str | None

    @classmethod
    def of(cls, trigger: Trigger) -> TriggerForm:
        """A saved trigger as the modal shows it for editing."""
        schedule = trigger.schedule_text or schedule_from_dict(trigger.schedule).describe()
        options = " ".join(f"{key}={value}" for key, value in trigger.options.items()) or None
        channel = trigger.channel_id if not trigger.channel_id.startswith("#") else None
        return cls(
            trigger.name,
            trigger.kind,
            trigger.target,
            schedule,
            trigger.condition,
            channel,
            None,
            options,
        )

    @classmethod
    def of_spec(cls, spec: TriggerSpec) -> TriggerForm:
        """A proposed trigger, prefilled in the modal for editing before it is created."""
        options = " ".join(f"{key}={value}" for key, value in spec.options.items()) or None
        channel = spec.channel if spec.channel and not spec.channel.startswith("#") else None
        return cls(
            spec.name,
            spec.kind,
            spec.target,
            spec.schedule_text or spec.schedule.describe(),
            spec.condition,
            channel,
            spec.schedule.tz.key,
            options,
        )


def trigger_spec_of(
    form: TriggerForm, *, user_zone: ZoneInfo, now: datetime, min_interval: timedelta
) -> TriggerSpec:
    """The trigger a submitted form describes; `SpecError` on the field at fault."""
    kind = trigger_kind(form.kind)
    if kind is None:
        raise SpecError("Pick what the trigger does", field="kind")
    if not form.channel:
        raise SpecError("Pick the channel to report in.", field="channel")
    zone = _zone(form.timezone) or user_zone
    return TriggerSpec(
        name=_name(form.name, "Give the trigger a one-word name, like site-check"),
        schedule=_schedule(form.schedule, kind, zone, now, min_interval),
        kind=kind,
        target=_target(kind, form.target),
        condition=_condition(kind, form.condition),
        channel=form.channel,
        options=_options(kind, form.options),
        schedule_text=form.schedule or "",
    )


def _name(value: str | None, missing: str) -> str:
    if not value:
        raise SpecError(missing, field="name")
    name = valid_name(value)
    if name is None:
        raise SpecError(f'"{value}" can\'t be a name: use {NAME_RULE}', field="name", part=value)
    return name


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise SpecError(
            f'"{name}" is not a time zone I know: use an IANA name like Europe/Berlin',
            field="timezone",
            part=name,
        ) from None


def _schedule(
    text: str | None, kind: TriggerKind, zone: ZoneInfo, now: datetime, min_interval: timedelta
) -> Any:
    if not text:
        raise SpecError("When should it run? e.g. every 5m", field="schedule")
    try:
        return parse_schedule(text, default_tz=zone, now=now, min_interval=min_interval)
    except ScheduleError as error:
        example = example_command(kind, error.example)
        raise SpecError(f"{error}. Example: {example}", field="schedule", part=error.part) from None


def _target(kind: TriggerKind, target: str | None) -> str | None:
    if kind == "report":
        if target:
            raise SpecError("A report has no URL or text: clear this field", field="target")
        return None
    if kind == "message":
        if not target or not target.strip():
            raise SpecError("Type the message to post", field="target")
        return target
    if kind == "email":  # the mailbox URL, checked by its own parser
        return _mailbox(target)
    url = parse_url(target or "")
    if url is None:
        raise SpecError(
            f"{kind} needs a URL to check, starting with https://",
            field="target",
            part=target or "",
        )
    return url


def _mailbox(target: str | None) -> str:
    text = (target or "").strip()
    try:
        parse_mailbox_url(text)
    except MailError as error:
        example = "imaps://support%40example.com@imap.example.com/INBOX"
        raise SpecError(f"{error.reason}, e.g. {example}", field="target") from None
    return text


def _condition(kind: TriggerKind, condition: str | None) -> str | None:
    if kind == "email" and condition:
        raise SpecError(
            "An email trigger has no condition: clear this field, and send mail to channels "
            "with `/trigger route NAME RULE → #channel`",
            field="condition",
        )
    if kind in ("message", "report", "csv", "email"):
        if condition:
            raise SpecError(
                f"A {kind} runs without a condition: clear this field", field="condition"
            )
        return None
    return condition or None


def _options(kind: TriggerKind, text: str | None) -> dict[str, str]:
    if not text:
        return {}
    try:
        return parse_options(escape_mrkdwn(text), kind)
    except TriggerSyntaxError as error:
        raise SpecError(str(error), field="options", part=error.part) from None


def trigger_modal(
    form: TriggerForm | None,
    *,
    editing: str | None = None,
    preview: str | None = None,
    user_zone: str | None = None,
) -> dict[str, Any]:
    """The modal for creating (or, with ``editing`` = its name, changing) a trigger.

    ``form`` prefills the fields; ``preview`` (the schedule in words and its next run) is
    shown at the top; ``user_zone`` is the placeholder of the time zone field.
    """
    values = form or TriggerForm(None, "", None, None, None, None, None, None)
    blocks = [
        *([context([escape_mrkdwn(preview)])] if preview else []),
        *_trigger_inputs(values, user_zone),
    ]
    title = "Edit trigger" if editing else "New trigger"
    return ui.modal(TRIGGER_MODAL, title, "Save" if editing else "Create", blocks, editing or "")


def _trigger_inputs(form: TriggerForm, user_zone: str | None) -> list[Block]:
    kinds = [(kind, _KIND_LABELS[kind]) for kind in KINDS]
    zone_hint = f"e.g. {user_zone}" if user_zone else "e.g. Europe/Berlin"
    return [
        ui.input_block(
            "name", "Name", ui.text_input("name", form.name, "site-check", max_length=40)
        ),
        ui.input_block("kind", "What should it do?", ui.static_select("kind", kinds, form.kind)),
        ui.input_block(
            "target",
            "URL or message",
            ui.text_input("target", form.target, "https://example.com", multiline=True),
            hint="URL for http/rss/json/csv, text for message, imaps://user@host/INBOX for email",
            optional=True,
        ),
        ui.input_block(
            "schedule",
            "When",
            ui.text_input("schedule", form.schedule, "every 5m"),
            hint=_SCHEDULE_HINT,
        ),
        ui.input_block(
            "condition",
            "Alert when",
            ui.text_input("condition", form.condition, "status != 200"),
            hint=_CONDITION_HINT,
            optional=True,
        ),
        ui.input_block(
            "channel", "Post in", ui.channel_select("channel", form.channel), optional=True
        ),
        ui.input_block(
            "timezone",
            "Time zone",
            ui.text_input("timezone", form.timezone, zone_hint),
            hint="An IANA name; empty means your Slack time zone",
            optional=True,
        ),
        ui.input_block(
            "options",
            "Options",
            ui.text_input("options", form.options, "retries=3"),
            hint=_OPTIONS_HINT,
            optional=True,
        ),
    ]


def read_trigger_form(view: Mapping[str, Any]) -> TriggerForm:
    """The trigger modal's values from a submitted ``view``; missing or blank fields are None."""
    values = ui.submitted_values(view)
    return TriggerForm(
        name=values.get("name"),
        kind=values.get("kind") or "",
        target=values.get("target"),
        schedule=values.get("schedule"),
        condition=values.get("condition"),
        channel=values.get("channel"),
        timezone=values.get("timezone"),
        options=values.get("options"),
    )


# ---------------------------------------------------------------------------------------------
# Hook modal


@dataclass(frozen=True)
class HookForm:
    """What the hook modal holds. ``channel`` is a channel id; empty fields are None."""

    name: str | None
    channel: str | None
    preset: str | None
    secret: str | None


def hook_spec_of(form: HookForm) -> HookSpec:
    """The hook a submitted form describes; `SpecError` on the field at fault."""
    name = _name(form.name, "Give the hook a one-word name, like deploys")
    if not form.channel:
        raise SpecError("Pick the channel to post in.", field="channel")
    preset = form.preset or "auto"
    if preset not in PRESETS:
        raise SpecError(f"Pick one of: {', '.join(PRESETS)}", field="preset", part=preset)
    if form.secret is not None and any(char.isspace() for char in form.secret):
        raise SpecError("A secret can't contain spaces", field="secret")
    return HookSpec(name=name, channel=form.channel, preset=preset, secret=form.secret)


def hook_modal(form: HookForm | None) -> dict[str, Any]:
    """The modal for creating a hook, prefilled from ``form``.

    The secret is never prefilled: a view's contents are stored by Slack, and an empty
    field means the bot generates one (or, for Sentry and Stripe, uses theirs).
    """
    values = form or HookForm(None, None, None, None)
    presets = [(preset, _PRESET_LABELS.get(preset, preset)) for preset in PRESETS]
    blocks = [
        ui.input_block(
            "name", "Name", ui.text_input("name", values.name, "deploys", max_length=40)
        ),
        ui.input_block(
            "channel", "Post in", ui.channel_select("channel", values.channel), optional=True
        ),
        ui.input_block(
            "preset", "Sender", ui.static_select("preset", presets, values.preset or "auto")
        ),
        ui.input_block(
            "secret",
            "Signing secret",
            ui.text_input("secret", None, "leave empty to get one"),
            hint="Paste the sender's secret (Sentry, Stripe) or leave empty and I'll make one",
            optional=True,
        ),
    ]
    return ui.modal(HOOK_MODAL, "New hook", "Create", blocks, "")


def read_hook_form(view: Mapping[str, Any]) -> HookForm:
    """The hook modal's values from a submitted ``view``; missing or blank fields are None."""
    values = ui.submitted_values(view)
    return HookForm(
        name=values.get("name"),
        channel=values.get("channel"),
        preset=values.get("preset"),
        secret=values.get("secret"),
    )


# ---------------------------------------------------------------------------------------------
# Secret modal: the one way a secret's value reaches the bot without passing through a
# slash command's text. The name, hosts and reply channel ride in the private metadata.


@dataclass(frozen=True)
class SecretForm:
    """What the secret modal holds: the target typed in ``/secret set``, where to reply,
    and the value (and user name) filled in. Empty fields are None."""

    target: SecretTarget
    channel: str
    value: str | None = field(repr=False)
    user: str | None


def secret_modal(target: SecretTarget, channel: str) -> dict[str, Any]:
    """The modal asking for the value of ``target`` (and a user name, for basic auth)."""
    metadata = json.dumps({"target": target.to_dict(), "channel": channel})
    blocks: list[Block] = [
        context(
            [
                f"*{escape_mrkdwn(target.name)}* will only be sent to "
                f"{escape_mrkdwn(target.hosts_text())}. Once saved, the value is never shown again."
            ]
        ),
        ui.input_block(
            "value",
            "Value",
            # Slack's longest text input; longer secrets can be typed after the host.
            ui.text_input("value", None, "paste the token or password", max_length=3000),
            hint="Stored encrypted; hidden from every message and log line as ••••(name)",
        ),
    ]
    if target.basic:
        blocks.append(
            ui.input_block(
                "user", "User name", ui.text_input("user", target.user, "ops-bot", max_length=200)
            )
        )
    return ui.modal(SECRET_MODAL, "Set a secret", "Save", blocks, metadata)


def read_secret_form(view: Mapping[str, Any]) -> SecretForm:
    """The secret modal's values; `SpecError` when its metadata is not this modal's."""
    try:
        metadata = json.loads(str(view.get("private_metadata") or ""))
    except ValueError:
        metadata = None
    if not isinstance(metadata, dict):
        metadata = {}
    values = ui.submitted_values(view)
    return SecretForm(
        target=secret_target_from_dict(metadata.get("target")),
        channel=str(metadata.get("channel") or ""),
        value=values.get("value"),
        user=values.get("user"),
    )


def secret_spec_of(form: SecretForm) -> SecretSpec:
    """The secret a submitted form describes; `SpecError` on the field at fault."""
    if not form.value:
        raise SpecError("Paste the value", field="value")
    return form.target.with_value(form.value, form.user)


def secret_inline_errors(error: SpecError) -> dict[str, str]:
    """A `SpecError` under the secret modal's field (the value field for the others)."""
    field_name = error.field if error.field in SECRET_BLOCKS else "value"
    return {field_name: truncate(str(error), ui.INLINE_ERROR_MAX)}
