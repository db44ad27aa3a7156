"""Reports from data, decided: what a json, csv or http trigger posts from what it fetched
(`bot.triggers.fetching`) and what it remembers. Everything here is pure (``now`` is passed
in); `bot.triggers.reports` does the fetching, the rendering in user-code workers and the
saving.

A trigger that fetches is in one of three modes (`mode_of`):

* ``report``: it has a template (``/trigger template``) and posts it on every run, with
  the data in scope (`report_context`), ``previous`` being the data of the last
  successful run (`ReportMemory`). A failed fetch posts `failure_text` instead, once per
  incident, and the report is retried sooner (`retry_time`).
* ``scan``: ``each=PATH key=FIELD``: the items at PATH are told apart by their key
  (`scan_list`), and each new one is posted once (`decide_scan`, `scan_posts`): the
  first run records what is there, `MAX_POSTS` new items at most are posted one by one,
  more are listed in one message.
* ``check``: neither; it alerts on problems only, as http and json checks always have.

(The ``report`` *kind*, a digest of webhooks and triggers, is `bot.triggers.digest`.)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

from bot.expressions import HISTORY_KEY, MAX_HISTORY, history_paths
from bot.formatting import BLOCKS_TEXT_MAX, fit_report, split_report
from bot.models import Trigger
from bot.outbox import Message
from bot.slack.blocks import escape_mrkdwn, link, section
from bot.slack.dates import slack_date
from bot.slack.text import unescape
from bot.triggers.fetching import (
    FETCH_KINDS,
    MISSING,
    SCAN_KINDS,
    Fetched,
    option_check,
    parse_path,
    value_at,
)
from bot.triggers.messages import source_of

Mode = Literal["check", "report", "scan"]

MAX_POSTS: Final = 10
"""New items posted one by one in a run; more are listed in one message."""
MAX_SCAN_ITEMS: Final = 10_000
"""Items of one run told apart; the rest of a longer list is left for the summary."""
MAX_KEY_CHARS: Final = 200
MAX_PREVIOUS_CHARS: Final = 256_000
"""The largest data kept as ``previous`` (as JSON); beyond, the next run has none."""
MAX_BODY_CHARS: Final = 100_000
MAX_HISTORY_PATHS: Final = 10
"""Paths a template may chart with ``history(…)``; more are not remembered."""
MAX_HISTORY_TEXT: Final = 100
REPORT_MAX_CHARS: Final = 100_000
"""The longest a rendered report may be before it is cut for Slack (longer fails)."""
REPORT_RETRIES: Final = 3
RETRY_DELAY: Final = timedelta(minutes=5)
REFRESH_AFTER: Final = timedelta(days=1)
"""A seen key still listed is marked as seen again at most this often."""
_LABEL_FIELDS: Final = ("title", "name", "subject", "summary", "email")
_LINK_FIELDS: Final = ("url", "html_url", "link", "permalink")
_SLACK_LINK = re.compile(r"<((?:https?|mailto):[^|>\s]*)(?:\|([^>]*))?>", re.IGNORECASE)
_TEMPLATE_CODE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_STRAIGHT_QUOTES: Final = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"'})


# -- modes -----------------------------------------------------------------------------------


def mode_of(kind: str, template: str | None, options: Mapping[str, str]) -> Mode:
    """What a fetching trigger does on each run (see the module docstring)."""
    if kind in SCAN_KINDS and "each" in options:
        return "scan"
    return "report" if template else "check"


def handles(
    kind: str, condition: str | None, template: str | None, options: Mapping[str, str]
) -> bool:
    """Whether a trigger runs through `bot.triggers.reports` (csv, a template, ``each=``,
    a json check without a condition, or any request option) rather than the plain checks."""
    if kind not in FETCH_KINDS:
        return False
    if kind == "csv" or template or (kind == "json" and condition is None):
        return True
    return any(key != "latest" and option_check(key, kind) is not None for key in options)


def source_text(kind: str, url: str | None, options: Mapping[str, str]) -> str:
    """What a trigger's memory is about: when this changes, what it remembers is dropped."""
    return f"{kind} {url or ''} each={options.get('each', '')} key={options.get('key', '')}"


