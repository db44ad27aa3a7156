"""Changing things by talking: "pause the standup reminder", "make the site check every
10 minutes", "move the blog feed to #news", "what's failing?".

`read_change` reads what is asked of an existing hook or trigger (or a question about
them); `match` finds which of the person's things the words name, by name or by what it
watches (its kind, its address, its message), and "it" means the one just discussed. Both
are pure: the conversation looks the things up, checks who may change them, and asks
**Apply / Cancel** before the service changes anything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

ChangeVerb = Literal[
    "pause", "resume", "delete", "mute", "reschedule", "move", "run", "show", "list", "failing"
]
VERBS: Final[tuple[ChangeVerb, ...]] = (
    "pause", "resume", "delete", "mute", "reschedule", "move", "run", "show", "list", "failing"
)  # fmt: skip
IT: Final = "it"

# Verbs that only ever mean a change: a subject that matches nothing is answered, not
# read as a request to set something new up.
_STRONG: Final[frozenset[ChangeVerb]] = frozenset(
    {"pause", "resume", "delete", "mute", "show", "list", "failing"}
)
_FLAGS: Final = re.IGNORECASE
_LONGEST: Final = 200
_THINGS: Final = (
    r"(?:triggers?|checks?|hooks?|webhooks?|reminders?|feeds?|reports?|things|automations|alerts)"
)
_LIST: Final = (
    re.compile(
        rf"^(?:what|which)\s+(?:{_THINGS}\s+)?(?:do\s+(?:i|we)\s+have|have\s+(?:i|we)\s+(?:got|set\s+up))\b",
        _FLAGS,
    ),
    re.compile(
        rf"^(?:what|which)\s+{_THINGS}\s+(?:are\s+there|exist|are\s+set\s+up|are\s+running)\b",
        _FLAGS,
    ),
    re.compile(rf"^(?:list|show)(?:\s+me)?\s+(?:my|all(?:\s+my)?|our|the)\s+{_THINGS}$", _FLAGS),
    re.compile(rf"^(?:list|show)(?:\s+me)?\s+{_THINGS}$", _FLAGS),
    re.compile(rf"^my\s+{_THINGS}$", _FLAGS),
)
_FAILING: Final = re.compile(
    r"^(?:what(?:'s|’s| is| are)?|which\s+(?:ones?|checks?|triggers?)\s+(?:are|is)|is\s+anything|"
    r"anything|are\s+any\s+(?:checks?|triggers?))\s+(?:currently\s+|still\s+)?"
    r"(?:failing|down|broken|red|erroring|wrong|not\s+working)\b",
    _FLAGS,
)
_PATTERNS: Final[tuple[tuple[ChangeVerb, re.Pattern[str]], ...]] = (
    (
        "mute",
        re.compile(
            r"^(?:mute|snooze|silence|quiet)\s+(?P<subject>.+?)"
            r"(?:\s+(?:for\s+(?P<span>.+)|(?P<until>until\s+.+)))?$",
            _FLAGS,
        ),
    ),
    (
        "run",
        re.compile(
            r"^(?:run|check|test|try|trigger)\s+(?P<subject>.+?)\s+(?:right\s+)?(?:now|again)$",
            _FLAGS,
        ),
    ),
    (
        "reschedule",
        re.compile(
            r"^(?:make|change|set|switch|update|have|move|run|check)\s+(?P<subject>.+?)\s+"
            r"(?:to\s+)?(?:run\s+|check\s+|go\s+off\s+|post\s+)?(?:to\s+)?"
            r"(?P<schedule>(?:every|each|hourly|daily|weekly|monthly|nightly|twice|cron)\b.*)$",
            _FLAGS,
        ),
    ),
    (
        "move",
        re.compile(
            r"^(?:move|send|post|switch|redirect|put)\s+(?P<subject>.+?)\s+(?:over\s+)?"
            r"(?:to|into|in)\s+(?P<channel><#[A-Z0-9]+(?:\|[^>]*)?>|#[\w-]+)(?:\s+instead)?$",
            _FLAGS,
        ),
    ),
    (
        "pause",
        re.compile(
            r"^(?:pause|suspend|disable|stop|turn\s+off|switch\s+off|hold)\s+(?P<subject>.+)$",
            _FLAGS,
        ),
    ),
    (
        "resume",
        re.compile(
            r"^(?:resume|unpause|restart|re-?enable|enable|turn\s+on|switch\s+on|start|"
            r"reactivate|continue)\s+(?P<subject>.+?)(?:\s+again)?$",
            _FLAGS,
        ),
    ),
    (
        "delete",
        re.compile(
            r"^(?:delete|remove|drop|get\s+rid\s+of|kill|trash|bin)\s+(?P<subject>.+)$", _FLAGS
        ),
    ),
    (
        "show",
        re.compile(
            r"^(?:show(?:\s+me)?|how\s+is|how's|how’s|what's\s+up\s+with|status\s+of|"
            r"tell\s+me\s+about|details\s+(?:of|for)|what\s+about)\s+(?P<subject>.+?)"
            r"(?:\s+doing)?$",
            _FLAGS,
        ),
    ),
)
_DETERMINERS: Final = frozenset({"the", "my", "our", "this", "that", "a", "an", "your"})
_DESCRIPTORS: Final = frozenset({"old", "new", "current", "existing", "one", "please"})
_PRONOUNS: Final = frozenset({"it", "that", "this", "them", "that one", "this one", "it again"})
_KIND_WORDS: Final[dict[str, frozenset[str]]] = {
    "reminder": frozenset({"message"}),
    "reminders": frozenset({"message"}),
    "message": frozenset({"message"}),
    "check": frozenset({"http", "json", "csv"}),
    "monitor": frozenset({"http", "json", "csv"}),
    "feed": frozenset({"rss"}),
    "rss": frozenset({"rss"}),
    "report": frozenset({"report", "json", "csv", "http"}),
    "digest": frozenset({"report"}),
    "hook": frozenset({"hook"}),
    "webhook": frozenset({"hook"}),
    "mailbox": frozenset({"email"}),
    "inbox": frozenset({"email"}),
    "email": frozenset({"email"}),
    "trigger": frozenset(),
}


@dataclass(frozen=True)
class ChangeRequest:
    """What is asked of an existing thing.

    ``subject`` is the words naming it, lower-case, determiners and kind words taken out
    ("standup" for "the standup reminder"), or `IT`; ``kinds`` narrows it (``message``
    for "reminder"; empty: any). ``schedule``, ``channel`` and ``span`` are the new
    schedule, channel (as Slack sent it) and mute span ("2 hours", "until 18:00").
    """

    verb: ChangeVerb
    subject: str = ""
    said: str = ""  # the subject as the person wrote it, for answers
    kinds: frozenset[str] = frozenset()
    schedule: str | None = None
    channel: str | None = None
    span: str | None = None

    @property
    def strong(self) -> bool:
        """True when the verb only ever means a change (not "post … to #x", "run … every")."""
        return self.verb in _STRONG


@dataclass(frozen=True)
class Candidate:
    """One of the person's things, as the matcher sees it."""

    thing: Literal["trigger", "hook"]
    id: int
    name: str
    kind: str  # the trigger's kind, or "hook"
    described: str  # its address or message text, and its preset: words it may be called by


