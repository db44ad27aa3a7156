"""Turn a stream of check observations into the few announcements worth posting.

Everything here is pure: the caller passes the previous `TriggerState`, the new
`Observation` and ``now``, and stores the returned state. Rules:

* The *confirmed* state (``TriggerState.confirmed``) moves ok -> failing after
  ``Policy.retries`` consecutive failures and failing -> ok after ``Policy.recover``
  consecutive passes; the very first pass confirms ok silently.
* Each confirmed change is reported once (``down`` / ``recovered``) and recorded as a
  flip. The change that makes more than ``flap_threshold`` flips within ``flap_window``
  is reported as ``flapping`` instead, and then nothing is reported until the target is
  stable: no flip for a whole ``flap_window`` and the latest runs agree with the
  confirmed state (``recover`` passes when up, ``retries`` failures when down). That
  yields one ``stable`` announcement saying up or down.
* ``status`` is what users have been told: ``confirmed``, or ``flapping``.
* While muted, the state evolves exactly as if unmuted; announcement texts are kept in
  ``muted_changes``. The first run at or after ``muted_until`` first posts one
  ``mute_summary`` and, if the status differs from what users last saw (``announced``),
  one announcement of the current status; then the run itself is evaluated normally, so a
  change seen on that very run is posted too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from bot.slack.blocks import escape_mrkdwn, link
from bot.slack.dates import slack_date
from bot.triggers.observation import FeedItem, Observation

Status = Literal["unknown", "ok", "failing", "flapping"]
Confirmed = Literal["unknown", "ok", "failing"]
AnnouncementKind = Literal[
    "down",
    "still_down",
    "recovered",
    "flapping",
    "stable",
    "new_item",
    "new_items_summary",
    "mute_summary",
]

SEEN_IDS_CAP = 500
"""Feed ids remembered beyond those the feed currently lists."""

MUTED_CHANGES_CAP = 50
"""Announcement lines kept for a mute summary; the oldest are dropped first."""

# Reports that belong in the thread of the incident's first alert.
_FOLLOW_UP_KINDS: frozenset[AnnouncementKind] = frozenset({"still_down", "recovered", "stable"})

_STATUSES: dict[str, Status] = {
    "unknown": "unknown",
    "ok": "ok",
    "failing": "failing",
    "flapping": "flapping",
}
_CONFIRMED: dict[str, Confirmed] = {"unknown": "unknown", "ok": "ok", "failing": "failing"}


class EvaluateError(ValueError):
    """An invalid policy, or a stored trigger state that cannot be read back."""


@dataclass(frozen=True)
class Policy:
    """How eagerly a trigger reports; see the module docstring for the rules."""

    retries: int = 1
    recover: int = 1
    repeat: timedelta | None = None
    max_repeats: int | None = None
    flap_window: timedelta = timedelta(minutes=30)
    flap_threshold: int = 4
    feed_max_posts: int = 10
    feed_latest_on_first_run: int = 0

    def __post_init__(self) -> None:
        if self.retries < 1 or self.recover < 1 or self.flap_threshold < 1:
            raise EvaluateError("retries, recover and flap_threshold must be at least 1")
        if self.repeat is not None and self.repeat <= timedelta(0):
            raise EvaluateError("repeat must be a positive duration")
        if self.flap_window <= timedelta(0):
            raise EvaluateError("flap_window must be a positive duration")
        if min(self.feed_max_posts, self.feed_latest_on_first_run, self.max_repeats or 0) < 0:
            raise EvaluateError(
                "feed_max_posts, feed_latest_on_first_run, max_repeats must be >= 0"
            )


@dataclass(frozen=True)
class TriggerState:
    """Everything a trigger remembers between runs (stored as `to_dict`).

    Beyond the obvious fields: ``confirmed`` is the up/down state even while flapping;
    ``announced`` is the status users last saw (it lags ``status`` only while muted);
    ``last_failure`` is the latest failing summary, for "recovered (was: ...)".
    """

    status: Status = "unknown"
    since: datetime | None = None
    consecutive_failures: int = 0
    consecutive_passes: int = 0
    incident_started: datetime | None = None
    last_reported: datetime | None = None
    repeats_sent: int = 0
    flips: tuple[datetime, ...] = ()
    last_summary: str = ""
    seen_ids: tuple[str, ...] = ()
    feed_initialised: bool = False
    muted_until: datetime | None = None
    muted_changes: tuple[str, ...] = ()
    confirmed: Confirmed = "unknown"
    announced: Status = "unknown"
    last_failure: str = ""

    @classmethod
    def initial(cls) -> TriggerState:
        """The state of a trigger that has never run."""
        return cls()

    def to_dict(self) -> dict[str, object]:
        """A JSON-safe dict (datetimes as ISO 8601 strings); see `state_from_dict`."""
        return {
            "status": self.status,
            "since": _iso(self.since),
            "consecutive_failures": self.consecutive_failures,
            "consecutive_passes": self.consecutive_passes,
            "incident_started": _iso(self.incident_started),
            "last_reported": _iso(self.last_reported),
            "repeats_sent": self.repeats_sent,
            "flips": [t.isoformat() for t in self.flips],
            "last_summary": self.last_summary,
            "seen_ids": list(self.seen_ids),
            "feed_initialised": self.feed_initialised,
            "muted_until": _iso(self.muted_until),
            "muted_changes": list(self.muted_changes),
            "confirmed": self.confirmed,
            "announced": self.announced,
            "last_failure": self.last_failure,
        }


@dataclass(frozen=True)
class Announcement:
    """One message to post. ``follows_up`` ones go in the thread of the incident's alert."""

    kind: AnnouncementKind
    text: str
    item: FeedItem | None = None
    follows_up: bool = False


