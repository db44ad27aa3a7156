"""`HookSpec` and `HookSettings`: what a hook is, as every front door hands it to
`HookService` (the ``/hook`` slash command, the modal, plain-language proposals, drafts)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.ai.labels import parse_labels
from bot.outbox import ThreadMode
from bot.webhooks.event import SENDERS

PRESETS: Final[tuple[str, ...]] = ("auto", *SENDERS)
# Senders that sign with a secret of their own, which the user copies to us afterwards.
SENDER_CHOSEN_SECRETS: Final = frozenset({"sentry", "stripe"})
MIN_SECRET_CHARS: Final = 8


@dataclass(frozen=True)
class HookSpec:
    """A new hook. ``channel`` is a channel id or ``#name`` (None: where it was asked);
    ``secret`` None means the bot makes one (or, for Sentry and Stripe, waits for theirs)."""

    name: str
    channel: str | None = None
    preset: str = "auto"
    secret: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (for drafts; the secret is never kept in one)."""
        return {"name": self.name, "channel": self.channel, "preset": self.preset}


def hook_spec_from_dict(data: Mapping[str, Any]) -> HookSpec:
    """Read back `HookSpec.to_dict`; raises ValueError for a document of another shape."""
    preset = str(data.get("preset") or "auto")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}")
    channel = data.get("channel")
    return HookSpec(
        name=str(data["name"]), channel=None if channel is None else str(channel), preset=preset
    )


@dataclass(frozen=True)
class HookSettings:
    """Changes to a hook's settings; None leaves one as it is.

    ``run_trigger`` "" clears the trigger a hook runs; ``categorise`` is the labels as
    `bot.ai.labels.format_labels` writes them, "" to stop categorising.
    """

    threads: ThreadMode | None = None
    rate_limit: int | None = None
    channel: str | None = None
    preset: str | None = None
    secret: str | None = None
    run_trigger: str | None = None
    categorise: str | None = None
    summary: bool | None = None
    actions: tuple[str, ...] | None = None  # then=: () stops running actions
    post: bool | None = None
    buttons: tuple[str, ...] | None = None

    def columns(self) -> dict[str, Any]:
        """The ``hook`` columns these settings change, with their new values."""
        values: dict[str, Any] = {
            "threads": self.threads,
            "rate_limit": self.rate_limit,
            "channel_id": self.channel,
            "preset": self.preset,
            "secret": self.secret,
        }
        changed = {key: value for key, value in values.items() if value is not None}
        if self.run_trigger is not None:
            changed["run_trigger"] = self.run_trigger or None
        if self.categorise is not None:
            changed["categorise"] = self.categorise or None
        if self.summary is not None:
            changed["summary"] = self.summary
        if self.actions is not None:
            changed["actions"] = ",".join(self.actions) or None
        if self.post is not None:
            changed["post"] = self.post
        if self.buttons is not None:
            changed["buttons"] = ",".join(self.buttons) or None
        return changed

    def describe(self) -> str:
        """``threads=off, secret=(new secret)``: never a secret's value."""
        said = {
            "threads": self.threads,
            "rate": self.rate_limit,
            "channel": self.channel,
            "preset": self.preset,
            "secret": None if self.secret is None else "(new secret)",
            "run": None if self.run_trigger is None else self.run_trigger or "(none)",
            "categorise": None if self.categorise is None else label_names(self.categorise),
            "summary": None if self.summary is None else ("on" if self.summary else "off"),
            "then": None if self.actions is None else ",".join(self.actions) or "(none)",
            "post": None if self.post is None else ("on" if self.post else "off"),
            "buttons": None if self.buttons is None else ",".join(self.buttons) or "(none)",
        }
        return ", ".join(f"{key}={value}" for key, value in said.items() if value is not None)


def label_names(labels: str) -> str:
    """``sales, support, billing`` for stored labels ("(none)" when cleared)."""
    return ", ".join(label.name for label in parse_labels(labels)) if labels else "(none)"