# -- memory ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportMemory:
    """What a report or scan remembers between runs (the trigger's ``report_state``).

    ``previous`` is the data of the last successful report run (None when there was none,
    or it was larger than `MAX_PREVIOUS_CHARS`); ``scanned`` is true once a scan has
    recorded a first list; ``retries`` counts the retries of a failing report so far.
    """

    source: str
    scanned: bool = False
    previous: Any = None
    previous_at: str | None = None
    retries: int = 0
    # The values at the paths the template charts (``history('json.total', 14)``), one
    # per successful run, oldest first, at most `MAX_HISTORY` each.
    history: Mapping[str, Sequence[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON document; read back with `memory_of`."""
        return {
            "source": self.source,
            "scanned": self.scanned,
            "previous": self.previous,
            "previous_at": self.previous_at,
            "retries": self.retries,
            "history": {path: list(values) for path, values in self.history.items()},
        }


def memory_of(stored: Mapping[str, Any] | None, source: str) -> ReportMemory:
    """The memory stored for ``source``; a fresh one when it was about something else."""
    if not stored or stored.get("source") != source:
        return ReportMemory(source)
    retries = stored.get("retries")
    previous_at = stored.get("previous_at")
    return ReportMemory(
        source=source,
        scanned=stored.get("scanned") is True,
        previous=stored.get("previous"),
        previous_at=previous_at if isinstance(previous_at, str) else None,
        retries=retries if isinstance(retries, int) and not isinstance(retries, bool) else 0,
        history=_history_of(stored.get("history")),
    )


def _history_of(stored: object) -> dict[str, list[Any]]:
    if not isinstance(stored, Mapping):
        return {}
    return {
        path: list(values)[-MAX_HISTORY:]
        for path, values in stored.items()
        if isinstance(path, str) and isinstance(values, list)
    }


def with_history(memory: ReportMemory, template: str, context: Mapping[str, Any]) -> ReportMemory:
    """``memory`` with this run's values at the paths ``template`` charts added (paths it
    no longer charts are dropped). A path charted for the first time starts from the
    ``previous`` run's data when there is one."""
    series: dict[str, list[Any]] = {}
    for path in history_paths(template)[:MAX_HISTORY_PATHS]:
        steps = parse_path(path)
        known = list(memory.history.get(path, ()))
        if path not in memory.history and steps[:1] == (_data_name(context),):
            before = value_at({steps[0]: memory.previous}, steps)
            known = [] if memory.previous is None else [_charted(before)]
        series[path] = [*known, _charted(value_at(context, steps))][-MAX_HISTORY:]
    return replace(memory, history=series)


def history_context(memory: ReportMemory) -> dict[str, Any]:
    """What `history` reads in a template: the remembered values, this run's included."""
    return {HISTORY_KEY: {path: list(values) for path, values in memory.history.items()}}


def _data_name(context: Mapping[str, Any]) -> str:
    return "rows" if "rows" in context else "json"


def _charted(value: Any) -> Any:
    """A value worth keeping for a chart: numbers, short text, true/false; else None."""
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, str) and len(value) <= MAX_HISTORY_TEXT:
        return value
    return None


def remembered(data: Any) -> Any:
    """``data`` if it is small enough to keep as the next run's ``previous``, else None."""
    try:
        size = len(json.dumps(data, ensure_ascii=False, default=str))
    except (TypeError, ValueError, RecursionError):
        return None
    return data if size <= MAX_PREVIOUS_CHARS else None


# -- what templates see ----------------------------------------------------------------------


def trigger_scope(trigger: Trigger) -> dict[str, Any]:
    """``trigger`` in a template: its name, kind, URL and channel."""
    return {
        "name": trigger.name,
        "kind": trigger.kind,
        "url": trigger.target,
        "channel": trigger.channel_id,
    }


def report_context(
    trigger: Mapping[str, Any], fetched: Fetched, previous: Any, now: datetime, zone: ZoneInfo
) -> dict[str, Any]:
    """What a report template sees: ``json`` (json, and http when the body is JSON) or
    ``rows`` (csv), ``body`` (http), ``status``, ``headers`` (lower-case names), ``pages``,
    ``previous``, ``trigger``, ``now`` (in the trigger's zone) and ``zone`` (its name,
    which the ``date`` filter uses)."""
    context = {
        **_run_scope(trigger, now, zone),
        "status": fetched.first.status,
        "headers": flat_headers(fetched.first.headers),
        "pages": fetched.pages,
        "previous": previous,
    }
    kind = trigger.get("kind")
    if kind == "csv":
        context["rows"] = fetched.data
    else:
        context["json"] = fetched.data
        context["data"] = fetched.data
    if kind == "http":
        context["body"] = fetched.text[:MAX_BODY_CHARS]
    return context


