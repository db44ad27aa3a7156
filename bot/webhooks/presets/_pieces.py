"""Message pieces shared by several presets: outcomes, commit lists, titled fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.slack import blocks as bk
from bot.webhooks.event import Rendered
from bot.webhooks.presets._common import code, esc, first_line, short_sha

ZERO_SHA = "0" * 40
COMMIT_LINE_MAX = 120


@dataclass(frozen=True)
class Outcome:
    """How a state shows in Slack: emoji, verb, and what it does to the thread's root."""

    emoji: str
    verb: str
    reaction: str | None = None
    updates_root: bool = False


@dataclass(frozen=True)
class Commit:
    """The few facts of one commit that a push message shows."""

    sha: str
    url: str
    message: str
    author: str


def field(title: str, value_mrkdwn: str) -> str:
    """A two-line mrkdwn field: bold title, then the (already escaped) value."""
    return f"*{title}*\n{value_mrkdwn}"


def present(items: Sequence[str]) -> list[str]:
    """Drop the empty ones, so optional facts vanish instead of showing blank."""
    return [item for item in items if item]


def optional_field(title: str, value_mrkdwn: str) -> str:
    """A field, or "" when there is no value (to be dropped by ``present``)."""
    return field(title, value_mrkdwn) if value_mrkdwn else ""


def commit_line(commit: Commit) -> str:
    """ "`abc1234` first line of message — author", the sha linking to the commit."""
    sha = short_sha(commit.sha).replace("`", "")
    linked = bk.link(commit.url, f"`{sha}`") if sha else ""
    message = esc(first_line(commit.message), COMMIT_LINE_MAX)
    author = f" — {esc(commit.author, 60)}" if commit.author else ""
    return " ".join(present([linked, message])) + author


def commit_list(commits: Sequence[Commit], total: int) -> str:
    """The commit lines within a section's limit, saying how many more there were."""
    lines = [commit_line(commit) for commit in commits]
    if total > len(commits):
        # The sender only lists some commits (GitLab sends 20); say so in the last line.
        lines.append(f"{bk.ELLIPSIS} {total - len(commits)} more commits not listed")
    return bk.join_within(lines, noun="commits")


def ref_name(ref: str) -> tuple[str, str]:
    """("branch" | "tag" | "ref", short name) for a git ref like ``refs/heads/main``."""
    for prefix, kind in (("refs/heads/", "branch"), ("refs/tags/", "tag")):
        if ref.startswith(prefix):
            return kind, ref.removeprefix(prefix)
    return "ref", ref


def arrows(base: str, head: str) -> str:
    """ "`base` ← `head`", the direction a merge goes."""
    return f"{code(base)} ← {code(head)}"


def mapping_items(values: Any) -> list[Mapping[str, Any]]:
    """The dict elements of a list, skipping anything else."""
    return (
        [item for item in values if isinstance(item, Mapping)] if isinstance(values, list) else []
    )


def duration(seconds: float | None) -> str:
    """ "1h 2m 3s" style, or "" when unknown."""
    if seconds is None or seconds < 0 or seconds != seconds or seconds > 10**9:
        return ""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s"]
    return " ".join(part for part in parts if part)


def rendered(
    text: str,
    blocks: list[bk.Block],
    thread_key: str | None = None,
    outcome: Outcome | None = None,
) -> Rendered:
    """A ``Rendered``; the outcome's root update and reaction apply only inside a thread."""
    updates_root = thread_key is not None and outcome is not None and outcome.updates_root
    reaction = outcome.reaction if updates_root and outcome is not None else None
    return Rendered(text, blocks, thread_key, updates_root, reaction)
