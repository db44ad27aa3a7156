"""Block Kit views for setting things up by clicking: modals, proposals, buttons, App Home.

Everything here is pure: builders return plain dicts ready for ``views.open``,
``views.publish`` or ``chat.postMessage``, and readers take the ``view`` of a
``view_submission`` payload. Button values carry only database ids, so a click can never
smuggle in text the bot would act on.

A submitted form becomes the same command text a person would type
(`TriggerForm.to_command`, `HookForm.to_command`), so it passes through exactly the parser
and checks the slash command does; the parser's complaint is put back on the right field
with `field_errors`.

Home tab: each trigger is a section plus an actions block of buttons (no overflow menu).
The buttons use the same action_ids and values (the trigger id) as `alert_actions`, so a
Pause click from an alert and one from the Home tab reach one handler.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.models import Hook, Trigger
from bot.slack.blocks import (
    Block,
    channel_mention,
    context,
    divider,
    escape_mrkdwn,
    header,
    link,
    section,
    truncate,
)
from bot.triggers.command import KINDS, TriggerKind
from bot.webhooks.event import SENDERS

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
HOOK_PRESETS: Final = ("auto", *SENDERS)

# Action ids the listeners dispatch on.
DRAFT_CREATE: Final = "draft_create"
DRAFT_EDIT: Final = "draft_edit"
DRAFT_CANCEL: Final = "draft_cancel"
TRIGGER_RUN: Final = "trigger_run"
TRIGGER_SNOOZE: Final = "trigger_snooze"
TRIGGER_PAUSE: Final = "trigger_pause"
TRIGGER_RESUME: Final = "trigger_resume"
TRIGGER_HISTORY: Final = "trigger_history"
TRIGGER_EDIT: Final = "trigger_edit"
TRIGGER_DELETE: Final = "trigger_delete"
HOOK_PAUSE: Final = "hook_pause"
HOOK_RESUME: Final = "hook_resume"
HOOK_DELETE: Final = "hook_delete"
HOME_NEW_TRIGGER: Final = "home_new_trigger"
HOME_NEW_HOOK: Final = "home_new_hook"

# Slack's limits for views (Block Kit reference).
MODAL_TITLE_MAX: Final = 24
MAX_VIEW_BLOCKS: Final = 100
PLACEHOLDER_MAX: Final = 150
OPTION_TEXT_MAX: Final = 75
BUTTON_TEXT_MAX: Final = 75
# Slack shows a view_submission error under its field; longer ones get hard to read.
INLINE_ERROR_MAX: Final = 150

_QUOTES: Final = frozenset('"“”')
_CHANNEL_ID: Final = re.compile(r"^[A-Z0-9]+$")
_KIND_LABELS: Final[Mapping[TriggerKind, str]] = {
    "http": "Check a website (http)",
    "rss": "Watch a feed for new items (rss)",
    "json": "Watch a value in a JSON API (json)",
    "message": "Post a message (message)",
    "report": "Post a summary report (report)",
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
    'Optional for http/rss, required for json: status != 200 · latency > 500ms · body contains "down" · '
    'json.status.indicator != "none"'
)
_OPTIONS_HINT: Final = "Optional: retries=3 recover=2 timeout=5s repeat=1h max=5 latest=1"


class FormError(ValueError):
    """A form value that the command grammar cannot express; ``block_id`` names the field."""

    def __init__(self, block_id: str, message: str) -> None:
        super().__init__(message)
        self.block_id = block_id

    def errors(self) -> dict[str, str]:
        """The ``errors`` of a ``{"response_action": "errors"}`` answer."""
        return {self.block_id: truncate(str(self), INLINE_ERROR_MAX)}


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

    def to_command(self) -> str:
        """The text after ``/trigger add``, Slack-escaped the way a slash command arrives.

        Raises `FormError` for what the grammar cannot carry (a quote in a message, a
        target on a report) or a required field left empty.
        """
        kind = _trigger_kind(self.kind)
        parts = [
            _one_word(self.name, "name", "Give the trigger a one-word name, like site-check"),
            _schedule_text(self.schedule, self.timezone),
            kind,
            _target_text(kind, self.target),
            _condition_text(kind, self.condition),
            _channel_text(self.channel),
            escape_mrkdwn(self.options or ""),
        ]
        return " ".join(part for part in parts if part)


def _trigger_kind(kind: str) -> TriggerKind:
    for known in KINDS:
        if kind == known:
            return known
    raise FormError("kind", "Pick what the trigger does")


def _one_word(value: str | None, block_id: str, missing: str) -> str:
    if not value:
        raise FormError(block_id, missing)
    if any(char.isspace() for char in value):
        raise FormError(block_id, f'"{value}" has spaces: use one word')
    return escape_mrkdwn(value)


def _schedule_text(schedule: str | None, timezone: str | None) -> str:
    if not schedule:
        raise FormError("schedule", "When should it run? e.g. every 5m")
    if not timezone or _names_zone(schedule):
        return escape_mrkdwn(schedule)
    zone = _one_word(timezone, "timezone", "")
    return f"{escape_mrkdwn(schedule)} tz {zone}"


def _names_zone(schedule: str) -> bool:
    """True when the schedule already says ``tz ZONE``, which wins over the zone field."""
    return any(word.lower() == "tz" for word in schedule.split())


def _target_text(kind: TriggerKind, target: str | None) -> str:
    if kind == "report":
        if target:
            raise FormError("target", "A report has no URL or text: clear this field")
        return ""
    if kind == "message":
        return _quoted_message(target)
    return _one_word(target, "target", f"{kind} needs a URL to check, starting with https://")


def _quoted_message(text: str | None) -> str:
    if not text:
        raise FormError("target", "Type the message to post")
    if any(char in _QUOTES for char in text):
        # The grammar has no escape for a quote inside a quoted message.
        raise FormError("target", "The message can't contain double quotes; use ' instead")
    return f'"{escape_mrkdwn(text)}"'


def _condition_text(kind: TriggerKind, condition: str | None) -> str:
    if not condition:
        return ""
    if kind in ("message", "report"):
        raise FormError("condition", f"A {kind} runs without a condition: clear this field")
    return f"when {escape_mrkdwn(condition)}"


def _channel_text(channel: str | None) -> str:
    if not channel:
        return ""
    if not _CHANNEL_ID.match(channel):
        raise FormError("channel", "Pick a channel from the list")
    return f"<#{channel}>"


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
    return _modal(TRIGGER_MODAL, title, "Save" if editing else "Create", blocks, editing or "")


def _trigger_inputs(form: TriggerForm, user_zone: str | None) -> list[Block]:
    kinds = [(kind, _KIND_LABELS[kind]) for kind in KINDS]
    zone_hint = f"e.g. {user_zone}" if user_zone else "e.g. Europe/Berlin"
    return [
        _input("name", "Name", _text_input("name", form.name, "site-check", max_length=40)),
        _input("kind", "What should it do?", _static_select("kind", kinds, form.kind)),
        _input(
            "target",
            "URL or message",
            _text_input("target", form.target, "https://example.com", multiline=True),
            hint="URL for http/rss/json, text for message",
            optional=True,
        ),
        _input(
            "schedule",
            "When",
            _text_input("schedule", form.schedule, "every 5m"),
            hint=_SCHEDULE_HINT,
        ),
        _input(
            "condition",
            "Alert when",
            _text_input("condition", form.condition, "status != 200"),
            hint=_CONDITION_HINT,
            optional=True,
        ),
        _input("channel", "Post in", _channel_select("channel", form.channel), optional=True),
        _input(
            "timezone",
            "Time zone",
            _text_input("timezone", form.timezone, zone_hint),
            hint="An IANA name; empty means your Slack time zone",
            optional=True,
        ),
        _input(
            "options",
            "Options",
            _text_input("options", form.options, "retries=3"),
            hint=_OPTIONS_HINT,
            optional=True,
        ),
    ]


def read_trigger_form(view: Mapping[str, Any]) -> TriggerForm:
    """The trigger modal's values from a submitted ``view``; missing or blank fields are None."""
    values = _state_values(view)
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