def item_context(
    trigger: Mapping[str, Any], item: ScanItem, now: datetime, zone: ZoneInfo
) -> dict[str, Any]:
    """What an item template sees: ``item``, ``key``, ``trigger``, ``now`` and ``zone``."""
    return {**_run_scope(trigger, now, zone), "item": item.value, "key": item.key}


def body_context(
    trigger: Mapping[str, Any], cursor: str | None, now: datetime, zone: ZoneInfo
) -> dict[str, Any]:
    """What a ``body=`` template sees: ``cursor`` (None on the first page), ``trigger``,
    ``now`` and ``zone``."""
    return {**_run_scope(trigger, now, zone), "cursor": cursor}


def _run_scope(trigger: Mapping[str, Any], now: datetime, zone: ZoneInfo) -> dict[str, Any]:
    return {"trigger": dict(trigger), "now": now.astimezone(zone).isoformat(), "zone": zone.key}


def flat_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Response headers by lower-case name; a repeated header's values joined by ", "."""
    flat: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        flat[key] = f"{flat[key]}, {value}" if key in flat else value
    return flat


def body_text(rendered: str) -> str:
    """A rendered ``body=`` template as sent: values were escaped for Slack, and a request
    body is not Slack text."""
    return unescape(rendered)


# -- scans -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanItem:
    """One item of a scanned list and the key that tells it apart."""

    key: str
    value: Any


@dataclass(frozen=True)
class ScanList:
    """The items of one run, in the order listed, each key once."""

    items: tuple[ScanItem, ...]
    without_key: int = 0
    left_out: int = 0


def scan_list(data: Any, each: str, key: str, *, limit: int = MAX_SCAN_ITEMS) -> ScanList | str:
    """The items at ``each`` (a path; ``.`` for the data itself, as CSV rows are) keyed by
    ``key`` (a path in each item); or why there is no list there."""
    found = value_at(data, parse_path(each))
    if found is MISSING:
        return f"nothing at each={each}"
    if not isinstance(found, list):
        return f"each={each} is {_json_type(found)}, not a list"
    items: dict[str, ScanItem] = {}
    without_key = 0
    key_path = parse_path(key)
    for position, value in enumerate(found):
        if len(items) >= limit:
            return ScanList(tuple(items.values()), without_key, len(found) - position)
        item_key = key_text(value_at(value, key_path))
        if item_key is None:
            without_key += 1
        elif item_key not in items:
            items[item_key] = ScanItem(item_key, value)
    return ScanList(tuple(items.values()), without_key)


def key_text(value: Any) -> str | None:
    """A key as stored: text as it is, numbers as JSON writes them, anything else as JSON;
    longer than `MAX_KEY_CHARS` as its SHA-256. None (or nothing) is no key."""
    if value is MISSING or value is None or value == "":
        return None
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    if len(text) > MAX_KEY_CHARS:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    return text


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "text" if isinstance(value, str) else "null"


@dataclass(frozen=True)
class ScanDecision:
    """What one run of a scan does.

    ``record``: keys to remember (every item not seen before). ``new``: the items to
    announce, in the order listed (on a first run, only the `latest` first ones); this is
    where ``then=ACTION on=item`` takes its items from. ``shown``: the new items to render
    (at most `MAX_POSTS`); ``as_list``: there are more new items than that, so they go
    in one message. ``refresh``: keys still listed whose mark is older than
    `REFRESH_AFTER`.
    """

    record: tuple[str, ...]
    new: tuple[ScanItem, ...]
    shown: tuple[ScanItem, ...]
    as_list: bool
    refresh: tuple[str, ...]
    first_run: bool


def decide_scan(
    items: Sequence[ScanItem],
    seen: Mapping[str, datetime],
    *,
    scanned: bool,
    latest: int,
    now: datetime,
    max_posts: int = MAX_POSTS,
) -> ScanDecision:
    """Which of ``items`` are new (not in ``seen``, which maps keys to when they were last
    marked), and what to post. The first run (``scanned`` false) records every item and
    announces only the first ``latest``."""
    unseen = tuple(item for item in items if item.key not in seen)
    new = unseen if scanned else tuple(items[: min(latest, max_posts)])
    refresh = tuple(
        item.key for item in items if item.key in seen and now - seen[item.key] >= REFRESH_AFTER
    )
    return ScanDecision(
        record=tuple(item.key for item in unseen),
        new=new,
        shown=new[:max_posts],
        as_list=len(new) > max_posts,
        refresh=refresh,
        first_run=not scanned,
    )


