"""Block Kit's interactive parts: buttons, confirmation dialogs, modals and their inputs,
and reading the values of a submitted modal.

Every builder clips its text to Slack's limits (Block Kit reference), so callers may pass
text of any length.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from bot.slack.blocks import Block, truncate

MODAL_TITLE_MAX: Final = 24
PLACEHOLDER_MAX: Final = 150
OPTION_TEXT_MAX: Final = 75
BUTTON_TEXT_MAX: Final = 75
MAX_VIEW_BLOCKS: Final = 100
# Slack shows a view_submission error under its field; longer ones get hard to read.
INLINE_ERROR_MAX: Final = 150


def plain_text(text: str, limit: int) -> dict[str, Any]:
    """A plain_text object cut to ``limit`` characters."""
    return {"type": "plain_text", "text": truncate(text, limit), "emoji": True}


def modal(
    callback_id: str, title: str, submit: str, blocks: list[Block], metadata: str
) -> dict[str, Any]:
    """A modal view; ``metadata`` comes back in the submission's ``private_metadata``."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": plain_text(title, MODAL_TITLE_MAX),
        "submit": plain_text(submit, MODAL_TITLE_MAX),
        "close": plain_text("Cancel", MODAL_TITLE_MAX),
        "private_metadata": metadata,
        "blocks": blocks,
    }


def input_block(
    block_id: str,
    label: str,
    element: dict[str, Any],
    *,
    hint: str | None = None,
    optional: bool = False,
) -> Block:
    """An input block (a labelled form field) around ``element``."""
    block: Block = {
        "type": "input",
        "block_id": block_id,
        "label": plain_text(label, 2000),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = plain_text(hint, 2000)
    return block


def text_input(
    action_id: str,
    initial: str | None,
    placeholder: str,
    *,
    multiline: bool = False,
    max_length: int = 3000,
) -> dict[str, Any]:
    """A text field, prefilled with ``initial``."""
    element: dict[str, Any] = {
        "type": "plain_text_input",
        "action_id": action_id,
        "placeholder": plain_text(placeholder, PLACEHOLDER_MAX),
        "multiline": multiline,
        "max_length": max_length,
    }
    if initial:
        element["initial_value"] = initial[:max_length]
    return element


def static_select(
    action_id: str, choices: Sequence[tuple[str, str]], initial: str | None
) -> dict[str, Any]:
    """A drop-down of ``(value, label)`` choices, with ``initial`` chosen."""
    options = [
        {"text": plain_text(label, OPTION_TEXT_MAX), "value": value} for value, label in choices
    ]
    element: dict[str, Any] = {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": plain_text("Choose…", PLACEHOLDER_MAX),
        "options": options,
    }
    chosen = next((option for option in options if option["value"] == initial), None)
    if chosen is not None:
        element["initial_option"] = chosen
    return element


def channel_select(action_id: str, initial: str | None) -> dict[str, Any]:
    """A channel picker: ``initial`` chosen, else the conversation the modal opened from."""
    element: dict[str, Any] = {
        "type": "conversations_select",
        "action_id": action_id,
        "placeholder": plain_text("Choose a channel", PLACEHOLDER_MAX),
        "filter": {"exclude_bot_users": True},
    }
    # Slack ignores one of the two when both are given; a known channel must win.
    if initial:
        element["initial_conversation"] = initial
    else:
        element["default_to_current_conversation"] = True
    return element


def actions(elements: list[dict[str, Any]]) -> Block:
    """An actions block: a row of buttons."""
    return {"type": "actions", "elements": elements}


def button(
    text: str,
    action_id: str,
    value: str | None,
    *,
    style: str | None = None,
    confirm: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A button; a click sends ``action_id`` and ``value`` back to the bot."""
    button: dict[str, Any] = {
        "type": "button",
        "text": plain_text(text, BUTTON_TEXT_MAX),
        "action_id": action_id,
    }
    extras = {"value": value, "style": style, "confirm": confirm}
    button.update({key: extra for key, extra in extras.items() if extra is not None})
    return button


def confirm_dialog(
    title: str, text: str, *, confirm: str = "Delete", deny: str = "Keep", danger: bool = True
) -> dict[str, Any]:
    """Slack's "are you sure?" dialog, shown before a button's click is sent."""
    dialog = {
        "title": plain_text(title, 100),
        "text": plain_text(text, 300),
        "confirm": plain_text(confirm, 30),
        "deny": plain_text(deny, 30),
    }
    return dialog | {"style": "danger"} if danger else dialog


# Reading a submitted modal


def submitted_values(view: Mapping[str, Any]) -> dict[str, str]:
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