def verb_of(text: str) -> ChangeVerb | None:
    """The verb named ``text``, or None."""
    return next((verb for verb in VERBS if verb == text), None)


def read_change(message: str) -> ChangeRequest | None:
    """What ``message`` (filler already stripped) asks of an existing thing, or None."""
    if len(message) > _LONGEST:
        return None  # a change is said in a few words; a long message sets something up
    text = " ".join(message.split()).rstrip("?!. ")
    if any(pattern.search(text) for pattern in _LIST):
        return ChangeRequest("list")
    if _FAILING.search(text):
        return ChangeRequest("failing")
    for verb, pattern in _PATTERNS:
        found = pattern.match(text)
        if found is None:
            continue
        groups = found.groupdict()
        if "<" in groups["subject"] or "://" in groups["subject"]:
            return None  # an address (a link, a mail address): something new is set up
        if groups["subject"][:1] in "\"“'" and verb not in _STRONG:
            return None  # post "Lunch!" in #general: the words of a new message
        subject, kinds = subject_of(groups["subject"])
        if not subject and not kinds:
            continue
        span = groups.get("span") or groups.get("until")
        return ChangeRequest(
            verb,
            subject,
            groups["subject"].strip(),
            kinds,
            schedule=groups.get("schedule"),
            channel=groups.get("channel"),
            span=span.strip() if span else None,
        )
    return None