def field_errors(error_part: str, message: str, form: TriggerForm) -> dict[str, str]:
    """Put a parser error (its ``part`` and message) on the modal field it is about.

    The result is the ``errors`` of a ``{"response_action": "errors"}`` answer.
    """
    return {_field_of(error_part, form): truncate(message, INLINE_ERROR_MAX)}


def _field_of(part: str, form: TriggerForm) -> str:
    # The parser blames the kind keyword (or nothing) when a field next to it is missing.
    if not part.strip() or part.strip().lower() == form.kind.lower():
        missing = _first_missing(form)
        if missing is not None:
            return missing
    candidates = (
        ("schedule", form.schedule),
        ("timezone", form.timezone),
        ("target", form.target),
        ("condition", form.condition),
        ("name", form.name),
        ("options", form.options),
    )
    needle = part.strip().lower()
    found = (block for block, value in candidates if value and needle in value.lower())
    return next(found, "schedule")


def _first_missing(form: TriggerForm) -> str | None:
    required = (
        ("name", form.name, True),
        ("schedule", form.schedule, True),
        ("target", form.target, form.kind not in ("report", "")),
        ("condition", form.condition, form.kind == "json"),
    )
    return next((block for block, value, needed in required if needed and not value), None)


# ---------------------------------------------------------------------------------------------
# Hook modal


