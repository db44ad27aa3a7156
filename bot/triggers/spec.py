"""`TriggerSpec`: what a trigger is, as every front door hands it to `TriggerService`.

The slash grammar (`bot.triggers.grammar`), the modal, plain-language proposals and
drafts all produce one of these; none of them produces command text for another to
parse again. A spec is syntactically valid when it exists (its schedule is parsed, its
kind known, its options checked); `TriggerService.validate` adds what needs the world
(the URL policy, the condition's names, a unique name).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from bot.triggers.schedule import Schedule, schedule_from_dict

TriggerKind = Literal["http", "rss", "json", "csv", "message", "report", "email"]
KINDS: Final[tuple[TriggerKind, ...]] = ("http", "rss", "json", "csv", "message", "report", "email")
CHECK_KINDS: Final[frozenset[TriggerKind]] = frozenset({"http", "rss", "json", "csv"})


def trigger_kind(text: str) -> TriggerKind | None:
    """The kind named by ``text`` (any case), or None."""
    lowered = text.lower()
    return next((kind for kind in KINDS if kind == lowered), None)


@dataclass(frozen=True)
class TriggerSpec:
    """A trigger's definition.

    ``target`` is the URL for http/rss/json/csv, the text for message, None for report, the
    mailbox URL (``imaps://user@host/INBOX``) for email.
    ``condition`` is the condition as the user wrote it (see `bot.triggers.conditions`).
    ``channel`` is a channel id, or ``#name`` when typed by hand; None means the channel
    the person asked from. ``options`` are validated ``key=value`` options.
    """

    name: str
    schedule: Schedule
    kind: TriggerKind
    target: str | None
    condition: str | None = None
    channel: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    # The schedule as the user wrote it (a form shows it back when editing).
    schedule_text: str = field(default="", compare=False)

    @property
    def checks_something(self) -> bool:
        """True for kinds that fetch a URL (http, rss, json, csv)."""
        return self.kind in CHECK_KINDS

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (for drafts); read back with `spec_from_dict`."""
        return {
            "name": self.name,
            "schedule": self.schedule.to_dict(),
            "kind": self.kind,
            "target": self.target,
            "condition": self.condition,
            "channel": self.channel,
            "options": dict(self.options),
            "schedule_text": self.schedule_text,
        }


def spec_from_dict(data: Mapping[str, Any]) -> TriggerSpec:
    """Read back `TriggerSpec.to_dict`; raises ValueError for a document of another shape."""
    kind = trigger_kind(str(data.get("kind", "")))
    if kind is None:
        raise ValueError(f"unknown trigger kind {data.get('kind')!r}")
    options = data.get("options") or {}
    if not isinstance(options, Mapping):
        raise ValueError("options must be a mapping")
    return TriggerSpec(
        name=str(data["name"]),
        schedule=schedule_from_dict(data["schedule"]),
        kind=kind,
        target=_optional_text(data.get("target")),
        condition=_optional_text(data.get("condition")),
        channel=_optional_text(data.get("channel")),
        options={str(key): str(value) for key, value in options.items()},
        schedule_text=str(data.get("schedule_text") or ""),
    )


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)
