"""Block Kit builders that never produce a block Slack would reject for size.

Every builder clips its text to Slack's documented limits, and ``fit_message`` re-applies
all of them to a whole message, so callers can pass untrusted text of any length.

Limits (Slack Block Kit reference): header plain_text 150 characters; section text 3000;
each section field 2000 and at most 10 fields; context at most 10 elements; at most 50
blocks per message. Slack cuts a message's top-level ``text`` at 40,000 characters and
recommends at most 4,000; we cut it at 3,000 so the notification fallback is never longer
than one section of the message it stands in for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

Block = dict[str, Any]

ELLIPSIS = "…"
HEADER_MAX = 150
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
MAX_FIELDS = 10
CONTEXT_TEXT_MAX = 3000
MAX_CONTEXT_ELEMENTS = 10
MAX_BLOCKS = 50
MESSAGE_TEXT_MAX = 3000
# Longer URLs are shown as plain labels: they would eat a field's whole budget.
LINK_URL_MAX = 1500
# Slack rejects empty text objects; an em dash keeps the block valid and visibly blank.
EMPTY_TEXT = "—"

# A cut can leave half of "&amp;" behind, which Slack would show literally.
_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")
_WHITESPACE = re.compile(r"\s")


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control characters in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def channel_mention(channel: str) -> str:
    """A channel as a message names it: a link for an id, ``#name`` for a name typed by hand."""
    return escape_mrkdwn(channel) if channel.startswith("#") else f"<#{channel}>"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """ "1 commit", "3 commits"; ``nouns`` for irregular plurals ("deliveries")."""
    return f"{count} {noun}" if count == 1 else f"{count} {nouns or noun + 's'}"


def truncate(text: str, limit: int) -> str:
    """Return ``text`` cut to at most ``limit`` characters, ending in "…" when cut."""
    if len(text) <= limit:
        return text
    if limit <= len(ELLIPSIS):
        return ELLIPSIS[: max(limit, 0)]
    kept = _PARTIAL_ENTITY.sub("", text[: limit - len(ELLIPSIS)])
    return kept + ELLIPSIS


def join_within(lines: Sequence[str], limit: int = SECTION_TEXT_MAX, *, noun: str = "") -> str:
    """Join whole lines while they fit in ``limit``, then say how many were left out.

    Cutting between lines keeps each ``<url|label>`` link intact, which a plain
    ``truncate`` of the joined text would not. A first line too long on its own is cut.
    """
    everything = "\n".join(lines)
    if len(everything) <= limit:
        return everything
    kept: list[str] = []
    used = -1  # no separator before the first line
    for index, line in enumerate(lines):
        tail = _more_line(len(lines) - index - 1, noun)
        room = limit - used - 1 - (len(tail) + 1 if tail else 0)
        if len(line) > room:
            if not kept:
                kept.append(truncate(line, room))
            break
        kept.append(line)
        used += len(line) + 1
    hidden = len(lines) - len(kept)
    return truncate("\n".join([*kept, _more_line(hidden, noun)] if hidden else kept), limit)


def _more_line(count: int, noun: str) -> str:
    return f"{ELLIPSIS} and {count} more {noun}".rstrip() if count else ""


def link(url: str, label: str) -> str:
    """A mrkdwn link ``<url|label>``, or just the escaped label for a non-web or huge URL.

    Only http(s) URLs become links: ``<!channel>`` or ``<@U123>`` built from a payload
    value would otherwise notify people.
    """
    shown = escape_mrkdwn(label) or escape_mrkdwn(truncate(url, 80))
    if not url.lower().startswith(("https://", "http://")) or len(url) > LINK_URL_MAX:
        return shown
    return f"<{_link_target(url)}|{shown.replace('|', '¦')}>"


def _link_target(url: str) -> str:
    # "|" ends the URL part of a Slack link and whitespace ends the link; their
    # percent-encoded forms mean the same to the browser.
    escaped = escape_mrkdwn(url).replace("|", "%7C")
    return _WHITESPACE.sub(lambda match: quote(match.group()), escaped)


def header(text: str) -> Block:
    """A header block (plain text, shortcodes rendered as emoji), cut to 150 characters."""
    return {"type": "header", "text": _plain(text, HEADER_MAX)}


def section(mrkdwn: str) -> Block:
    """A section block with mrkdwn text cut to 3000 characters."""
    return {"type": "section", "text": _mrkdwn(mrkdwn, SECTION_TEXT_MAX)}


def fields(items: Sequence[str]) -> Block:
    """A section of two-column mrkdwn fields: at most 10, each cut to 2000 characters."""
    shown = list(items[:MAX_FIELDS]) or [EMPTY_TEXT]
    return {"type": "section", "fields": [_mrkdwn(item, FIELD_TEXT_MAX) for item in shown]}


def context(items: Sequence[str]) -> Block:
    """A context block of small mrkdwn lines: at most 10 elements."""
    shown = list(items[:MAX_CONTEXT_ELEMENTS]) or [EMPTY_TEXT]
    return {"type": "context", "elements": [_mrkdwn(item, CONTEXT_TEXT_MAX) for item in shown]}


def divider() -> Block:
    """A horizontal rule."""
    return {"type": "divider"}


def fit_message(text: str, blocks: Sequence[Block]) -> tuple[str, list[Block]]:
    """Apply every Slack size limit to a message's fallback text and blocks.

    Blocks beyond the 49th are dropped and replaced by one context block saying how many
    were not shown, so the message stays at 50 blocks at most.
    """
    fitted = [_fit_block(block) for block in blocks]
    if len(fitted) > MAX_BLOCKS:
        hidden = len(fitted) - (MAX_BLOCKS - 1)
        fitted = [*fitted[: MAX_BLOCKS - 1], context([f"{ELLIPSIS} {hidden} more not shown"])]
    return truncate(text, MESSAGE_TEXT_MAX), fitted


def _fit_block(block: Block) -> Block:
    fitter = _BLOCK_FITTERS.get(str(block.get("type")))
    return fitter(block) if fitter else block


def _fit_header(block: Block) -> Block:
    return {**block, "text": _refit_text(block.get("text"), HEADER_MAX)}


def _fit_section(block: Block) -> Block:
    fitted = dict(block)
    if "text" in block:
        fitted["text"] = _refit_text(block["text"], SECTION_TEXT_MAX)
    if isinstance(block.get("fields"), list):
        items = block["fields"][:MAX_FIELDS]
        fitted["fields"] = [_refit_text(item, FIELD_TEXT_MAX) for item in items]
    return fitted


def _fit_context(block: Block) -> Block:
    elements = block.get("elements")
    if not isinstance(elements, list):
        return block
    kept = elements[:MAX_CONTEXT_ELEMENTS]
    return {**block, "elements": [_refit_text(item, CONTEXT_TEXT_MAX) for item in kept]}


def _refit_text(obj: Any, limit: int) -> Any:
    """Clip a text object's ``text``; leave anything else (images, odd shapes) alone."""
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return {**obj, "text": truncate(obj["text"], limit) or EMPTY_TEXT}
    return obj


_BLOCK_FITTERS = {"header": _fit_header, "section": _fit_section, "context": _fit_context}


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": truncate(text, limit) or EMPTY_TEXT, "emoji": True}


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": truncate(text, limit) or EMPTY_TEXT}
