"""Fetching what a trigger reports on: the request its options describe, the pages of the
answer (capped), and CSV exports read into rows.

The options (checked one by one by `option_check`, together by `options_problem`, and
kept in the trigger's ``options`` as typed):

* ``auth=bearer:NAME|basic:NAME`` and ``header.NAME=VALUE|secret:NAME``: credentials
  (`bot.credentials.refs`); `bot.net.SafeFetcher` sends them only to the hosts their
  secrets are bound to;
* ``method=GET|POST``, ``body=TEMPLATE`` (a POST body, rendered for each page with ``now``,
  ``trigger`` and ``cursor`` in scope), ``query.NAME=VALUE`` (added to the URL);
* ``pages=N`` (default `DEFAULT_PAGES`, at most `MAX_PAGES`): how many pages are read.
  The next page is the URL or cursor at ``next=PATH`` in a JSON page, else the RFC 8288
  ``Link: <…>; rel="next"`` header. A cursor goes back as the query parameter
  ``cursor=NAME`` names (default ``cursor``) on a GET, and as ``cursor`` to the body template
  of a POST;
* ``each=PATH key=FIELD``: a scan for new items (`bot.triggers.reporting`).

The pages of a JSON answer are merged into one document: lists are joined, objects are
merged key by key (so ``{"data": [...], "meta": {...}}`` pages give one ``data`` list),
and everything else is the first page's. A CSV page is read with its own header row and
its rows follow the previous page's. All pages together read at most ``max_bytes``; a
page that would not fit ends the reading, as ``pages=`` does, and the result says so.
"""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from bot.credentials.refs import CredentialRef, RefError, is_credential_option, parse_options
from bot.expressions import ExpressionError, compile_template
from bot.net import FetchBlocked, FetchError, FetchResult
from bot.triggers.checks import decode_body, is_success

