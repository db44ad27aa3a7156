"""What one run of an http, json or rss check observes.

Every expected failure (timeout, refused or blocked connection, bad status, bad JSON,
unparseable feed) comes back as ``Observation(ok=False, summary=...)``; a check only
raises for bugs. User conditions arrive already compiled into a callable that takes a
context mapping (see `condition_context`); this module just calls them.
"""

from __future__ import annotations

import asyncio
import calendar
import codecs
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from html.parser import HTMLParser
from typing import Any, Protocol
from xml.sax import SAXParseException

import feedparser

from bot.net import DEFAULT_MAX_BYTES, FetchBlocked, FetchError, FetchResult
from bot.triggers.observation import FeedItem, Observation

Condition = Callable[[Mapping[str, Any]], bool]

SUMMARY_LIMIT = 300
_BLOCK_TAGS = frozenset({"p", "br", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})


class Fetcher(Protocol):
    """Anything that GETs a URL like `bot.net.SafeFetcher.get`."""

    async def get(
        self,
        url: str,
        *,
        timeout: float,  # noqa: ASYNC109
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> FetchResult: ...


@dataclass(frozen=True)
class _NotJSON:
    """Marker for a body that did not parse; ``None`` is a valid JSON value."""

    reason: str


def _ms(value: float) -> str:
    return f"{round(value)} ms"


def http_line(result: FetchResult) -> str:
    """``HTTP 503 in 120 ms``."""
    return f"HTTP {result.status} in {_ms(result.elapsed_ms)}"


def is_success(status: int) -> bool:
    """True for 2xx statuses."""
    return 200 <= status < 300


# Python codecs that decode bytes to text but are no charset a server could mean.
_NOT_CHARSETS = frozenset({"idna", "punycode", "undefined", "unicode-escape", "raw-unicode-escape"})


def decode_body(body: bytes, headers: Mapping[str, str]) -> str:
    """The body as text: the Content-Type charset if known, else UTF-8, never failing."""
    message = Message()
    message["content-type"] = headers.get("Content-Type", "")
    charset = message.get_content_charset() or "utf-8"
    try:
        if codecs.lookup(charset).name in _NOT_CHARSETS:
            charset = "utf-8"
        return body.decode(charset, errors="replace")
    except (LookupError, ValueError):  # UnicodeError is a ValueError
        # An unknown charset: the server chose it, and it must not stop the check.
        return body.decode("utf-8", errors="replace")


def parse_json(result: FetchResult) -> Any:
    """The parsed body, or a `_NotJSON` marker saying why it is not JSON."""
    try:
        return json.loads(result.body)
    except (ValueError, RecursionError) as exc:
        cut = f"; body cut at {len(result.body)} bytes" if result.truncated else ""
        return _NotJSON(f"{exc}{cut}")


def cert_days_left(result: FetchResult, now: datetime) -> float | None:
    """Days until the server certificate expires (negative once expired); None for http."""
    if result.cert_not_after is None:
        return None
    return (result.cert_not_after - now).total_seconds() / 86400


def _flat_headers(headers: Mapping[str, str]) -> dict[str, str]:
    # Lower-case names so expressions can index them one way; repeats join per RFC 9110.
    flat: dict[str, str] = {}
    items = headers.items()
    for name, value in items:
        key = name.lower()
        flat[key] = f"{flat[key]}, {value}" if key in flat else value
    return flat


def condition_context(result: FetchResult, now: datetime) -> dict[str, Any]:
    """What a user condition can see: status, latency_ms, body, json, headers, cert_days_left.

    ``json`` is the parsed body, or None when the body is not JSON.
    """
    data = parse_json(result)
    return {
        "status": result.status,
        "latency_ms": result.elapsed_ms,
        "body": decode_body(result.body, result.headers),
        "json": None if isinstance(data, _NotJSON) else data,
        "headers": _flat_headers(result.headers),
        "cert_days_left": cert_days_left(result, now),
    }


def _evaluate(condition: Condition, context: Mapping[str, Any]) -> bool | str:
    """The condition's truth, or the error text if it raised."""
    try:
        return bool(condition(context))
    except Exception as exc:  # a user expression may fail in any way; report it
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


async def _fetch(
    fetcher: Fetcher, url: str, seconds: float, max_bytes: int, prefix: str = ""
) -> FetchResult | Observation:
    """The fetch result, or a failed observation saying why there is none."""
    started = time.perf_counter()
    try:
        return await fetcher.get(url, timeout=seconds, max_bytes=max_bytes)
    except (FetchBlocked, FetchError) as exc:
        elapsed = (time.perf_counter() - started) * 1000
        return Observation(ok=False, summary=prefix + exc.reason, duration_ms=elapsed)


def _observe(result: FetchResult, ok: bool, summary: str) -> Observation:
    return Observation(ok=ok, summary=summary, duration_ms=result.elapsed_ms, status=result.status)


def _now(now: datetime | None) -> datetime:
    return now if now is not None else datetime.now(UTC)


def http_observation(
    result: FetchResult,
    condition: Condition | None,
    condition_text: str | None,
    now: datetime,
) -> Observation:
    """Judge a fetched response: a non-2xx status or a true condition is a problem."""
    line = http_line(result)
    if not is_success(result.status):
        return _observe(result, False, line)
    if condition is None:
        return _observe(result, True, f"OK: {line}")
    held = _evaluate(condition, condition_context(result, now))
    if isinstance(held, str):
        return _observe(result, False, f"condition error: {held}")
    if held:
        return _observe(result, False, f"condition held: {condition_text or 'condition'} ({line})")
    return _observe(result, True, f"OK: {line}")


async def check_http(
    fetcher: Fetcher,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109
    condition: Condition | None = None,
    condition_text: str | None = None,
    now: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Observation:
    """GET ``url``; a problem when not 2xx, unreachable or blocked, or ``condition`` holds.

    ``now`` (default: the wall clock) is used for ``cert_days_left``; at most ``max_bytes``
    of the body are read (and seen by the condition).
    """
    fetched = await _fetch(fetcher, url, timeout, max_bytes)
    if isinstance(fetched, Observation):
        return fetched
    return http_observation(fetched, condition, condition_text, _now(now))


def json_observation(
    result: FetchResult, condition: Condition, condition_text: str | None, now: datetime
) -> Observation:
    """Judge a fetched JSON document: ok means the condition is false."""
    line = http_line(result)
    if not is_success(result.status):
        return _observe(result, False, f"fetch failed: {line}")
    data = parse_json(result)
    if isinstance(data, _NotJSON):
        return _observe(result, False, f"fetch failed: response is not JSON ({data.reason})")
    context = {**condition_context(result, now), "json": data, "data": data}
    held = _evaluate(condition, context)
    text = condition_text or "condition"
    if isinstance(held, str):
        return _observe(result, False, f"condition error: {held}")
    if held:
        return _observe(result, False, f"condition true: {text} ({line})")
    return _observe(result, True, f"OK: condition false: {text} ({line})")


async def check_json(
    fetcher: Fetcher,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109
    condition: Condition,
    condition_text: str | None = None,
    now: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Observation:
    """GET and parse JSON; ``ok`` is False when the condition is true or the fetch failed.

    Summaries start with ``fetch failed:``, ``condition true:``, ``condition error:`` or
    ``OK:`` so a reader can tell an unreachable endpoint from a condition that holds.
    The condition sees `condition_context` plus ``data`` (same as ``json``).
    """
    fetched = await _fetch(fetcher, url, timeout, max_bytes, prefix="fetch failed: ")
    if isinstance(fetched, Observation):
        return fetched
    return json_observation(fetched, condition, condition_text, _now(now))


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def strip_html(markup: str) -> str:
    """Visible text of an HTML fragment with entities decoded and whitespace collapsed."""
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    return " ".join("".join(extractor.parts).split())


def shorten(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def _entry_time(entry: Any) -> time.struct_time | None:
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    return parsed if isinstance(parsed, time.struct_time) else None


def _published(entry: Any) -> str | None:
    parsed = _entry_time(entry)
    if parsed is not None:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC).isoformat()
    raw = entry.get("published") or entry.get("updated")
    return str(raw) if raw else None


def _text(value: Any) -> str | None:
    text = str(value).strip() if value else ""
    return text or None


def feed_item(entry: Any) -> FeedItem | None:
    """A `FeedItem` from one feedparser entry; None when it has no id, link or title."""
    link = _text(entry.get("link"))
    title = _text(entry.get("title"))
    item_id = _text(entry.get("id")) or link or title
    if item_id is None:
        return None
    summary = strip_html(str(entry.get("summary") or ""))
    return FeedItem(
        id=item_id,
        title=strip_html(title) if title else "(untitled)",
        link=link,
        summary=shorten(summary) if summary else None,
        published=_published(entry),
    )


def newest_first(entries: list[Any]) -> list[Any]:
    """Entries sorted newest first when every one is dated, else in document order."""
    dated: list[tuple[int, Any]] = []
    for entry in entries:
        when = _entry_time(entry)
        if when is None:
            return entries
        dated.append((calendar.timegm(when), entry))
    # sorted() is stable, so entries with equal times keep their document order.
    return [entry for _, entry in sorted(dated, key=lambda pair: pair[0], reverse=True)]


def parse_feed(body: bytes, headers: Mapping[str, str], url: str) -> Any:
    """Parse feed bytes with feedparser.

    feedparser must never see a str or bytes it could treat as a URL or a file path (it
    would fetch or open it), so the body goes in as a stream.
    """
    response_headers = {
        "content-type": headers.get("Content-Type", ""),
        "content-location": url,
    }
    return feedparser.parse(io.BytesIO(body), response_headers=response_headers)


def _bozo_reason(exc: object) -> str:
    if isinstance(exc, SAXParseException):
        # Only the message: feedparser rewrites the document, so positions are shifted.
        return str(exc.getMessage())
    return str(exc or "").strip() or "no entries found"


def feed_observation(result: FetchResult, parsed: Any) -> Observation:
    """Judge a parsed feed: its items newest first, or why it is not a usable feed."""
    line = http_line(result)
    entries = list(parsed.get("entries") or [])
    if not entries and (parsed.get("bozo") or not parsed.get("version")):
        why = _bozo_reason(parsed.get("bozo_exception"))
        return _observe(result, False, f"not an RSS or Atom feed: {why} ({line})")
    items = tuple(i for e in newest_first(entries) if (i := feed_item(e)) is not None)
    noun = "item" if len(items) == 1 else "items"
    return Observation(
        ok=True,
        summary=f"OK: {len(items)} {noun} ({line})",
        duration_ms=result.elapsed_ms,
        status=result.status,
        items=items,
    )


async def check_feed(
    fetcher: Fetcher,
    url: str,
    *,
    timeout: float,  # noqa: ASYNC109
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Observation:
    """Fetch and parse an RSS or Atom feed; ``items`` lists every entry, newest first."""
    fetched = await _fetch(fetcher, url, timeout, max_bytes)
    if isinstance(fetched, Observation):
        return fetched
    if not is_success(fetched.status):
        return _observe(fetched, False, http_line(fetched))
    # Parsing a large feed takes a while; keep the event loop free meanwhile.
    parsed = await asyncio.to_thread(parse_feed, fetched.body, fetched.headers, fetched.final_url)
    return feed_observation(fetched, parsed)