def scan_posts(
    name: str,
    rendered: Sequence[tuple[str, str]],
    new_keys: Sequence[str],
    recorded: Collection[str],
    *,
    max_posts: int = MAX_POSTS,
) -> list[str]:
    """The messages of a scan's run: each new item's text, or, past ``max_posts``, one
    message listing the texts and counting the rest ("…and 30 more").

    Only items this run recorded (``recorded``: another run of the same trigger, on
    another replica, may have posted some first) are posted; ``rendered`` holds
    ``(key, text)`` of the items shown, in order; a blank text is an item the template
    chose to skip."""
    posted = [key for key in new_keys if key in recorded]
    texts = [text for key, text in rendered if key in recorded and text.strip()]
    shown = sum(1 for key, _ in rendered if key in recorded)
    hidden = len(posted) - shown
    if len(posted) <= max_posts and hidden == 0:
        return texts
    lines = [
        f":inbox_tray: *{escape_mrkdwn(name)}*: {len(posted):,} new items",
        *(f"• {t}" for t in texts),
    ]
    if hidden > 0:
        lines.append(f"…and {hidden:,} more")
    return ["\n".join(lines)]


def default_item_text(name: str, item: ScanItem) -> str:
    """How an item is posted without a template: its title or name (linked to its URL when
    it has one), else its key."""
    value = item.value if isinstance(item.value, Mapping) else {}
    label = next((str(value[f]) for f in _LABEL_FIELDS if _is_text(value.get(f))), "")
    url = next((str(value[f]) for f in _LINK_FIELDS if _is_text(value.get(f))), "")
    shown = link(url, label or item.key) if url else escape_mrkdwn(label or item.key)
    return f":new: *{escape_mrkdwn(name)}*: {shown}"


def failed_item_text(name: str, item: ScanItem, reason: str) -> str:
    """An item whose template failed: the default text, and why (it is still posted)."""
    return (
        f"{default_item_text(name, item)}\n:warning: the template failed: {escape_mrkdwn(reason)}"
    )


def _is_text(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool) and str(value) != ""


# -- failures and retries -----------------------------------------------------------------


def retry_time(
    *, retries_made: int, retries: int, now: datetime, next_scheduled: datetime | None
) -> datetime | None:
    """When a failed report is tried again: `RETRY_DELAY` from now, while fewer than
    ``retries`` retries were made and the next scheduled run is later than that; else None."""
    if retries_made >= retries:
        return None
    at = now + RETRY_DELAY
    return at if next_scheduled is None or at < next_scheduled else None


def failure_text(
    name: str,
    summary: str,
    *,
    failed_at: datetime,
    now: datetime,
    retry_at: datetime | None,
    retries: int,
    next_run: datetime | None,
) -> str:
    """``*sales* report: shop.example.com answered 503 at 09:00; retrying at 09:05
    (retries=3)``. Times are Slack date tokens: each reader sees their own zone."""
    if retry_at is not None:
        then = f"retrying at {slack_date(retry_at, now)} (retries={retries})"
    elif next_run is not None:
        then = f"next run {slack_date(next_run, now)}"
    else:
        then = "no further run is scheduled"
    return (
        f":red_circle: *{escape_mrkdwn(name)}* report: {escape_mrkdwn(summary)} at "
        f"{slack_date(failed_at, now)}; {then}"
    )


# -- messages ----------------------------------------------------------------------------------


def report_message(trigger: Trigger, text: str) -> Message:
    """A rendered report (or item) as a message: sections within Slack's limits, and a
    visible "(cut: N more lines)" where it was too long, never a message Slack refuses."""
    text = text.rstrip()  # a template's loop leaves a last line break: no "more line"
    sections = split_report(text)
    return Message(
        trigger.channel_id,
        fit_report(text, BLOCKS_TEXT_MAX),
        blocks=[section(piece) for piece in sections],
        source=source_of(trigger),
    )


# -- templates typed in Slack ----------------------------------------------------------------


def template_from_slack(raw: str) -> str:
    """A template as the person typed it, from Slack's escaped command text: Slack's
    automatic links undone (``item.email`` and ``json.date`` look like domains to Slack),
    ``&amp;``/``&lt;``/``&gt;`` decoded, and curly quotes inside ``{{ }}`` and ``{% %}``
    made straight (Slack clients curl them; Jinja needs straight ones)."""
    unlinked = _SLACK_LINK.sub(lambda found: found[2] or found[1], raw)
    text = unescape(unlinked).strip()
    return _TEMPLATE_CODE.sub(lambda code: code[0].translate(_STRAIGHT_QUOTES), text)