FetchKind = Literal["http", "json", "csv"]
FETCH_KINDS: Final[frozenset[str]] = frozenset({"http", "json", "csv"})
SCAN_KINDS: Final[frozenset[str]] = frozenset({"json", "csv"})
DEFAULT_PAGES: Final = 10
MAX_PAGES: Final = 100
MAX_LATEST: Final = 10
MAX_ROWS: Final = 100_000
MAX_PATH_CHARS: Final = 200
DEFAULT_CURSOR_PARAM: Final = "cursor"
CSV_ROWS_PATH: Final = "rows"
_ACCEPT: Final[Mapping[str, str]] = {
    "json": "application/json",
    "csv": "text/csv, text/plain;q=0.9, */*;q=0.1",
    "http": "*/*",
}
_QUERY_PREFIX: Final = "query."
_CREDENTIAL_WORDS: Final = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "auth", "signature", "sig"}
    | {"session", "credential", "credentials", "sessionid"}
)
_PATH_SEGMENT = re.compile(r"[^.\s]+")
_PARAM_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]~]{1,100}")
# One link of a Link header: <target> followed by ;-separated parameters.
_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,=\s]+(?:\s*=\s*(?:\"[^\"]*\"|[^;,\s]*))?)*)")
_LINK_PARAM = re.compile(r";\s*([^;,=\s]+)(?:\s*=\s*(?:\"([^\"]*)\"|([^;,\s]*)))?")
# Slack turns text that looks like a domain ("data.email") into a link: undone in paths.
_AUTOLINK = re.compile(r"^<(?:https?://|mailto:)?([^|>]+)(?:\|([^>]*))?>$", re.IGNORECASE)
_NUMBER_START: Final = frozenset("-0123456789")
_NUMBER_CELL = re.compile(r"-?(?:0|[1-9]\d{0,14})(?:\.\d{1,15})?")


# -- options -------------------------------------------------------------------------------

OptionCheck = Callable[[str], str | None]


def _method(value: str) -> str | None:
    return None if value.upper() in ("GET", "POST") else "must be GET or POST"


def _pages(value: str) -> str | None:
    ok = value.isascii() and value.isdigit() and 1 <= int(value) <= MAX_PAGES
    return None if ok else f"must be a whole number from 1 to {MAX_PAGES}"


def _latest(value: str) -> str | None:
    ok = value.isascii() and value.isdigit() and int(value) <= MAX_LATEST
    return None if ok else f"must be a whole number from 0 to {MAX_LATEST}"


def _path(value: str) -> str | None:
    text = unlinked(value)
    if text in ("", "."):
        return None
    ok = len(text) <= MAX_PATH_CHARS and all(_PATH_SEGMENT.fullmatch(p) for p in text.split("."))
    return None if ok else "must be a path of names separated by dots, like data.leads"


def _key_path(value: str) -> str | None:
    return "must name a field, like id" if unlinked(value) in ("", ".") else _path(value)


def _param(value: str) -> str | None:
    ok = _PARAM_NAME.fullmatch(value) is not None
    return None if ok else "must be a query parameter name, like cursor"


def _body(value: str) -> str | None:
    try:
        compile_template(value)
    except ExpressionError as error:
        return f"is not a template that compiles ({error})"
    return None


def _credential(key: str) -> OptionCheck:
    def check(value: str) -> str | None:
        try:
            parse_options([(key, value)])
        except RefError as error:
            return f"is not understood: {error}"
        return None

    return check


def _query_value(value: str) -> str | None:
    return None if value.isprintable() else "must be printable text"


def _query_check(name: str) -> OptionCheck:
    """A literal query parameter; one named like a credential is refused: it would be
    shown by ``/trigger show`` and stored as typed."""
    if not _PARAM_NAME.fullmatch(name):
        return lambda _value: "has no valid name"
    if set(re.split(r"[-_.\[\]]", name.lower())) & _CREDENTIAL_WORDS:
        return lambda _value: (
            "looks like a credential, and a URL shows it: send it as a header with "
            "header.NAME=secret:NAME (stored with /secret set) if the API allows"
        )
    return _query_value


_CHECKS: Final[Mapping[str, OptionCheck]] = {
    "method": _method,
    "body": _body,
    "pages": _pages,
    "next": _path,
    "cursor": _param,
    "each": _path,
    "key": _key_path,
}
# Options that need a list to scan, and options that need a JSON page to read.
_SCAN_OPTIONS: Final = frozenset({"each", "key"})


def option_keys() -> tuple[str, ...]:
    """The option names this module checks (``header.NAME`` and ``query.NAME`` as such)."""
    return ("auth", "body", "cursor", "each", "header.NAME", "key", "method", "next", "pages")


def option_check(key: str, kind: str) -> OptionCheck | None:
    """The check of option ``key`` on a ``kind`` trigger; None when ``key`` is not one of
    this module's (``latest`` is, for json and csv: it may be up to `MAX_LATEST` there).
    A check returns why the value is wrong, or None."""
    ours = key in _CHECKS or is_credential_option(key) or key.lower().startswith(_QUERY_PREFIX)
    if key == "latest" and kind in SCAN_KINDS:
        return _latest
    if not ours:
        return None
    if kind not in FETCH_KINDS:
        return lambda _value: "is for http, json and csv triggers"
    if key in _SCAN_OPTIONS and kind not in SCAN_KINDS:
        return lambda _value: "is for json and csv triggers (a scan of a list for new items)"
    if key == "next" and kind != "json":
        return lambda _value: 'is for json answers; other pages follow the "Link" header'
    if is_credential_option(key):
        return _credential(key)
    if key.lower().startswith(_QUERY_PREFIX):
        return _query_check(key[len(_QUERY_PREFIX) :])
    return _CHECKS[key]


@dataclass(frozen=True)
class OptionProblem:
    """Options that do not go together: what is wrong, and the option at fault."""

    message: str
    part: str


def options_problem(
    kind: str, options: Mapping[str, str], condition: str | None
) -> OptionProblem | None:
    """Why these options cannot go together on a ``kind`` trigger, or None."""
    if "each" in options and "key" not in options:
        return OptionProblem("each= needs key=FIELD: the field that tells items apart", "each")
    if "key" in options and "each" not in options:
        return OptionProblem("key= goes with each=PATH, the list to scan", "key")
    if "each" in options and condition is not None:
        return OptionProblem(
            "each= posts every new item, so it takes no condition: leave out `when …` (a "
            "template that renders nothing skips an item)",
            "each",
        )
    if kind == "csv" and unlinked(options.get("each", CSV_ROWS_PATH)) != CSV_ROWS_PATH:
        return OptionProblem("a CSV export's items are its rows: write each=rows", "each")
    if "body" in options and options.get("method", "POST").upper() != "POST":
        return OptionProblem("body= is sent with method=POST", "body")
    try:
        credential_refs(options)
    except RefError as error:
        return OptionProblem(str(error), error.part)
    return None


def credential_refs(options: Mapping[str, str]) -> tuple[CredentialRef, ...]:
    """The ``auth=`` and ``header.NAME=`` options as references; `RefError` if they clash."""
    return parse_options((k, v) for k, v in options.items() if is_credential_option(k))


def unlinked(value: str) -> str:
    """A path or name as typed, with Slack's automatic link around it undone."""
    found = _AUTOLINK.match(value.strip())
    if found is None:
        return value.strip()
    return (found[2] or found[1]).strip()


# -- paths ---------------------------------------------------------------------------------


class _Missing:
    """What `value_at` finds where there is nothing (None is a JSON value)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


def parse_path(text: str) -> tuple[str, ...]:
    """``data.leads`` → ("data", "leads"); ``.`` or "" → () (the document itself)."""
    cleaned = unlinked(text)
    return () if cleaned in ("", ".") else tuple(cleaned.split("."))


def value_at(data: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` (numbers index lists), or `MISSING`."""
    current = data
    for step in path:
        if isinstance(current, Mapping) and step in current:
            current = current[step]
        elif isinstance(current, list) and step.lstrip("-").isdigit():
            index = int(step)
            if not -len(current) <= index < len(current):
                return MISSING
            current = current[index]
        else:
            return MISSING
    return current


# -- the request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchPlan:
    """What to ask for, read once from a trigger's kind, URL and options."""

    kind: FetchKind
    url: str
    method: str = "GET"
    body: str | None = None  # a template source
    headers: Mapping[str, str] | None = None
    pages: int = DEFAULT_PAGES
    next_path: tuple[str, ...] | None = None
    cursor_param: str = DEFAULT_CURSOR_PARAM
    paginate: bool = True


def fetch_plan(
    kind: FetchKind, url: str, options: Mapping[str, str], *, paginate: bool
) -> FetchPlan:
    """The request a trigger's options describe (options were checked when saved)."""
    body = options.get("body")
    method = options.get("method", "POST" if body is not None else "GET").upper()
    query = [
        (k[len(_QUERY_PREFIX) :], v) for k, v in options.items() if k.startswith(_QUERY_PREFIX)
    ]
    headers = {"Accept": _ACCEPT[kind]}
    if body is not None:
        headers["Content-Type"] = _content_type(body)
    return FetchPlan(
        kind=kind,
        url=with_query(url, query),
        method=method,
        body=body,
        headers=headers,
        pages=int(options.get("pages", DEFAULT_PAGES)) if paginate else 1,
        next_path=parse_path(options["next"]) if "next" in options else None,
        cursor_param=options.get("cursor", DEFAULT_CURSOR_PARAM),
        paginate=paginate and kind != "http",
    )


def _content_type(body: str) -> str:
    return (
        "application/json"
        if body.lstrip()[:1] in ("{", "[")
        else "application/x-www-form-urlencoded"
    )


def with_query(url: str, params: Iterable[tuple[str, str]]) -> str:
    """``url`` with ``params`` set in its query (a parameter given again replaces it)."""
    added = list(params)
    if not added:
        return url
    parts = urlsplit(url)
    names = {name for name, _ in added}
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in names]
    return urlunsplit(parts._replace(query=urlencode(kept + added)))