@dataclass(frozen=True)
class HookForm:
    """What the hook modal holds. ``channel`` is a channel id; empty fields are None."""

    name: str | None
    channel: str | None
    preset: str | None
    secret: str | None

    def to_command(self) -> str:
        """The text after ``/hook create``, Slack-escaped. Raises `FormError`."""
        parts = [
            _one_word(self.name, "name", "Give the hook a one-word name, like deploys"),
            _channel_text(self.channel),
            f"preset={_preset(self.preset)}" if self.preset else "",
            f"secret={_secret(self.secret)}" if self.secret else "",
        ]
        return " ".join(part for part in parts if part)


def _preset(preset: str) -> str:
    if preset not in HOOK_PRESETS:
        raise FormError("preset", f"Pick one of: {', '.join(HOOK_PRESETS)}")
    return preset


def _secret(secret: str) -> str:
    if any(char.isspace() or char in _QUOTES for char in secret):
        raise FormError("secret", "A secret can't contain spaces or quotes")
    return escape_mrkdwn(secret)


def hook_modal(form: HookForm | None) -> dict[str, Any]:
    """The modal for creating a hook, prefilled from ``form``.

    The secret is never prefilled: a view's contents are stored by Slack, and an empty
    field means the bot generates one (or, for Sentry and Stripe, uses theirs).
    """
    values = form or HookForm(None, None, None, None)
    presets = [(preset, _PRESET_LABELS.get(preset, preset)) for preset in HOOK_PRESETS]
    blocks = [
        _input("name", "Name", _text_input("name", values.name, "deploys", max_length=40)),
        _input("channel", "Post in", _channel_select("channel", values.channel), optional=True),
        _input("preset", "Sender", _static_select("preset", presets, values.preset or "auto")),
        _input(
            "secret",
            "Signing secret",
            _text_input("secret", None, "leave empty to get one"),
            hint="Paste the sender's secret (Sentry, Stripe) or leave empty and I'll make one",
            optional=True,
        ),
    ]
    return _modal(HOOK_MODAL, "New hook", "Create", blocks, "")


def read_hook_form(view: Mapping[str, Any]) -> HookForm:
    """The hook modal's values from a submitted ``view``; missing or blank fields are None."""
    values = _state_values(view)
    return HookForm(
        name=values.get("name"),
        channel=values.get("channel"),
        preset=values.get("preset"),
        secret=values.get("secret"),
    )


# ---------------------------------------------------------------------------------------------
# Messages


def proposal_message(summary: str, draft_id: int) -> list[Block]:
    """What the bot understood (``summary`` is mrkdwn, user text already escaped) with
    Create / Edit / Cancel buttons whose value is the draft id."""
    value = str(draft_id)
    return [
        section(f"Here's what I understood:\n{summary}"),
        _actions(
            [
                _button("Create", DRAFT_CREATE, value, style="primary"),
                _button("Edit", DRAFT_EDIT, value),
                _button("Cancel", DRAFT_CANCEL, value),
            ]
        ),
    ]


def alert_actions(trigger_id: int) -> Block:
    """Buttons under a trigger's alert: Run now, Snooze 1h, Pause, History."""
    value = str(trigger_id)
    return _actions(
        [
            _button("Run now", TRIGGER_RUN, value),
            _button("Snooze 1h", TRIGGER_SNOOZE, value),
            _button("Pause", TRIGGER_PAUSE, value),
            _button("History", TRIGGER_HISTORY, value),
        ]
    )


def hook_log_context(hook_name: str) -> Block:
    """A footnote under a hook's message saying where it came from and how to see its log."""
    name = escape_mrkdwn(hook_name)
    return context([f"From hook *{name}* · `/hook log {name}`"])


# ---------------------------------------------------------------------------------------------
# App Home

# header, new-buttons, divider, triggers title, divider, hooks title, two "and N more" lines
_HOME_FIXED_BLOCKS: Final = 8
_HOME_ITEM_SLOTS: Final = (MAX_VIEW_BLOCKS - _HOME_FIXED_BLOCKS) // 2  # two blocks per item