def decide(
    name: str, state: TriggerState, obs: Observation, now: datetime, policy: Policy
) -> tuple[TriggerState, list[Announcement]]:
    """Evaluate one run of an http or json trigger: the next state and what to post."""
    return _through_mute(name, state, now, policy, lambda s: _check_step(name, s, obs, now, policy))


def decide_feed(
    name: str, state: TriggerState, obs: Observation, now: datetime, policy: Policy
) -> tuple[TriggerState, list[Announcement]]:
    """Evaluate one run of an rss trigger: fetch failures as in `decide`, plus new items."""
    return _through_mute(name, state, now, policy, lambda s: _feed_step(name, s, obs, now, policy))


def mute(state: TriggerState, until: datetime) -> TriggerState:
    """Silence the trigger until ``until``; checks go on and are summarised afterwards.

    Muting again while muted moves the end and keeps what was collected so far.
    """
    return replace(state, muted_until=until)


def state_from_dict(d: Mapping[str, object]) -> TriggerState:
    """Read back `TriggerState.to_dict`; missing keys take their initial values.

    Raises `EvaluateError` for a value of the wrong type or an unknown status.
    """
    return TriggerState(
        status=_pick(_STATUSES, d, "status"),
        since=_opt_time(d, "since"),
        consecutive_failures=_int(d, "consecutive_failures"),
        consecutive_passes=_int(d, "consecutive_passes"),
        incident_started=_opt_time(d, "incident_started"),
        last_reported=_opt_time(d, "last_reported"),
        repeats_sent=_int(d, "repeats_sent"),
        flips=tuple(_time(v, "flips") for v in _list(d, "flips")),
        last_summary=_str(d.get("last_summary", ""), "last_summary"),
        seen_ids=tuple(_str(v, "seen_ids") for v in _list(d, "seen_ids")),
        feed_initialised=_bool(d, "feed_initialised"),
        muted_until=_opt_time(d, "muted_until"),
        muted_changes=tuple(_str(v, "muted_changes") for v in _list(d, "muted_changes")),
        confirmed=_pick(_CONFIRMED, d, "confirmed"),
        announced=_pick(_STATUSES, d, "announced"),
        last_failure=_str(d.get("last_failure", ""), "last_failure"),
    )


