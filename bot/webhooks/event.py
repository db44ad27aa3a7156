"""Value types for one webhook delivery on its way to Slack."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Sender = Literal["github", "gitlab", "alertmanager", "grafana", "sentry", "stripe", "generic"]
SENDERS: tuple[Sender, ...] = (
    "github",
    "gitlab",
    "alertmanager",
    "grafana",
    "sentry",
    "stripe",
    "generic",
)


@dataclass(frozen=True)
class InboundEvent:
    """A verified, parsed delivery.

    ``payload`` is the decoded body: a JSON value for JSON and form bodies (GitHub's
    ``payload=`` form is unwrapped), or a ``str`` for plain text. ``headers`` has
    lower-cased names. ``event`` is the sender's event name ("push", "pull_request",
    "Merge Request Hook", "alert", "event_alert", "charge.succeeded", ...).
    """

    sender: Sender
    event: str
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rendered:
    """What to say in Slack about one event.

    ``thread_key`` groups related events (same pull request, same alert group); the
    first message of a key starts a thread. ``updates_root`` marks a state change
    (resolved, merged, closed, fixed): the thread's first message is edited to show
    this rendering, and ``reaction`` (an emoji name without colons) is added to it.
    ``new_thread`` marks the start of a new incident under a key that had one before (an
    issue that regressed after it was resolved): a new first message and thread, so the
    old, resolved one stays as it was.
    """

    text: str
    blocks: list[dict[str, Any]]
    thread_key: str | None = None
    updates_root: bool = False
    reaction: str | None = None
    new_thread: bool = False
