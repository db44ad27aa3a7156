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
    MailboxStatus,
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
    # True when the run stopped fetching at its deadline: the position is just past the
    # last message read, so the next run reads the rest.
    unfinished: bool = False


async def poll_mailbox(
    source: MailSource,
    stored: Position | None,
    *,
    policy: AddressPolicy,
    tls_context: ssl.SSLContext | None = None,
    fetch_limit: int = MAX_FETCH,
    fetch_until: float | None = None,
) -> PollResult:
    """Run the watch once. Raises `bot.mail.imap.MailError` when the mailbox cannot be read.

    ``fetch_until`` (event-loop time) stops fetching bodies once it has passed, so a run
    of many large messages ends in time and the next run carries on from there.
    """
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
            # The baseline covers the whole mailbox, however much of the newest is read.
            reading = await read_messages(reader, new.fetch, source, fetch_until)
            return PollResult(new.position, reading.messages, new.skipped)
        found = await reader.uids_after(plan.after_uid)
        new = select_new(found, plan.position, status, limit=fetch_limit)
        return await _read_new(reader, new, plan.position, source, fetch_until)


async def probe_mailbox(
    source: MailSource, *, policy: AddressPolicy, tls_context: ssl.SSLContext | None = None
) -> MailboxStatus:
    """Log in and open the mailbox, read nothing (a muted watch still notices problems)."""
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
        return await reader.examine(url.mailbox)


async def _read_new(
    reader: MailboxReader,
    new: NewMail,
    stored: Position,
    source: MailSource,
    fetch_until: float | None,
) -> PollResult:
    reading = await read_messages(reader, new.fetch, source, fetch_until)
    if reading.stopped_at is None:
        return PollResult(new.position, reading.messages, new.skipped)
    done = [uid for uid in new.fetch if uid < reading.stopped_at]
    position = Position(stored.uidvalidity, max([stored.last_uid, *done]))
    # Older new messages beyond the fetch limit are passed over once a newer one is
    # handled; until then the next run finds them again.
    skipped = new.skipped if done else 0
    return PollResult(position, reading.messages, skipped, unfinished=True)


@dataclass(frozen=True)
class Reading:
    """Messages read, in order, and the first UID left unfetched when time ran out."""

    messages: tuple[ReadMessage, ...]
    stopped_at: int | None = None


def _past(deadline: float | None) -> bool:
    return deadline is not None and asyncio.get_running_loop().time() > deadline


async def read_messages(
    reader: MailboxReader,
    uids: Sequence[int],
    source: MailSource,
    fetch_until: float | None = None,
) -> Reading:
    """Fetch and read ``uids`` in order, stopping before a fetch once ``fetch_until``
    (event-loop time) has passed; messages deleted meanwhile are left out."""
    if not uids:
        return Reading(())
    sizes = await reader.fetch_sizes(uids)
    read: list[ReadMessage] = []
    for uid in uids:
        if uid not in sizes:
            continue
        if _past(fetch_until):
            return Reading(tuple(read), stopped_at=uid)
        fetched = await reader.fetch_message(uid, source.max_bytes, sizes[uid])
        if fetched is None:
            continue
        if fetched.complete:
            # Parsing a large message is CPU work: off the event loop.
            message = await asyncio.to_thread(parse_message, fetched.raw, max_text=source.max_text)
        else:
            message = summary_from_headers(fetched.raw, size=fetched.size, limit=source.max_bytes)
        read.append(ReadMessage(uid, message))
    return Reading(tuple(read))