def format_duration(delta: timedelta) -> str:
    """Say a duration in words, rounded to the nearest unit shown: ``45 s``, ``12 min``,
    ``2 h 5 min``, ``1 d 3 h``.

    Rounded, not cut: 1 min 59.6 s of downtime is "2 min", because people compare it
    with the two clock times they saw (a failure at 18:45:17, a recovery at 18:47:17).
    """
    seconds = _half_up(max(0.0, delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = _half_up(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 24 * 60:
        return _two_units(minutes // 60, "h", minutes % 60, "min")
    hours = _half_up(minutes / 60)
    return _two_units(hours // 24, "d", hours % 24, "h")


def _half_up(value: float) -> int:
    """``value`` rounded to the nearest whole number, halves up (``round`` rounds to even)."""
    return math.floor(value + 0.5)


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big} {big_unit}" if small == 0 else f"{big} {big_unit} {small} {small_unit}"


# --- mute ---------------------------------------------------------------------------

Step = Callable[[TriggerState], tuple[TriggerState, list[Announcement]]]


def _through_mute(
    name: str, state: TriggerState, now: datetime, policy: Policy, step: Step
) -> tuple[TriggerState, list[Announcement]]:
    unmuted, flushed = _end_mute_if_due(name, state, now, policy)
    stepped, announcements = step(unmuted)
    return _silence_if_muted(stepped, flushed + announcements, now)


def _is_muted(state: TriggerState, now: datetime) -> bool:
    return state.muted_until is not None and now < state.muted_until


def _end_mute_if_due(
    name: str, state: TriggerState, now: datetime, policy: Policy
) -> tuple[TriggerState, list[Announcement]]:
    if state.muted_until is None or _is_muted(state, now):
        return state, []
    summary = _mute_summary(name, state, state.muted_until, now)
    announcements = summary + _catch_up(name, state, now, policy)
    return replace(state, muted_until=None, muted_changes=(), announced=state.status), announcements


def _silence_if_muted(
    state: TriggerState, announcements: list[Announcement], now: datetime
) -> tuple[TriggerState, list[Announcement]]:
    if not _is_muted(state, now):
        return replace(state, announced=state.status), announcements
    # A reminder is not a change; the summary lists only what changed.
    lines = tuple(f"{_clock(now, now)} {r.text}" for r in announcements if r.kind != "still_down")
    kept = (state.muted_changes + lines)[-MUTED_CHANGES_CAP:]
    return replace(state, muted_changes=kept), []


def _mute_summary(
    name: str, state: TriggerState, until: datetime, now: datetime
) -> list[Announcement]:
    if not state.muted_changes:
        return []
    lines = "\n".join(f"• {line}" for line in state.muted_changes)
    text = f":mute: *{name}* while muted (until {_clock(until, now)}):\n{lines}"
    return [_announce_as("mute_summary", text)]


def _catch_up(name: str, state: TriggerState, now: datetime, policy: Policy) -> list[Announcement]:
    """Tell the status users have not seen because it changed while muted."""
    if state.status == state.announced:
        return []
    if state.status == "flapping":
        return [_flapping_report(name, state, policy)]
    if state.announced == "flapping":
        return [_stable_report(name, state)]
    if state.status == "failing":
        return [_down_since_report(name, state, now)]
    if state.announced == "failing":  # and now ok
        text = f":large_green_circle: *{name}* is up again: {_escape(state.last_summary)}"
        return [_announce_as("recovered", text)]
    return []  # unknown -> ok is never announced


def _down_since_report(name: str, state: TriggerState, now: datetime) -> Announcement:
    started = state.incident_started
    since = "" if started is None else f" since {_clock(started, now)}"
    return _announce_as(
        "down", f":red_circle: *{name}* is down{since}: {_escape(state.last_summary)}"
    )


# --- up / down ----------------------------------------------------------------------


def _check_step(
    name: str, state: TriggerState, obs: Observation, now: datetime, policy: Policy
) -> tuple[TriggerState, list[Announcement]]:
    seen = _observe(state, obs, now, policy)
    target = _next_confirmed(seen, policy)
    if target != seen.confirmed:
        return _change(name, seen, target, now, policy)
    if seen.status == "flapping":
        return _leave_flapping_if_stable(name, seen, now, policy)
    return _repeat_if_due(name, seen, now, policy)


def _observe(state: TriggerState, obs: Observation, now: datetime, policy: Policy) -> TriggerState:
    """Count the observation; no decision yet."""
    flips = tuple(t for t in state.flips if now - t < policy.flap_window)
    if obs.ok:
        # A pass ends an unconfirmed failure streak but not a confirmed incident.
        started = state.incident_started if state.confirmed == "failing" else None
        return replace(
            state,
            consecutive_passes=state.consecutive_passes + 1,
            consecutive_failures=0,
            incident_started=started,
            last_summary=obs.summary,
            flips=flips,
        )
    return replace(
        state,
        consecutive_failures=state.consecutive_failures + 1,
        consecutive_passes=0,
        incident_started=now if state.incident_started is None else state.incident_started,
        last_summary=obs.summary,
        last_failure=obs.summary,
        flips=flips,
    )


def _next_confirmed(state: TriggerState, policy: Policy) -> Confirmed:
    if state.confirmed != "failing" and state.consecutive_failures >= policy.retries:
        return "failing"
    if state.confirmed == "failing" and state.consecutive_passes >= policy.recover:
        return "ok"
    if state.confirmed == "unknown" and state.consecutive_passes > 0:
        return "ok"
    return state.confirmed


def _change(
    name: str, state: TriggerState, target: Confirmed, now: datetime, policy: Policy
) -> tuple[TriggerState, list[Announcement]]:
    """Apply a confirmed change: announce it, or start flapping, or stay silent (flapping)."""
    flips = state.flips if state.confirmed == "unknown" else (*state.flips, now)
    started = None if target == "ok" else state.incident_started
    moved = replace(state, confirmed=target, flips=flips, incident_started=started)
    if state.status == "flapping":
        return moved, []
    if len(flips) > policy.flap_threshold:
        return _reported(moved, "flapping", now), [_flapping_report(name, moved, policy)]
    return _announce(name, state, moved, now)


def _announce(
    name: str, before: TriggerState, after: TriggerState, now: datetime
) -> tuple[TriggerState, list[Announcement]]:
    if after.confirmed == "failing":
        text = f":red_circle: *{name}* is down: {_escape(after.last_summary)}"
        return _reported(after, "failing", now), [_announce_as("down", text)]
    if before.confirmed == "unknown":
        return replace(after, status="ok", since=now), []
    downtime = format_duration(now - (before.incident_started or now))
    text = (
        f":large_green_circle: *{name}* recovered after {downtime}"
        f" (was: {_escape(before.last_failure)})"
    )
    return _reported(after, "ok", now), [_announce_as("recovered", text)]


def _reported(state: TriggerState, status: Status, now: datetime) -> TriggerState:
    """The state after announcing a new status: a fresh repeat budget."""
    return replace(state, status=status, since=now, last_reported=now, repeats_sent=0)


def _leave_flapping_if_stable(
    name: str, state: TriggerState, now: datetime, policy: Policy
) -> tuple[TriggerState, list[Announcement]]:
    if state.flips or not _agrees_with_confirmed(state, policy):
        return state, []
    settled = _reported(state, state.confirmed, now)
    return settled, [_stable_report(name, settled)]


def _agrees_with_confirmed(state: TriggerState, policy: Policy) -> bool:
    if state.confirmed == "ok":
        return state.consecutive_passes >= policy.recover
    return state.consecutive_failures >= policy.retries


def _repeat_if_due(
    name: str, state: TriggerState, now: datetime, policy: Policy
) -> tuple[TriggerState, list[Announcement]]:
    if not _repeat_due(state, now, policy):
        return state, []
    downtime = format_duration(now - (state.incident_started or now))
    text = f":red_circle: *{name}* is still down after {downtime}: {_escape(state.last_summary)}"
    repeated = replace(state, last_reported=now, repeats_sent=state.repeats_sent + 1)
    return repeated, [_announce_as("still_down", text)]


def _repeat_due(state: TriggerState, now: datetime, policy: Policy) -> bool:
    if state.status != "failing" or state.consecutive_failures == 0:
        return False
    if policy.repeat is None or state.last_reported is None:
        return False
    if policy.max_repeats is not None and state.repeats_sent >= policy.max_repeats:
        return False
    return now - state.last_reported >= policy.repeat


def _flapping_report(name: str, state: TriggerState, policy: Policy) -> Announcement:
    text = (
        f":warning: *{name}* is flapping: {len(state.flips)} changes in"
        f" {format_duration(policy.flap_window)}; I'll report again once it is stable"
    )
    return _announce_as("flapping", text)


def _stable_report(name: str, state: TriggerState) -> Announcement:
    if state.confirmed == "failing":
        text = f":red_circle: *{name}* is stable again, and down: {_escape(state.last_summary)}"
    else:
        text = (
            f":large_green_circle: *{name}* is stable again, and up: {_escape(state.last_summary)}"
        )
    return _announce_as("stable", text)


# --- feeds --------------------------------------------------------------------------


def _feed_step(
    name: str, state: TriggerState, obs: Observation, now: datetime, policy: Policy
) -> tuple[TriggerState, list[Announcement]]:
    checked, announcements = _check_step(name, state, obs, now, policy)
    if not obs.ok:
        return checked, announcements
    posts, more = _items_to_post(checked, obs.items, policy)
    remembered = replace(
        checked, seen_ids=_remember(checked.seen_ids, obs.items), feed_initialised=True
    )
    return remembered, announcements + [_item_announcement(name, i) for i in posts] + _more(
        name, more
    )


def _items_to_post(
    state: TriggerState, items: Sequence[FeedItem], policy: Policy
) -> tuple[list[FeedItem], int]:
    """The items to post, oldest first, and how many other new items go unposted.

    When there are too many, the newest are posted: they are the ones still relevant.
    """
    if not state.feed_initialised:
        latest = min(policy.feed_latest_on_first_run, policy.feed_max_posts)
        return list(reversed(items[:latest])), 0
    fresh = _unseen(items, state.seen_ids)
    shown = fresh[: policy.feed_max_posts]
    return list(reversed(shown)), len(fresh) - len(shown)


def _unseen(items: Iterable[FeedItem], seen_ids: Iterable[str]) -> list[FeedItem]:
    """New items, newest first, each id once."""
    known = set(seen_ids)
    fresh: list[FeedItem] = []
    for item in items:
        if item.id not in known:
            known.add(item.id)
            fresh.append(item)
    return fresh


def _remember(seen_ids: tuple[str, ...], items: Sequence[FeedItem]) -> tuple[str, ...]:
    """Current ids first, then older ones; never forget an id the feed still lists."""
    ids = list(dict.fromkeys([i.id for i in items] + list(seen_ids)))
    current = len({i.id for i in items})
    return tuple(ids[: max(SEEN_IDS_CAP, current)])


def _item_announcement(name: str, item: FeedItem) -> Announcement:
    title = item.title or item.link or item.id
    # `link` makes only http(s) links: a feed's javascript: link stays plain text.
    shown = link(item.link, title) if item.link else _escape(title)
    return _announce_as("new_item", f":newspaper: *{name}*: {shown}", item)


def _more(name: str, count: int) -> list[Announcement]:
    if count == 0:
        return []
    return [_announce_as("new_items_summary", f"…and {count} more new items in *{name}*")]


# --- small helpers ------------------------------------------------------------------


def _announce_as(kind: AnnouncementKind, text: str, item: FeedItem | None = None) -> Announcement:
    return Announcement(kind=kind, text=text, item=item, follows_up=kind in _FOLLOW_UP_KINDS)


# Text we did not write (a response body, a feed title) must not ping or link: no <!channel>.
_escape = escape_mrkdwn


def _clock(when: datetime, now: datetime) -> str:
    """A time in a channel message: each reader sees it in their own zone (Slack's date
    token), with the date when it is not recent; the fallback says UTC."""
    return slack_date(when, now)


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.isoformat()


def _time(value: object, key: str) -> datetime:
    if not isinstance(value, str):
        raise EvaluateError(f"{key}: expected an ISO 8601 string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise EvaluateError(f"{key}: not an ISO 8601 time: {value!r}") from exc
    if parsed.tzinfo is None:
        raise EvaluateError(f"{key}: time has no time zone: {value!r}")
    return parsed


def _opt_time(d: Mapping[str, object], key: str) -> datetime | None:
    value = d.get(key)
    return None if value is None else _time(value, key)


def _int(d: Mapping[str, object], key: str) -> int:
    value = d.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int):
        raise EvaluateError(f"{key}: expected an integer, got {type(value).__name__}")
    return value


def _bool(d: Mapping[str, object], key: str) -> bool:
    value = d.get(key, False)
    if not isinstance(value, bool):
        raise EvaluateError(f"{key}: expected true or false, got {type(value).__name__}")
    return value


def _str(value: object, key: str) -> str:
    if not isinstance(value, str):
        raise EvaluateError(f"{key}: expected a string, got {type(value).__name__}")
    return value


def _list(d: Mapping[str, object], key: str) -> list[object]:
    value = d.get(key, [])
    if not isinstance(value, list):
        raise EvaluateError(f"{key}: expected a list, got {type(value).__name__}")
    return value


_T = TypeVar("_T")


def _pick(choices: Mapping[str, _T], d: Mapping[str, object], key: str) -> _T:
    value = d.get(key, "unknown")
    if not isinstance(value, str) or value not in choices:
        raise EvaluateError(f"{key}: unknown value {value!r}")
    return choices[value]