def subject_of(said: str) -> tuple[str, frozenset[str]]:
    """The naming words of ``said`` and the kinds its kind word allows."""
    lowered = said.lower().strip()
    if lowered in _PRONOUNS:
        return IT, frozenset()
    words = [w.strip(",.;:'\"“”") for w in lowered.split()]
    kinds: frozenset[str] = frozenset()
    kept: list[str] = []
    for word in words:
        singular = (
            word.removesuffix("s") if word.endswith("s") and word[:-1] in _KIND_WORDS else word
        )
        if singular in _KIND_WORDS:
            kinds = _KIND_WORDS[singular]
        elif word and word not in _DETERMINERS and word not in _DESCRIPTORS:
            kept.append(word)
    if kept in (["it"], ["that"], ["this"]):
        return IT, kinds
    return " ".join(kept), kinds


def match(request: ChangeRequest, candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates ``request`` names: an exact name first, else all whose name or
    description holds every word of the subject (of an allowed kind)."""
    allowed = [c for c in candidates if not request.kinds or c.kind in request.kinds]
    if not request.subject:
        return allowed
    slug = re.sub(r"[^a-z0-9]+", "-", request.subject).strip("-")
    exact = [c for c in allowed if c.name == slug or c.name == request.subject]
    if exact:
        return exact
    tokens = [t for t in re.split(r"[^a-z0-9]+", request.subject) if t]
    return [c for c in allowed if tokens and all(_mentions(c, t) for t in tokens)]


def _mentions(candidate: Candidate, token: str) -> bool:
    words = set(re.split(r"[^a-z0-9]+", f"{candidate.name} {candidate.described}".lower()))
    return token in words or any(len(token) > 3 and w.startswith(token) for w in words)


def described(target: str | None, kind: str) -> str:
    """The words a thing may be called by besides its name: the host of its address (without
    ``www``), or the text of its message."""
    if not target:
        return kind
    if kind in ("http", "json", "csv", "rss"):
        host = urlsplit(target).hostname or ""
        return f"{host.removeprefix('www.')} {urlsplit(target).path} {kind}"
    return f"{target} {kind}"


def mute_until(span: str | None, now: datetime, zone: ZoneInfo) -> datetime | None:
    """When a mute said as ``span`` ends: "2 hours", "30m", "until 18:00" (the person's
    18:00, today or else tomorrow); one hour when no span was said; None if unreadable."""
    from bot.triggers.schedule import parse_clock, parse_duration_or_none, wall_clock_instant

    if span is None:
        return now + DEFAULT_MUTE
    text = span.lower().strip()
    if text.startswith("until "):
        at = parse_clock(text.removeprefix("until ").replace(" ", ""))
        if at is None:
            return None
        today = now.astimezone(zone).date()
        until = wall_clock_instant(today, at, zone)
        return until if until > now else wall_clock_instant(today + timedelta(days=1), at, zone)
    text = re.sub(r"^(?:an?|one)\s+", "1 ", text)
    duration = parse_duration_or_none(text.replace(" ", ""))
    return None if duration is None or duration <= timedelta(0) else now + duration


DEFAULT_MUTE: Final = timedelta(hours=1)
