"""Defensive readers for untrusted JSON, shared by every preset renderer.

Payloads come from outside: any field can be missing, null, or of another type. These
helpers turn "not there / not what we expected" into an empty default instead of raising.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.slack.blocks import escape_mrkdwn, truncate

# Lines inside a message stay short so a list of them reads at a glance.
LINE_MAX = 200
# Beyond 4300 digits int -> str raises; nothing that long is worth showing anyway.
_BIG_INT_BITS = 256


def dig(value: Any, *path: str | int, default: Any = None) -> Any:
    """Follow ``path`` through nested dicts (str keys) and lists (int keys), else ``default``."""
    for key in path:
        if not _has_step(value, key):
            return default
        value = value[key]
    return value


def _has_step(value: Any, key: str | int) -> bool:
    if isinstance(key, str):
        return isinstance(value, Mapping) and key in value
    return isinstance(value, list) and -len(value) <= key < len(value)


def scalar_text(value: Any) -> str:
    """Text for a JSON scalar (str, number, bool); "" for null, containers and anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if value.bit_length() <= _BIG_INT_BITS else "(large number)"
    if isinstance(value, float):
        return f"{value:g}"
    return ""


def text_at(value: Any, *path: str | int) -> str:
    """The scalar at ``path`` as text, or ""."""
    return scalar_text(dig(value, *path))


def int_at(value: Any, *path: str | int) -> int | None:
    """The integer at ``path`` (bools excluded), or None."""
    found = dig(value, *path)
    return found if isinstance(found, int) and not isinstance(found, bool) else None


def dict_at(value: Any, *path: str | int) -> Mapping[str, Any]:
    """The object at ``path``, or an empty one."""
    found = dig(value, *path)
    return found if isinstance(found, Mapping) else {}


def list_at(value: Any, *path: str | int) -> list[Any]:
    """The list at ``path``, or an empty one."""
    found = dig(value, *path)
    return found if isinstance(found, list) else []


def first_text(value: Any, paths: Sequence[tuple[str | int, ...]]) -> str:
    """The first non-empty scalar text among ``paths``."""
    for path in paths:
        found = text_at(value, *path)
        if found:
            return found
    return ""


def first_line(text: str) -> str:
    """The first non-blank line of ``text``, stripped."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def short_sha(sha: str, length: int = 7) -> str:
    """A commit id shortened the way git shows it."""
    return sha[:length]


def esc(text: str, limit: int = LINE_MAX) -> str:
    """Escape untrusted text for mrkdwn and keep it to one short line's worth."""
    return escape_mrkdwn(truncate(text, limit))


def code(text: str, limit: int = 100) -> str:
    """Untrusted text shown as inline code (backticks removed so it cannot break out)."""
    cleaned = truncate(text.replace("`", "'"), limit)
    return f"`{escape_mrkdwn(cleaned)}`" if cleaned else ""


def label_pairs(labels: Mapping[str, Any], skip: Sequence[str] = ()) -> str:
    """``k=v`` pairs of a label set, sorted, leaving out ``skip``."""
    ordered = sorted(labels.items(), key=lambda item: str(item[0]))
    pairs = [f"{key}={scalar_text(val)}" for key, val in ordered if key not in skip]
    return ", ".join(pairs)