def home_view(
    hooks: Sequence[Hook],
    triggers: Sequence[Trigger],
    *,
    states: Mapping[int, str],
    next_runs: Mapping[int, str],
) -> dict[str, Any]:
    """The App Home tab: new-trigger/new-hook buttons, then each trigger and hook with its
    buttons. What does not fit in 100 blocks is counted in an "and N more" line."""
    trigger_room, hook_room = _home_room(len(triggers), len(hooks))
    new_buttons = [
        _button("New trigger", HOME_NEW_TRIGGER, None, style="primary"),
        _button("New hook", HOME_NEW_HOOK, None),
    ]
    blocks = [
        header("Chat-ops bot"),
        _actions(new_buttons),
        divider(),
        *_trigger_list(triggers, trigger_room, states, next_runs),
        divider(),
        *_hook_list(hooks, hook_room),
    ]
    return {"type": "home", "blocks": blocks}


def _home_room(triggers: int, hooks: int) -> tuple[int, int]:
    """How many triggers and hooks to show; hooks keep a third of the room when both overflow."""
    if triggers + hooks <= _HOME_ITEM_SLOTS:
        return triggers, hooks
    hook_room = min(hooks, max(_HOME_ITEM_SLOTS - triggers, _HOME_ITEM_SLOTS // 3))
    return min(triggers, _HOME_ITEM_SLOTS - hook_room), hook_room


def _trigger_list(
    triggers: Sequence[Trigger],
    room: int,
    states: Mapping[int, str],
    next_runs: Mapping[int, str],
) -> list[Block]:
    if not triggers:
        return [section("*Triggers*\nNone yet: press *New trigger* or type `/trigger add …`")]
    blocks = [section("*Triggers*")]
    for trigger in triggers[:room]:
        trigger_id = _saved_id(trigger.id)
        blocks.append(section(_trigger_line(trigger, states.get(trigger_id), next_runs)))
        blocks.append(_actions(_trigger_buttons(trigger, trigger_id)))
    return blocks + _more_line(len(triggers) - room, "/trigger list")


def _trigger_line(trigger: Trigger, state: str | None, next_runs: Mapping[int, str]) -> str:
    shown = state or ("paused" if trigger.paused else "no runs yet")
    first = f"*{escape_mrkdwn(trigger.name)}* · {escape_mrkdwn(trigger.kind)}"
    target = _target_label(trigger)
    next_run = next_runs.get(_saved_id(trigger.id))
    second = f"{escape_mrkdwn(shown)} · posts in {channel_mention(trigger.channel_id)}"
    after = f" · next: {escape_mrkdwn(next_run)}" if next_run else ""
    return f"{first}{f' · {target}' if target else ''}\n{second}{after}"


def _target_label(trigger: Trigger) -> str:
    if not trigger.target:
        return ""
    if trigger.kind == "message":
        return f"“{escape_mrkdwn(truncate(trigger.target, 80))}”"
    return link(trigger.target, truncate(trigger.target, 80))


def _trigger_buttons(trigger: Trigger, trigger_id: int) -> list[dict[str, Any]]:
    value = str(trigger_id)
    toggle = (
        _button("Resume", TRIGGER_RESUME, value)
        if trigger.paused
        else _button("Pause", TRIGGER_PAUSE, value)
    )
    delete = _confirm("Delete trigger?", f"Delete {trigger.name} and its run history?")
    return [
        toggle,
        _button("Run now", TRIGGER_RUN, value),
        _button("Edit", TRIGGER_EDIT, value),
        _button("Delete", TRIGGER_DELETE, value, style="danger", confirm=delete),
    ]


def _hook_list(hooks: Sequence[Hook], room: int) -> list[Block]:
    if not hooks:
        return [section("*Hooks*\nNone yet: press *New hook* or type `/hook create NAME`")]
    blocks = [section("*Hooks*")]
    for hook in hooks[:room]:
        blocks.append(section(_hook_line(hook)))
        blocks.append(_actions(_hook_buttons(hook, _saved_id(hook.id))))
    return blocks + _more_line(len(hooks) - room, "/hook list")


def _hook_line(hook: Hook) -> str:
    paused = " · paused" if hook.paused else ""
    return f"*{escape_mrkdwn(hook.name)}* → {channel_mention(hook.channel_id)} · {escape_mrkdwn(hook.preset)}{paused}"


def _hook_buttons(hook: Hook, hook_id: int) -> list[dict[str, Any]]:
    value = str(hook_id)
    toggle = (
        _button("Resume", HOOK_RESUME, value)
        if hook.paused
        else _button("Pause", HOOK_PAUSE, value)
    )
    delete = _confirm("Delete hook?", f"Delete {hook.name}? Its URL stops working at once.")
    return [toggle, _button("Delete", HOOK_DELETE, value, style="danger", confirm=delete)]


def _more_line(hidden: int, command: str) -> list[Block]:
    return [context([f"and {hidden} more — `{command}`"])] if hidden > 0 else []


def _saved_id(row_id: int | None) -> int:
    if row_id is None:
        raise ValueError("only saved hooks and triggers (with an id) can be shown")
    return row_id


# ---------------------------------------------------------------------------------------------
# Elements


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def _modal(
    callback_id: str, title: str, submit: str, blocks: list[Block], metadata: str
) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title, MODAL_TITLE_MAX),
        "submit": _plain(submit, MODAL_TITLE_MAX),
        "close": _plain("Cancel", MODAL_TITLE_MAX),
        "private_metadata": metadata,
        "blocks": blocks,
    }


