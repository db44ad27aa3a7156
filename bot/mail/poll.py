"""One run of a mailbox watch: connect, look, fetch what is new, read it, log out.

The decisions are `bot.mail.watch`'s; this is the thin async shell around them. It
returns the position to store and the messages to route, oldest first; storing,
routing and posting are the caller's (the trigger flow).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.config import Secret
from bot.mail.imap import DEFAULT_TIMEOUT, MailboxReader, connect, parse_mailbox_url
from bot.mail.message import DEFAULT_MAX_TEXT, MailMessage, parse_message, summary_from_headers
from bot.mail.watch import (
    MAX_FETCH,
    Baseline,
    NewMail,
    Position,
    Rebaseline,
    Unchanged,
    newest_on_baseline,
    plan_run,
    rebaseline_notice,
    select_new,
)
from bot.net import AddressPolicy

# EMAIL_MAX_BYTES' default: a larger message is summarised from its headers.
DEFAULT_MAX_BYTES = 10_000_000


@dataclass(frozen=True)
class MailSource:
    """Where and how to read: the trigger's settings and its secret."""

    url: str
    user: str | None
    password: Secret = field(repr=False)
    allow_plain: bool = False
    latest: int = 0
    max_bytes: int = DEFAULT_MAX_BYTES
    max_text: int = DEFAULT_MAX_TEXT
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class ReadMessage:
    """A new message, by UID, as read."""

    uid: int
    message: MailMessage


@dataclass(frozen=True)
class PollResult:
    """What one run found: the position to store, the new messages (oldest first), how
    many newer-than-position messages were not fetched, and a notice to post, if any."""

    position: Position
    messages: tuple[ReadMessage, ...] = ()
    skipped: int = 0
    notice: str | None = None


async def poll_mailbox(
    source: MailSource,
    stored: Position | None,
    *,
    policy: AddressPolicy,
    tls_context: ssl.SSLContext | None = None,
    fetch_limit: int = MAX_FETCH,
) -> PollResult:
    """Run the watch once. Raises `bot.mail.imap.MailError` when the mailbox cannot be read."""
    url = parse_mailbox_url(source.url)
    reader = await connect(
        url,
        source.user,
        source.password,
        policy=policy,
        timeout=source.timeout,
        allow_plain=source.allow_plain,
        tls_context=tls_context,
    )
    async with reader:
        status = await reader.examine(url.mailbox)
        plan = plan_run(stored, status, latest=source.latest)
        if isinstance(plan, Rebaseline):
            return PollResult(plan.position, notice=rebaseline_notice(plan, url.mailbox))
        if isinstance(plan, Unchanged):
            return PollResult(plan.position)
        if isinstance(plan, Baseline):
            new = newest_on_baseline(await reader.newest_uids(plan.post_newest), plan)
        else:
            found = await reader.uids_after(plan.after_uid)
            new = select_new(found, plan.position, status, limit=fetch_limit)
        return await _read_new(reader, new, source)


async def _read_new(reader: MailboxReader, new: NewMail, source: MailSource) -> PollResult:
    messages = await read_messages(reader, new.fetch, source.max_bytes, source.max_text)
    return PollResult(new.position, tuple(messages), new.skipped)


async def read_messages(
    reader: MailboxReader, uids: Sequence[int], max_bytes: int, max_text: int
) -> list[ReadMessage]:
    """Fetch and read ``uids`` in order; messages deleted meanwhile are left out."""
    if not uids:
        return []
    sizes = await reader.fetch_sizes(uids)
    read: list[ReadMessage] = []
    for uid in uids:
        if uid not in sizes:
            continue
        fetched = await reader.fetch_message(uid, max_bytes, sizes[uid])
        if fetched is None:
            continue
        if fetched.complete:
            # Parsing a large message is CPU work: off the event loop.
            message = await asyncio.to_thread(parse_message, fetched.raw, max_text=max_text)
        else:
            message = summary_from_headers(fetched.raw, size=fetched.size, limit=max_bytes)
        read.append(ReadMessage(uid, message))
    return read
