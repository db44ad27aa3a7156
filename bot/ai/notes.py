"""What the AI step adds to a message, and the plain text of a message it reads.

Everything the model wrote is marked as such and escaped for Slack: a label shows as
"categorised as *billing* (AI)", a summary as "*Summary* _(AI-written)_: …". The model's
words never become Slack markup (a summary saying ``<!channel>`` pings nobody).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any, Final

from bot.ai.labels import Label
from bot.outbox import Message
from bot.slack import blocks as kit
from bot.slack.text import unescape

AI_WRITTEN: Final = "_(AI-written)_"
# Slack's references: <url|label>, <url>, <@U123>, <#C123|name>, <!here>.
_LABELLED: Final = re.compile(r"<([^<>|]+)\|([^<>]*)>")
_BARE: Final = re.compile(r"<([^<>]+)>")
# Block types whose text is what a message says (not buttons, not footnotes).
_CONTENT_BLOCKS: Final = frozenset({"section", "header", "rich_text", "markdown"})


def category_line(label: Label) -> kit.Block:
    """The context line under a message whose label the model chose."""
    return kit.context([f"categorised as *{kit.escape_mrkdwn(label.name)}* (AI)"])


def summary_block(summary: str) -> kit.Block:
    """The summary above long content, marked as written by AI."""
    return kit.section(f"*Summary* {AI_WRITTEN}: {kit.escape_mrkdwn(summary)}")


def marked_summary(summary: str) -> str:
    """A summary as a template prints it: escaped for Slack, marked as written by AI."""
    return f"{kit.escape_mrkdwn(summary)} {AI_WRITTEN}"


def with_notes(message: Message, *, summary: str | None, category: Label | None) -> Message:
    """``message`` with a summary above its content and a category line at its end.

    The message keeps its last block (a hook's footnote) when blocks must go to make room.
    """
    if summary is None and category is None:
        return message
    head = [summary_block(summary)] if summary is not None else []
    tail = [category_line(category)] if category is not None else []
    body = message.blocks or [kit.section(message.text)]
    room = kit.MAX_BLOCKS - len(head) - len(tail)
    if len(body) > room:
        body = [*body[: room - 1], body[-1]]
    text, blocks = kit.fit_message(message.text, [*head, *body, *tail])
    return replace(message, text=text, blocks=blocks)


def content_text(text: str, blocks: Sequence[kit.Block] | None) -> str:
    """What a message says, as plain text: its sections and headers (``text`` when it has
    none), with Slack's escaping undone and links written as "label (url)"."""
    parts = [part for block in blocks or () for part in _block_texts(block)]
    return plain_text("\n".join(parts) if parts else text)


def plain_text(mrkdwn: str) -> str:
    """Slack mrkdwn as plain text: ``<url|label>`` → "label (url)", entities undone."""
    labelled = _LABELLED.sub(lambda m: f"{m.group(2)} ({m.group(1)})", mrkdwn)
    return unescape(_BARE.sub(lambda m: m.group(1), labelled))


def _block_texts(block: kit.Block) -> Iterator[str]:
    if block.get("type") not in _CONTENT_BLOCKS:
        return
    yield from _texts(block)


def _texts(value: Any) -> Iterator[str]:
    """Every ``text`` string inside a block (its text object, fields, elements)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "text" and isinstance(item, str):
                yield item
            else:
                yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