def next_link(headers: Mapping[str, str], base_url: str) -> str | None:
    """The target of the ``rel="next"`` link in the Link header(s), made absolute."""
    for value in _header_values(headers, "Link"):
        for match in _LINK.finditer(value):
            for param in _LINK_PARAM.finditer(match[2]):
                name, quoted, plain = param[1], param[2], param[3]
                rels = (quoted if quoted is not None else plain or "").lower().split()
                if name.lower() == "rel" and "next" in rels:
                    return urljoin(base_url, str(match[1]).strip())
    return None


def _header_values(headers: Mapping[str, str], name: str) -> list[str]:
    getall = getattr(headers, "getall", None)
    if callable(getall):
        return [str(value) for value in getall(name, [])]
    return [value for key, value in headers.items() if key.lower() == name.lower()]


# -- reading the answer --------------------------------------------------------------------


def merge_pages(first: Any, more: Any) -> Any:
    """Two pages as one document: lists joined, objects merged key by key, else ``first``."""
    if isinstance(first, list) and isinstance(more, list):
        return first + more
    if isinstance(first, dict) and isinstance(more, dict):
        merged = dict(first)
        for key, value in more.items():
            merged[key] = merge_pages(first[key], value) if key in first else value
        return merged
    return first


def decode_text(body: bytes, headers: Mapping[str, str]) -> str:
    """The body as text (its charset, else UTF-8), without a byte-order mark."""
    if body.startswith(codecs.BOM_UTF8):
        return body[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    return decode_body(body, headers).lstrip("\ufeff")


def parse_csv(text: str, max_rows: int = MAX_ROWS) -> list[dict[str, Any]]:
    """CSV text as rows keyed by the header row's names.

    Quoted fields may hold commas, quotes and line breaks. Names are trimmed; an empty name
    becomes ``column_N`` and a repeated one ``name_2``. A short row leaves its missing
    fields empty; a long row's extra fields are dropped. Blank lines are skipped. A cell
    that is plainly a number (``42``, ``-3.5``; not ``007`` or ``1,234``) becomes one, so
    that ``sum`` and the number filters work on it. Raises `ValueError` for text that is
    not CSV (a NUL, a field over the csv module's size limit).
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return []
        names = _column_names(header)
        rows: list[dict[str, Any]] = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= max_rows:
                break
            cells = (record + [""] * len(names))[: len(names)]
            rows.append({name: _cell(cell) for name, cell in zip(names, cells, strict=True)})
    except csv.Error as error:
        raise ValueError(f"not CSV: {error}") from None
    return rows


def _column_names(header: list[str]) -> list[str]:
    names: list[str] = []
    for position, raw in enumerate(header, start=1):
        base = raw.strip() or f"column_{position}"
        name, count = base, 1
        while name in names:
            count += 1
            name = f"{base}_{count}"
        names.append(name)
    return names


def _cell(text: str) -> Any:
    if not text or text[0] not in _NUMBER_START:
        return text
    if _NUMBER_CELL.fullmatch(text):
        return float(text) if "." in text else int(text)
    return text


# -- fetching the pages --------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request of a fetch."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None


# Sends a request within the seconds given, reading at most the bytes given.
Send = Callable[[Request, float, int], Awaitable[FetchResult]]
# Renders the body template for a page: the cursor (None on the first page) → the body,
# or why it failed.
RenderBody = Callable[[str | None], Awaitable["str | BodyFailed"]]


@dataclass(frozen=True)
class BodyFailed:
    """The body template failed to render."""

    reason: str


@dataclass(frozen=True)
class Fetched:
    """Everything the pages said.

    ``data`` is the merged JSON document (json), the rows (csv), or the parsed body if it
    is JSON (http, else None); ``text`` is an http answer's body as text. ``first`` is the
    first page's answer (status, headers). ``note`` says why reading stopped before the
    last page ("" when it did not).
    """

    first: FetchResult
    data: Any
    text: str
    pages: int
    note: str
    elapsed_ms: float


@dataclass(frozen=True)
class FetchFailed:
    """Why there is nothing to report: one line, as the failure message says it."""

    summary: str
    status: int | None = None
    elapsed_ms: float = 0.0


@dataclass(frozen=True)
class _Page:
    request: Request
    cursor: str | None
    number: int


async def fetch_pages(
    send: Send,
    plan: FetchPlan,
    render_body: RenderBody,
    *,
    timeout: float,  # noqa: ASYNC109
    max_bytes: int,
    clock: Callable[[], float] | None = None,
) -> Fetched | FetchFailed:
    """Read the pages ``plan`` describes, within ``timeout`` seconds and ``max_bytes`` in
    all; expected failures come back as `FetchFailed` (the first page failing, a later one
    failing or not parsing, the body template failing)."""
    loop = asyncio.get_running_loop()
    now = clock or loop.time
    deadline = now() + timeout
    reader = _Reader(plan, max_bytes)
    first = await _first_page(plan, render_body)
    if isinstance(first, FetchFailed):
        return first
    page: _Page | None = first
    while page is not None:
        left = deadline - now()
        if left <= 0:
            return reader.timed_out(timeout, page.number)
        result = await _send(send, page, left, reader.room(), plan)
        if isinstance(result, FetchFailed):
            return result
        failure = await reader.add(page, result)
        if failure is not None:
            return failure
        following = await _next_page(plan, reader, page, result, render_body)
        if isinstance(following, FetchFailed):
            return following
        page = following
    return reader.fetched()


async def _first_page(plan: FetchPlan, render_body: RenderBody) -> _Page | FetchFailed:
    request = await _request(plan, plan.url, None, render_body)
    return request if isinstance(request, FetchFailed) else _Page(request, None, 1)


async def _request(
    plan: FetchPlan, url: str, cursor: str | None, render_body: RenderBody
) -> Request | FetchFailed:
    body: bytes | None = None
    if plan.body is not None:
        rendered = await render_body(cursor)
        if isinstance(rendered, BodyFailed):
            return FetchFailed(f"the body template failed: {rendered.reason}")
        body = rendered.encode()
    return Request(plan.method, url, dict(plan.headers or {}), body)


async def _send(
    send: Send, page: _Page, seconds: float, room: int, plan: FetchPlan
) -> FetchResult | FetchFailed:
    where = _page_note(page.number)
    try:
        result = await send(page.request, seconds, room)
    except (FetchBlocked, FetchError) as error:
        return FetchFailed(f"{_host(page.request.url)} could not be fetched{where}: {error.reason}")
    if not is_success(result.status):
        return FetchFailed(
            f"{_host(page.request.url)} answered {result.status}{where}",
            result.status,
            result.elapsed_ms,
        )
    return result


def _page_note(number: int) -> str:
    return "" if number == 1 else f" (page {number})"


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


async def _next_page(
    plan: FetchPlan, reader: _Reader, page: _Page, result: FetchResult, render_body: RenderBody
) -> _Page | FetchFailed | None:
    if not plan.paginate or reader.stopped:
        return None
    url, cursor = _next_target(plan, reader.last_page, page, result)
    if url is None:
        return None
    if page.number >= plan.pages:
        reader.stop(f"read {page.number} pages (pages={plan.pages}); more were left")
        return None
    if not reader.first_visit(url, cursor):
        return None  # a server pointing back at a page already read
    request = await _request(plan, url, cursor, render_body)
    return request if isinstance(request, FetchFailed) else _Page(request, cursor, page.number + 1)


def _next_target(
    plan: FetchPlan, last_page: Any, page: _Page, result: FetchResult
) -> tuple[str | None, str | None]:
    """The next page's URL and cursor (a cursor is sent again from the plan's URL)."""
    if plan.next_path is None:
        return next_link(result.headers, result.final_url), None
    found = value_at(last_page, plan.next_path)
    if found is MISSING or found is None or found == "" or isinstance(found, bool | dict | list):
        return None, None
    text = str(found)
    if text.startswith(("http://", "https://", "/", "?")):
        return urljoin(result.final_url, text), None
    url = with_query(plan.url, [(plan.cursor_param, text)]) if plan.method == "GET" else plan.url
    return url, text


class _Reader:
    """The pages read so far, and the byte budget left."""

    def __init__(self, plan: FetchPlan, max_bytes: int) -> None:
        self.plan = plan
        self.max_bytes = max_bytes
        self.used = 0
        self.first: FetchResult | None = None
        self.data: Any = None
        self.text = ""
        self.pages = 0
        self.note = ""
        self.stopped = False
        self.last_page: Any = None
        self.elapsed_ms = 0.0
        self.visited: set[tuple[str, str | None]] = {(plan.url, None)}

    def room(self) -> int:
        return max(self.max_bytes - self.used, 1)

    def stop(self, note: str) -> None:
        self.stopped, self.note = True, note

    def first_visit(self, url: str, cursor: str | None) -> bool:
        if (url, cursor) in self.visited:
            return False
        self.visited.add((url, cursor))
        return True

    async def add(self, page: _Page, result: FetchResult) -> FetchFailed | None:
        """Take a page in; a failure when it cannot be read (a later page cut by the byte
        budget just ends the reading)."""
        self.elapsed_ms += result.elapsed_ms
        if result.truncated and page.number > 1:
            self.stop(
                f"read {self.pages} pages: the next one would pass {self.max_bytes:,} bytes in all"
            )
            return None
        if result.truncated and self.plan.kind != "http":
            return FetchFailed(
                f"the answer from {_host(result.final_url)} is larger than {self.max_bytes:,} "
                "bytes (CHECK_MAX_BYTES)",
                result.status,
                self.elapsed_ms,
            )
        parsed = await self._parse(result)
        if isinstance(parsed, FetchFailed):
            return parsed
        self.used += len(result.body)
        self.pages += 1
        self.last_page = parsed
        if self.first is None:
            self.first, self.data = result, parsed
            self.text = decode_text(result.body, result.headers) if self.plan.kind == "http" else ""
        else:
            self.data = (
                self.data + parsed if self.plan.kind == "csv" else merge_pages(self.data, parsed)
            )
        return None

    async def _parse(self, result: FetchResult) -> Any:
        where = _page_note(self.pages + 1)
        if self.plan.kind == "csv":
            text = decode_text(result.body, result.headers)
            try:
                # A megabyte of CSV takes a few hundred ms: not on the event loop.
                return await asyncio.to_thread(parse_csv, text)
            except ValueError as error:
                return FetchFailed(f"the answer{where} is {error}", result.status, self.elapsed_ms)
        try:
            return json.loads(result.body)
        except (ValueError, RecursionError) as error:
            if self.plan.kind == "http":
                return None
            return FetchFailed(
                f"the answer{where} is not JSON ({error})", result.status, self.elapsed_ms
            )

    def timed_out(self, timeout: float, number: int) -> FetchFailed:
        return FetchFailed(
            f"timed out after {timeout:g} s{_page_note(number)}", None, self.elapsed_ms
        )

    def fetched(self) -> Fetched:
        assert self.first is not None
        return Fetched(self.first, self.data, self.text, self.pages, self.note, self.elapsed_ms)