def _input(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    hint: str | None = None,
    optional: bool = False,
) -> Block:
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label, 2000),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = _plain(hint, 2000)
    return block


def _text_input(
    action_id: str,
    initial: str | None,
    placeholder: str,
    *,
    multiline: bool = False,
    max_length: int = 3000,
) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": action_id,
        "placeholder": _plain(placeholder, PLACEHOLDER_MAX),
        "multiline": multiline,
        "max_length": max_length,
    }
    if initial:
        element["initial_value"] = initial[:max_length]
    return element


def _static_select(
    action_id: str, choices: Sequence[tuple[str, str]], initial: str | None
) -> dict[str, Any]:
    options = [{"text": _plain(label, OPTION_TEXT_MAX), "value": value} for value, label in choices]
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": _plain("Choose…", PLACEHOLDER_MAX),
        "options": options,
    }
    chosen = next((option for option in options if option["value"] == initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return element


def _channel_select(action_id: str, initial: str | None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "conversations_select",
        "action_id": action_id,
        "placeholder": _plain("Choose a channel", PLACEHOLDER_MAX),
        "filter": {"exclude_bot_users": True},
    }
    # Slack ignores one of the two when both are given; a known channel must win.
    if initial:
        element["initial_conversation"] = initial
    else:
        element["default_to_current_conversation"] = True
    return element


def _actions(elements: list[dict[str, Any]]) -> Block:
    return {"type": "actions", "elements": elements}


def _button(
    text: str,
    action_id: str,
    value: str | None,
    *,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": _plain(text, BUTTON_TEXT_MAX),
        "action_id": action_id,
    }
    extras = {"value": value, "style": style, "confirm": confirm}
    button.update({key: extra for key, extra in extras.items() if extra is not None})
    return button


def _confirm(title: str, text: str) -> dict[str, Any]:
    return {
        "title": _plain(title, 100),
        "text": _plain(text, 300),
        "confirm": _plain("Delete", 30),
        "deny": _plain("Keep", 30),
        "style": "danger",
    }


# ---------------------------------------------------------------------------------------------
# Reading view_submission state


def _state_values(view: Mapping[str, Any]) -> dict[str, str]:
    """block_id → the first non-blank value of its actions (stripped)."""
    state = view.get("state")
    values = state.get("values") if isinstance(state, Mapping) else None
    if not isinstance(values, Mapping):
        return {}
    found: dict[str, str] = {}
    for block_id, actions in values.items():
        value = _first_value(actions)
        if value is not None:
            found[str(block_id)] = value
    return found


def _first_value(actions: Any) -> str | None:
    if not isinstance(actions, Mapping):
        return None
    for action in actions.values():
        value = _action_value(action)
        if value is not None:
            return value
    return None


def _action_value(action: Any) -> str | None:
    if not isinstance(action, Mapping):
        return None
    reader = _VALUE_READERS.get(str(action.get("type")))
    raw = reader(action) if reader is not None else None
    return (raw.strip() or None) if isinstance(raw, str) else None


def _typed_value(action: Mapping[str, Any]) -> Any:
    return action.get("value")


def _selected_option(action: Mapping[str, Any]) -> Any:
    option = action.get("selected_option")
    return option.get("value") if isinstance(option, Mapping) else None


def _selected_conversation(action: Mapping[str, Any]) -> Any:
    return action.get("selected_conversation")


def _selected_channel(action: Mapping[str, Any]) -> Any:
    return action.get("selected_channel")


_VALUE_READERS: Final[Mapping[str, Callable[[Mapping[str, Any]], Any]]] = {
    "plain_text_input": _typed_value,
    "static_select": _selected_option,
    "conversations_select": _selected_conversation,
    "channels_select": _selected_channel,
}
