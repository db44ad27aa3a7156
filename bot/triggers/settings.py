"""What ``/trigger set NAME key=value …`` can change, one table entry per setting.

A setting is read from its typed text into the value stored in ``trigger.settings``
(None removes it, which is what ``key=`` with nothing after it asks for). To add a
setting, add a `Setting` to `SETTINGS`: its reader raises `SettingError` with a sentence
saying what is wrong, and ``/trigger set`` and ``/trigger show`` know it.

Settings live apart from ``options`` (retries=, timeout=, …): those belong to the
``/trigger add`` grammar, which the edit form shows and reads back whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from bot.actions.spec import ON_CHOICES
from bot.ai.labels import LabelError, format_labels, parse_labels
from bot.errors import SpecError
from bot.names import NAME_RULE, valid_name


class SettingError(ValueError):
    """A setting's value cannot be used; the message says why (without the key)."""


@dataclass(frozen=True)
class Setting:
    """One ``key=value`` of ``/trigger set``: how to read it, and an example value."""

    read: Callable[[str], str | None]
    example: str
    describe: Callable[[str], str] = str  # the stored value as replies show it


def _labels(value: str) -> str | None:
    if not value.strip():
        return None
    try:
        return format_labels(parse_labels(value))
    except LabelError as error:
        raise SettingError(str(error)) from None


def _label_names(stored: str) -> str:
    return ", ".join(label.name for label in parse_labels(stored))


def _on_off(value: str) -> str | None:
    if value.lower() not in ("on", "off", ""):
        raise SettingError("use on or off")
    return "on" if value.lower() == "on" else None


def _action_names(value: str) -> str | None:
    """``crm, inventory`` → ``crm,inventory`` (names of actions, `bot.actions`)."""
    names = [part.strip().lower() for part in value.split(",") if part.strip()]
    bad = [name for name in names if valid_name(name) is None]
    if bad:
        raise SettingError(f"`{bad[0]}` can't be an action's name ({NAME_RULE})")
    return ",".join(dict.fromkeys(names)) or None


def _on(value: str) -> str | None:
    if value.lower() not in (*ON_CHOICES, ""):
        raise SettingError(f"use one of {', '.join(ON_CHOICES)}")
    return value.lower() or None


SETTINGS: Final[Mapping[str, Setting]] = {
    "categorise": Setting(
        _labels, '"sales: buying or prices; support: problems; spam"', _label_names
    ),
    "summary": Setting(_on_off, "on"),
    # Actions (`bot.actions`): which to run, on what, and which to offer as buttons.
    "then": Setting(_action_names, "restart-api"),
    "on": Setting(_on, "problem"),
    "buttons": Setting(_action_names, "restart-api"),
}

# Settings that name actions, which must exist when set.
ACTION_SETTINGS: Final = ("then", "buttons")


@dataclass(frozen=True)
class TriggerSettings:
    """Changes to a trigger's settings: a key's new stored value, or None to remove it."""

    changes: Mapping[str, str | None]

    def applied_to(self, current: Mapping[str, str]) -> dict[str, str]:
        """``current`` with these changes made."""
        updated = dict(current)
        for key, value in self.changes.items():
            if value is None:
                updated.pop(key, None)
            else:
                updated[key] = value
        return updated

    def describe(self) -> str:
        """``categorise=sales, support, summary=(off)``: what changed, for replies and the audit."""
        return ", ".join(
            f"{key}={describe(key, value) if value is not None else '(off)'}"
            for key, value in self.changes.items()
        )


def describe(key: str, stored: str) -> str:
    """A stored setting as people read it (a categorise setting by its label names)."""
    setting = SETTINGS.get(key)
    return setting.describe(stored) if setting is not None else stored


def read_settings(options: Mapping[str, str]) -> TriggerSettings:
    """``key=value`` options → `TriggerSettings`; `SpecError` naming the key at fault."""
    changes: dict[str, str | None] = {}
    for key, value in options.items():
        setting = SETTINGS.get(key)
        if setting is None:
            raise SpecError(
                f"`{key}=` isn't a setting here; use {', '.join(SETTINGS)}. "
                f"Example: `/trigger set NAME {example_settings()}`",
                field="options",
                part=key,
            )
        try:
            changes[key] = setting.read(value)
        except SettingError as error:
            raise SpecError(
                f"`{key}=`: {error}. Example: `{key}={setting.example}`", field=key, part=value
            ) from None
    return TriggerSettings(changes)


def example_settings() -> str:
    """``categorise="…" summary=on``: every setting with an example value."""
    return " ".join(f"{key}={setting.example}" for key, setting in SETTINGS.items())
