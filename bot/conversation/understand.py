"""Plain-language requests, turned into a trigger or hook spec.

People DM the bot or @mention it in plain English ("check https://status.example.com every
5 minutes and tell #ops if it's down"). `understand` turns such a message into a
`TriggerSpec` or `HookSpec`, the same value the slash commands and the modals produce. It is
a small rule-based reader, not a language model:

* the schedule is the longest phrase starting at ``every``/``each``/``cron`` (or, for
  one-offs, ``at``/``in``/``on``/``today``/``tomorrow``) that `parse_schedule` accepts;
  ``at 9:30 every weekday`` is put back in grammar order as ``every weekday at 9:30``, and
  ``on the first of each month`` as ``every month on the 1st``;
* the kind comes from the words: ``remind`` → message; ``webhook``/``hook`` → a hook; a link →
  http, json (the condition reads ``data.``/``json.``) or rss (feed words, or a feed-like
  path); ``report`` → report; ``post``/``say``/``tell`` without a link → message;
* ``if``/``when`` starts a condition: "it's down" needs none (a failed check alerts anyway),
  "it's slow" is ``latency > 2000ms``, "it takes more than 2s", "the page says X",
  "the certificate expires within 14 days", or an expression such as ``status != 200``;
  the address itself may be the subject ("if https://… is slower than 500ms"). A condition
  that cannot be read is asked about, never dropped.

A refusal names the part at fault as the person wrote it, even where the bot had respelled
or reordered it ("each" for "every", a day of the month moved behind "every month").

A trigger request is written out as ``/trigger add`` text (Slack's escaped form, like a
slash command's) and read back with the slash grammar (`parse_trigger_add`), so a proposal
means exactly what the same typed command would.

A ``message`` or ``report`` without a channel goes to the conversation where it was asked;
the caller supplies that channel. "remind me" starts the message with a mention of the user
who asked, so the reminder reaches them wherever it is posted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final, Literal, NoReturn
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from bot.conversation.phrasing import Respelled, respell
from bot.conversation.questions import HERE, Answers, Question
from bot.slack.text import (
    ChannelRef,
    CommandSyntaxError,
    Token,
    link_target,
    parse_channel,
    parse_url,
    parse_user,
    scan,
    unescape,
)
from bot.triggers.conditions import ConditionError, compile_condition
from bot.triggers.grammar import TriggerSyntaxError, parse_trigger_add
from bot.triggers.schedule import ScheduleError, ordinal, parse_schedule
from bot.triggers.spec import TriggerKind, TriggerSpec
from bot.webhooks.event import SENDERS
from bot.webhooks.spec import HookSpec


@dataclass(frozen=True)
class TriggerProposal:
    """A trigger that would do what was asked.

    ``template`` is a starter report template (a report from a URL posts on every run);
    ``notes`` say each default the reader chose; ``offer`` is a default the person may
    want to change with one click ("morning" read as 9:00: `8:00` `10:00`).
    """

    spec: TriggerSpec
    template: str | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)
    offer: Question | None = field(default=None, compare=False)


@dataclass(frozen=True)
class HookProposal:
    """A hook that would do what was asked."""

    spec: HookSpec


Proposal = TriggerProposal | HookProposal


@dataclass(frozen=True)
class NotUnderstood:
    """Why a request was refused: the fragment at fault ('' if nothing matched) and why."""

    part: str
    reason: str


_Intent = Literal["message", "hook", "check", "report", "data", "items", "email"]

_HELP: Final = (
    "I can set up checks (check https://example.com every 5 minutes), feeds, reminders "
    "(every weekday at 9:30 remind #team: standup), reports and webhooks"
)
_FEED_SCHEDULE: Final = "every 15 minutes"
_CHECK_SCHEDULE: Final = "every 5 minutes"
_DEFAULT_TIME: Final = "9:00"
_SCHEDULE_STEMS: Final = ("hourly", "daily", "weekly", "monthly", "every", "each", "cron")
_CALENDAR_DEFAULTS: Final[Mapping[str, str]] = {
    "every day": "every day at 9:00",
    "every week": "every monday at 9:00",
    "every month": "every month on the 1st at 9:00",
}
_ADDRESS_QUESTION: Final = Question(
    "url", "Which address should I check? Reply with it, e.g. https://example.com"
)
_WHEN_QUESTION: Final = Question(
    "when", "When should it run?", ("every weekday at 9:00", "every monday at 9:00", "in 1 hour")
)
_CHANNEL_QUESTION: Final = Question("channel", "Where should I post it?", (HERE,))
_LIST_QUESTION: Final = Question(
    "list", "Which field of the answer holds the list of items?", ("data", "items", "results")
)
_CONDITION_HINTS: Final = frozenset(
    {"unless", "before", "expires", "expire", "cert", "certificate", "slow", "slower"}
    | {"returns", "return", "says", "contains", "above", "below", "latency", "status"}
)
_HERE_WORDS: Final = frozenset({"me", "us", "here", "privately", "dm"})
_ABOUT_A_SITE: Final = frozenset({"down", "slow", "unreachable", "offline", "site", "website"})
_NEW_WORDS: Final = frozenset({"new", "each", "every", "any"})
_ITEM_WORDS: Final = frozenset(
    {"item", "items", "lead", "leads", "order", "orders", "row", "rows", "record", "records"}
    | {"entry", "entries", "ticket", "tickets", "signup", "signups", "customer", "customers"}
)
_FEED_ONLY_WORDS: Final = frozenset({"feed", "feeds", "rss", "atom", "blog", "podcast"})
_REPORT_NAME_STOPS: Final = frozenset(
    {"a", "an", "the", "my", "our", "this", "daily", "weekly", "monthly", "post", "send"}
)
_MAILBOX: Final = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_SLOW_MS: Final = 2000
_NAME_LENGTH: Final = 40
_PUNCTUATION: Final = ",.:!?"  # not ";": it ends Slack's "&amp;"
_BOUNDARIES: Final = frozenset(".:!?")
_QUOTE_CHARS: Final = frozenset('"“”')
_STRAIGHT_QUOTES: Final = str.maketrans({"“": '"', "”": '"'})

_MENTION: Final = re.compile(r"^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>[\s,:]*")
_LEADING_FILLER: Final = re.compile(
    r"^(?:hey|hi|hello|yo|ok|okay|please|pls|kindly|(?:can|could|would|will) you)\b[\s,!.]*",
    re.IGNORECASE,
)
# Trailing filler is stripped without a regular expression: "[\s,!.?]+$" tried at every
# position is quadratic in a run of spaces, and a DM may be 40,000 characters long.
_TRAILING_PUNCTUATION: Final = " \t\n\r\f\v,!.?"
_TRAILING_WORDS: Final = ("thank you", "thanks", "thx", "please", "pls")
# Longer than any request worth reading; refused before any parsing, so that the cost of
# reading a message stays bounded whatever people paste.
MAX_REQUEST_CHARS: Final = 1000

_REMIND_WORDS: Final = frozenset({"remind", "reminder"})
_SAY_WORDS: Final = frozenset({"post", "say", "send", "announce", "tell", "write"})
_HOOK_WORDS: Final = frozenset({"webhook", "webhooks", "hook", "hooks"})
_REPORT_WORDS: Final = frozenset({"report", "reports", "digest", "summary"})
_CHANGE_WORDS: Final = frozenset(
    {"delete", "remove", "stop", "cancel", "pause", "disable", "mute", "don't", "dont"}
)
_AMBIGUOUS: Final = frozenset(
    {"fortnight", "fortnightly", "biweekly", "bi-weekly", "bimonthly", "bi-monthly"}
)
_FEED_WORDS: Final = frozenset(
    {"feed", "feeds", "rss", "atom", "items", "posts", "articles", "entries", "episodes"}
)
_FEED_PATH: Final = re.compile(r"(?:^|[/.])(?:rss|feed|atom)(?:[/.]|$)", re.IGNORECASE)
_PRESET_WORDS: Final[Mapping[str, str]] = {
    **{sender: sender for sender in SENDERS},
    "auto": "auto",
    "prometheus": "alertmanager",
}
_CONDITION_WORDS: Final = frozenset({"if", "when", "whenever"})
_ACTION_WORDS: Final = frozenset(
    {"tell", "alert", "notify", "ping", "post", "send", "message", "let", "warn"}
)
_CHECK_WORDS: Final = frozenset({"check", "checking", "watch", "monitor", "poll"})
_GLUE_WORDS: Final = frozenset({"and", "then", "to", "in", "into", "please", "so", ""})
_MARKER_WORDS: Final = frozenset({"to", "that", "about", "saying"})
_LEAD_IN_WORDS: Final = frozenset({"a", "an", "the", "message", "reminder", "note"})
_TO_WORDS: Final = frozenset({"to", "in", "into", "for"})
_NAME_STOPWORDS: Final = frozenset({"a", "an", "the", "to", "do", "our", "my", "your", "about"})
_SEGMENT_STOPS: Final = (
    _REMIND_WORDS
    | _SAY_WORDS
    | _CONDITION_WORDS
    | _ACTION_WORDS
    | {"check", "watch", "monitor", "to", "me", "us", "for", "from"}
)
_ONE_OFF_STARTS: Final = frozenset({"at", "in", "today", "tomorrow"})
_ISO_DATE: Final = re.compile(r"^\d{4}-\d{2}-\d{2}")
_SCHEDULE_SYNONYMS: Final[Mapping[str, str]] = {
    "each": "every",
    "hourly": "every hour",
    "daily": "every day",
    "weekly": "every week",
    "monthly": "every month",
}
_DAY_NUMBER: Final = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)$")
_ORDINAL_WORDS: Final[Mapping[str, int]] = {
    word: number
    for number, word in enumerate(
        [
            *("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth"),
            *("ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth"),
            *("fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth"),
            *("twentieth", "twenty-first", "twenty-second", "twenty-third", "twenty-fourth"),
            *("twenty-fifth", "twenty-sixth", "twenty-seventh", "twenty-eighth"),
            *("twenty-ninth", "thirtieth", "thirty-first"),
        ],
        start=1,
    )
}
_OF_A_MONTH: Final = frozenset({"each", "every", "the", "a"})


class _Asking(Exception):
    """One piece is missing or ambiguous: ask about it rather than refuse or guess."""

    def __init__(self, question: Question) -> None:
        super().__init__(question.text)
        self.question = question


class _Unclear(Exception):
    """A request that cannot become a command; ``part`` is the fragment at fault."""

    def __init__(self, part: str, reason: str) -> None:
        super().__init__(reason)
        self.part = part
        self.reason = reason


@dataclass(frozen=True)
class _Word:
    """One word of the message, with trailing punctuation split off.

    ``text`` is unescaped without quotes; ``raw`` is as Slack sent it; ``start``/``end``
    locate ``raw`` in the message; ``stop`` is the punctuation that followed ('' if none).
    """

    text: str
    raw: str
    start: int
    end: int
    quoted: bool
    stop: str

    @property
    def low(self) -> str:
        """The text lower-cased, with a curly apostrophe made straight."""
        return self.text.lower().replace("’", "'")

    @property
    def channel(self) -> ChannelRef | None:
        """The channel this word names (``<#C1|ops>`` or ``#ops``), if it is one."""
        return None if self.quoted else parse_channel(self.text)

    @property
    def link(self) -> str | None:
        """The address this word links to, whatever its scheme, if it is a link."""
        return None if self.quoted else link_target(self.text)

    @property
    def is_reference(self) -> bool:
        """True for links, channels, users and other Slack ``<...>`` references."""
        return not self.quoted and (
            self.raw.startswith("<") or self.link is not None or self.channel is not None
        )


@dataclass(frozen=True)
class _Ask:
    """One request: its words and what the schedule parser needs."""

    message: str
    words: tuple[_Word, ...]
    default_tz: ZoneInfo
    now: datetime
    min_interval: timedelta
    user_id: str
    heard: Respelled  # the name and zone taken out, the defaults chosen so far
    answers: Answers
    ask_for_channel: bool

    def note(self, text: str) -> None:
        """Say in the summary that a default was chosen."""
        self.heard.notes.append(text)


@dataclass(frozen=True)
class _Found:
    """A schedule phrase in grammar order, and the indexes of the words it used."""

    text: str
    span: frozenset[int]


@dataclass(frozen=True)
class _Condition:
    """What follows ``when`` (None: no condition needed), the words used, and as said."""

    text: str | None
    is_json: bool
    span: frozenset[int]
    said: str


_NO_CONDITION: Final = _Condition(None, False, frozenset(), "")


@dataclass(frozen=True)
class _Draft:
    """A ``/trigger add`` proposal and what its parse must give back."""

    name: str
    schedule: str
    kind: TriggerKind
    target: str | None
    condition: str | None
    channel: str | None
    options: str = ""

    @property
    def text(self) -> str:
        parts = [self.name, self.schedule, self.kind, self._target_text()]
        if self.condition is not None:
            parts.append(f"when {self.condition}")
        parts += [self.channel or "", self.options]
        return " ".join(["add", *filter(None, parts)]).strip()

    def _target_text(self) -> str | None:
        if self.kind != "message" or self.target is None:
            return self.target
        has_quote = any(char in _QUOTE_CHARS for char in self.target)
        return self.target if has_quote else f'"{self.target}"'


# ---------------------------------------------------------------------------------------------
# The entry point


def understand(
    message: str,
    *,
    default_tz: ZoneInfo,
    now: datetime,
    min_interval: timedelta,
    user_id: str,
    answers: Answers | None = None,
    ask_for_channel: bool = False,
) -> Proposal | Question | NotUnderstood:
    """Turn a plain-language request (Slack-escaped text) into a command proposal.

    Every ``/trigger`` proposal has been parsed with `parse_trigger_add` and its condition
    compiled; a missing or ambiguous piece comes back as a `Question` (read the message
    again with its answer in ``answers``); anything else that would fail comes back as
    `NotUnderstood` naming the part. ``ask_for_channel`` (a DM) asks where to post a
    check or a report that names no channel, rather than posting it in the DM.
    """
    if len(message.strip()) > MAX_REQUEST_CHARS:
        return NotUnderstood(
            part="",
            reason=(
                f"that is longer than I read as a request ({len(message.strip()):,} characters; "
                f"at most {MAX_REQUEST_CHARS:,}). Say what to set up in a sentence or two, "
                "e.g. check https://example.com every 5 minutes and tell #ops if it's down"
            ),
        )
    try:
        ask = _ask(message, default_tz, now, min_interval, user_id, answers or {})
        ask = replace(ask, ask_for_channel=ask_for_channel)
        if ask.heard.refusal is not None:
            raise _Unclear(*ask.heard.refusal)
        if ask.heard.question is not None:
            return ask.heard.question
        _refuse_changes(ask.words)
        intent = _intent_of(ask)
        return _with_notes(_BUILDERS[intent](ask), ask)
    except _Asking as asking:
        return asking.question
    except _Unclear as unclear:
        return NotUnderstood(part=_as_said(unclear.part, message), reason=unclear.reason)


def _as_said(part: str, message: str) -> str:
    """``part`` as the person wrote it: a piece of the respelled message that they did
    not write word for word is narrowed to the words of it they did."""
    said = unescape(message).lower().replace("’", "'").replace("“", '"').replace("”", '"')
    if part.lower().replace("’", "'") in said:
        return part
    words = part.split()
    while words and " ".join(words).lower() not in said:
        words = words[:-1] if len(words) > 1 and words[0].lower() in said else words[1:]
    return " ".join(words)


def _with_notes(proposal: Proposal, ask: _Ask) -> Proposal:
    if isinstance(proposal, HookProposal):
        return proposal
    return replace(proposal, notes=tuple(ask.heard.notes), offer=ask.heard.offer)


def _ask(
    message: str,
    default_tz: ZoneInfo,
    now: datetime,
    min_interval: timedelta,
    user_id: str,
    answers: Answers,
) -> _Ask:
    cleaned = strip_filler(message)
    heard = respell(cleaned, answers, default_tz.key or "UTC")
    zone = ZoneInfo(heard.zone) if heard.zone else default_tz
    if "when" in answers:
        heard.text = f"{heard.text} {answers['when']}"
    if "url" in answers and "<" not in heard.text and "://" not in heard.text:
        heard.text = f"{heard.text} <{answers['url']}>"
    words = _words_of(heard.text)
    return _Ask(heard.text, words, zone, now, min_interval, user_id, heard, answers, False)


def strip_filler(message: str) -> str:
    """Drop a leading bot mention, greetings and polite words, and trailing thanks/punctuation."""
    text = _MENTION.sub("", message).strip()
    previous = None
    while previous != text:
        previous = text
        text = _LEADING_FILLER.sub("", text)
        text = _strip_trailing_filler(text).strip()
    return text


def _strip_trailing_filler(text: str) -> str:
    """Drop trailing punctuation and thanks ("…, thanks!"), in linear time."""
    while True:
        text = text.rstrip(_TRAILING_PUNCTUATION)
        lowered = text.lower()
        word = next((w for w in _TRAILING_WORDS if _ends_with_word(lowered, w)), None)
        if word is None:
            return text
        text = text[: -len(word)]


def _ends_with_word(text: str, word: str) -> bool:
    if not text.endswith(word):
        return False
    before = text[-len(word) - 1 : -len(word)]
    return not before or not (before.isalnum() or before in "_'")


def _words_of(text: str) -> tuple[_Word, ...]:
    try:
        tokens = scan(text)
    except CommandSyntaxError as error:
        raise _Unclear(error.part, "a quote is never closed") from None
    return tuple(_word(text, token) for token in tokens)


def _word(text: str, token: Token) -> _Word:
    raw = text[token.start : token.end]
    body = raw.rstrip(_PUNCTUATION)
    stop = raw[len(body) :]
    word_text = token.text.removesuffix(stop) if stop else token.text
    return _Word(word_text, body, token.start, token.start + len(body), token.quoted, stop)


def _refuse_changes(words: Sequence[_Word]) -> None:
    if words and words[0].low in _CHANGE_WORDS:
        raise _Unclear(
            words[0].text,
            "I can only set new things up from a message: change existing ones with "
            "/trigger or /hook",
        )


def _intent_of(ask: _Ask) -> _Intent:
    words = ask.words
    lows = {word.low for word in words if not word.quoted}
    links = [word.link for word in words if word.link is not None]
    if lows & _REMIND_WORDS:
        return "message"
    if lows & _HOOK_WORDS:
        return "hook"
    if any(link.lower().startswith("mailto:") for link in links) or _mailbox_word(words):
        return "email"
    if links:
        return _link_intent(ask, lows)
    if lows & _REPORT_WORDS:
        return "report"
    if lows & (_CHECK_WORDS | _CONDITION_WORDS) or lows & _ABOUT_A_SITE:
        raise _Asking(_ADDRESS_QUESTION)
    if lows & _SAY_WORDS:
        return "message"
    raise _Unclear("", f"I didn't understand that. {_HELP}")


def _link_intent(ask: _Ask, lows: set[str]) -> _Intent:
    """A report from the address, a scan of its new items, or a check of it."""
    has_condition = bool(lows & _CONDITION_WORDS)
    if lows & _REPORT_WORDS and not has_condition:
        return "data"
    if lows & _NEW_WORDS and lows & _ITEM_WORDS and not _feed_like(ask.words):
        return "items"
    return "check"


def _feed_like(words: Sequence[_Word]) -> bool:
    lows = {word.low for word in words}
    paths = [urlsplit(word.link).path for word in words if word.link is not None]
    return bool(lows & _FEED_ONLY_WORDS) or any(_FEED_PATH.search(path) for path in paths)


def _mailbox_word(words: Sequence[_Word]) -> _Word | None:
    return next((w for w in words if not w.quoted and _MAILBOX.match(w.text)), None)


# ---------------------------------------------------------------------------------------------
# Builders, one per intent


def _build_check(ask: _Ask) -> Proposal:
    link_at = _the_link(ask)
    url = _http_url(ask.words[link_at])
    condition = _condition(ask.words)
    if condition.text is None and not condition.span:
        _refuse_unread_condition(ask.words)
    kind = _check_kind(ask.words, url, condition)
    schedule = _schedule(ask, condition.span) or _default_schedule(kind, ask)
    if kind == "rss" and condition.text is not None:
        raise _Unclear(condition.said, "I post every new item of a feed; I can't filter them")
    channel = _destination(ask, condition.span)
    name = _name(ask, _host_name(url))
    draft = _Draft(name, schedule, kind, _escape(url), condition.text, channel)
    return _checked(draft, ask)


def _refuse_unread_condition(words: Sequence[_Word]) -> None:
    """Words that describe a condition, said without "if"/"when" ("30 days before the
    certificate expires"): refused with the way to say it, never dropped."""
    hint = next((w for w in words if not w.quoted and w.low in _CONDITION_HINTS), None)
    if hint is not None:
        raise _Unclear(hint.text, _condition_help(hint.text))


def _build_data_report(ask: _Ask) -> Proposal:
    """ "every day at 9am post the sales report from URL to #sales": a report with a
    starter template, posted on every run (not an up/down check)."""
    url = _http_url(ask.words[_the_link(ask)])
    schedule = _schedule(ask, frozenset()) or _ask_when(ask)
    kind: TriggerKind = "csv" if _is_csv(ask.words, url) else "json"
    name = _name(ask, _report_name(ask.words) or _host_name(url))
    channel = _destination(ask, frozenset())
    draft = _Draft(name, schedule, kind, _escape(url), None, channel)
    ask.note(
        f"it posts on every run with a starter template: `/trigger template {name}` changes it"
    )
    proposal = _checked(draft, ask)
    return replace(proposal, template=_starter_template(kind, name))


def _build_items(ask: _Ask) -> Proposal:
    """ "post each new lead from URL to #sales": a scan that posts each new item once."""
    url = _http_url(ask.words[_the_link(ask)])
    kind: TriggerKind = "csv" if _is_csv(ask.words, url) else "json"
    schedule = _schedule(ask, frozenset()) or _default_schedule(kind, ask)
    listed = "rows" if kind == "csv" else ask.answers.get("list")
    if listed is None:
        raise _Asking(_LIST_QUESTION)
    ask.note("items are told apart by their `id` field (`key=` in the command)")
    name = _name(ask, _host_name(url))
    channel = _destination(ask, frozenset())
    options = f"each={listed} key=id"
    draft = _Draft(name, schedule, kind, _escape(url), None, channel, options)
    return _checked(draft, ask)


def _build_email(ask: _Ask) -> Proposal:
    """ "check support@example.com every 5 minutes": a mailbox watch, its server and the
    secret holding its password said in the summary."""
    address = _mail_address(ask.words)
    local, _, domain = address.partition("@")
    name = _name(ask, _slug(local) or "mail")
    secret = f"{_slug(local) or 'mail'}-mail"
    host = f"imap.{domain.lower()}"
    schedule = _schedule(ask, frozenset()) or _default_schedule("email", ask)
    ask.note(
        f"the mail server is {host}, signed in with the secret `{secret}` (set it with "
        f"`/secret set {secret} for {host} user={address}`)"
    )
    target = f"imaps://{local}%40{domain}@{host}/INBOX"
    channel = _destination(ask, frozenset())
    draft = _Draft(name, schedule, "email", target, None, channel, f"auth=basic:{secret}")
    return _checked(draft, ask)


def _build_report(ask: _Ask) -> Proposal:
    schedule = _schedule(ask, frozenset()) or _ask_when(ask)
    channel = _destination(ask, frozenset())
    draft = _Draft(_name(ask, "report"), _calendar(schedule, ask), "report", None, None, channel)
    return _checked(draft, ask)


def _build_message(ask: _Ask) -> Proposal:
    found = _find_schedule(ask, frozenset())
    if found is None:
        _ask_when(ask)
    verbs = [i for i, word in enumerate(ask.words) if word.low in _REMIND_WORDS | _SAY_WORDS]
    # "a reminder called standup: … remind #team …": the verb, not the noun, leads the text
    verb_at = next((i for i in verbs if ask.words[i].low != "reminder"), verbs[0])
    after = [i for i in range(verb_at + 1, len(ask.words)) if i not in found.span]
    destination, body = _split_message(ask.words, after)
    text = _message_text(ask, destination, body, ask.words[verb_at])
    channel = None if destination is None or destination.channel is None else destination
    if channel is not None:
        channel_text: str | None = _render_channel(channel)
    elif destination is None:
        channel_text = _answered_channel(ask)
    else:
        channel_text = None  # "me", "us", "here" or a person: this conversation
    schedule = _calendar(found.text, ask)
    draft = _Draft(_name(ask, _message_name(text)), schedule, "message", text, None, channel_text)
    return _checked(draft, ask)


def _build_hook(ask: _Ask) -> Proposal:
    preset = _the_preset(ask.words)
    channel_at = _channel_index(ask.words, frozenset())
    channel = None if channel_at is None else ask.words[channel_at]
    ref = None if channel is None else channel.channel
    name = _hook_name(preset, None if ref is None else ref.name)
    return HookProposal(
        HookSpec(
            name=_name(ask, name),
            channel=None if ref is None else ref.target,
            preset=preset or "auto",
        )
    )


_BUILDERS: Final[Mapping[_Intent, Callable[[_Ask], Proposal]]] = {
    "message": _build_message,
    "hook": _build_hook,
    "check": _build_check,
    "report": _build_report,
    "data": _build_data_report,
    "items": _build_items,
    "email": _build_email,
}


def _no_schedule(reason: str) -> NoReturn:
    raise _Unclear("", reason)


def _ask_when(ask: _Ask) -> NoReturn:
    raise _Asking(_WHEN_QUESTION)


def _default_schedule(kind: TriggerKind, ask: _Ask) -> str:
    """A check, a mailbox or a scan runs every 5 minutes unless told otherwise (a feed
    every 15), and the summary says so."""
    said = next((w for w in ask.words if w.low.startswith(_SCHEDULE_STEMS)), None)
    if said is not None:  # "hourly-ish": a schedule was meant, but not one I can read
        raise _Unclear("", 'I couldn\'t tell how often to check: add e.g. "every 5 minutes"')
    schedule = _FEED_SCHEDULE if kind == "rss" else _CHECK_SCHEDULE
    ask.note(f"no schedule given: {schedule}")
    return schedule


def _calendar(schedule: str, ask: _Ask) -> str:
    """A post said "daily"/"weekly"/"monthly" without a time goes out at 9:00, not at the
    minute the request happened to be made."""
    day_time = _CALENDAR_DEFAULTS.get(schedule)
    if day_time is None:
        return schedule
    ask.note(f"no time of day given: {_DEFAULT_TIME}")
    return day_time


def _name(ask: _Ask, default: str) -> str:
    """The name the person gave ("called deploys"), else ``default``."""
    given = ask.heard.name
    if given is None:
        return default
    name = _slug(given)
    if not name:
        raise _Unclear(given, 'a name is letters, digits and dashes, e.g. "called site-check"')
    if name != given:
        ask.note(f'the name "{given}" written as {name}')
    return name


def _destination(ask: _Ask, skip: frozenset[int]) -> str | None:
    """The channel named, the one answered, or (in a DM, when none is said) a question."""
    return _the_channel(ask.words, skip) or _answered_channel(ask)


def _answered_channel(ask: _Ask) -> str | None:
    answer = ask.answers.get("channel")
    if answer is not None:
        if answer == HERE:
            return None
        return answer if answer.startswith("#") else f"<#{answer}>"
    if ask.ask_for_channel and not _says_here(ask.words):
        raise _Asking(_CHANNEL_QUESTION)
    return None


def _says_here(words: Sequence[_Word]) -> bool:
    return any(
        word.low in _HERE_WORDS or (_user_of(word) is not None) for word in words if not word.quoted
    )


def _report_name(words: Sequence[_Word]) -> str | None:
    """ "the sales report" → sales; "the weekly numbers report" → numbers."""
    for index, word in enumerate(words):
        if word.low in _REPORT_WORDS and index > 0:
            before = words[index - 1]
            if before.text.isalpha() and before.low not in _REPORT_NAME_STOPS:
                return _slug(before.text) or None
    return None


def _is_csv(words: Sequence[_Word], url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".csv") or any(w.low == "csv" for w in words)


def _starter_template(kind: TriggerKind, name: str) -> str:
    if kind == "csv":
        return f"*{name}*\n{{{{ rows|table }}}}"
    return f"*{name}*\n```{{{{ json|tojson }}}}```"


def _mail_address(words: Sequence[_Word]) -> str:
    for word in words:
        link = word.link
        if link is not None and link.lower().startswith("mailto:"):
            address = link[len("mailto:") :].split("?")[0]
            if _MAILBOX.match(address):
                return address
    found = _mailbox_word(words)
    if found is None:
        raise _Unclear("", "I couldn't read the mail address: e.g. check support@example.com")
    return found.text


# ---------------------------------------------------------------------------------------------
# The final check: one parser decides


def _checked(draft: _Draft, ask: _Ask) -> TriggerProposal:
    """The proposal, once `parse_trigger_add` reads back what was meant."""
    try:
        spec = parse_trigger_add(
            draft.text.removeprefix("add "),
            default_tz=ask.default_tz,
            now=ask.now,
            min_interval=ask.min_interval,
        )
        if spec.condition is not None:
            compile_condition(spec.condition)
    except TriggerSyntaxError as error:
        raise _Unclear(error.part, str(error)) from None
    except ConditionError as error:
        raise _Unclear(draft.condition or "", str(error)) from None
    expected = None if draft.target is None else unescape(draft.target)
    if spec.kind != draft.kind or spec.target != expected:
        raise _Unclear(expected or "", "I couldn't turn this into a command without changing it")
    return TriggerProposal(spec)


# ---------------------------------------------------------------------------------------------
# Links, channels, names


def _the_link(ask: _Ask) -> int:
    """The index of the one link in the message; with two, which one is asked."""
    words = ask.words
    links = [i for i, word in enumerate(words) if word.link is not None]
    answer = ask.answers.get("url")
    if len(links) > 1 and answer is not None:
        chosen = [i for i in links if words[i].link == answer]
        if chosen:
            return chosen[0]
    if len(links) > 1:
        options = tuple(dict.fromkeys(_link_text(words[i]) for i in links))[:5]
        raise _Asking(Question("url", "I can check one address at a time: which one?", options))
    return links[0]


def _http_url(word: _Word) -> str:
    url = parse_url(word.text)
    if url is None:
        raise _Unclear(_link_text(word), "I can only check http:// and https:// addresses")
    return url


def _link_text(word: _Word) -> str:
    return word.link or word.text


def _escape(text: str) -> str:
    """Slack's escaping of a literal ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _check_kind(words: Sequence[_Word], url: str, condition: _Condition) -> TriggerKind:
    lows = {word.low for i, word in enumerate(words) if i not in condition.span}
    if lows & _FEED_WORDS or _FEED_PATH.search(urlsplit(url).path):
        return "rss"
    return "json" if condition.is_json else "http"


def _channel_index(words: Sequence[_Word], skip: frozenset[int]) -> int | None:
    """The index of the one channel named outside ``skip``; a second one is refused."""
    found = [i for i, word in enumerate(words) if i not in skip and word.channel is not None]
    distinct = {_render_channel(words[i]) for i in found}
    if len(distinct) > 1:
        first = _render_channel(words[found[0]])
        second = next(i for i in found if _render_channel(words[i]) != first)
        raise _Unclear(words[second].raw, "I can post to one channel: pick one")
    return found[0] if found else None


def _the_channel(words: Sequence[_Word], skip: frozenset[int]) -> str | None:
    at = _channel_index(words, skip)
    return None if at is None else _render_channel(words[at])


def _render_channel(word: _Word) -> str:
    """Slack's own reference as sent, or ``#name`` for a typed channel name."""
    ref = word.channel
    if ref is None or ref.id is not None:
        return word.raw
    return f"#{ref.name}"


def _slug(text: str) -> str:
    """A name from any text: lower-case ``[a-z0-9-]``, at most 40 characters."""
    dashed = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return dashed[:_NAME_LENGTH].rstrip("-")


def _host_name(url: str) -> str:
    return _slug(urlsplit(url).hostname or "") or "check"


def _message_name(text: str) -> str:
    words = [word for word in unescape(text).split() if not word.startswith("<")]
    kept = [_slug(word) for word in words if word.lower() not in _NAME_STOPWORDS]
    return _slug("-".join([word for word in kept if word][:3])) or "reminder"


def _hook_name(preset: str | None, channel_name: str | None) -> str:
    parts = [preset or ("hook" if channel_name else "webhook"), channel_name or ""]
    return _slug("-".join(parts)) or "webhook"


def _the_preset(words: Sequence[_Word]) -> str | None:
    presets = [word for word in words if word.low in _PRESET_WORDS]
    distinct = {_PRESET_WORDS[word.low] for word in presets}
    if len(distinct) > 1:
        raise _Unclear(presets[-1].text, "I can create one webhook at a time: pick one sender")
    return distinct.pop() if distinct else None


# ---------------------------------------------------------------------------------------------
# Messages: "remind #team: standup", "remind me to call Bob", "post "Lunch!" in #general"


def _split_message(words: Sequence[_Word], after: list[int]) -> tuple[_Word | None, list[int]]:
    """The destination word (channel, user, me/us/here) and the indexes of the text."""
    rest = _skip_lead_in(words, after)
    destination = words[rest[0]] if rest and _is_destination(words[rest[0]]) else None
    if destination is not None:
        rest = rest[1:]
    said_colon = destination is not None and destination.stop.startswith(":")
    if rest and not said_colon and words[rest[0]].low in _MARKER_WORDS:
        rest = rest[1:]
    while rest and not words[rest[0]].text and not words[rest[0]].quoted:
        rest = rest[1:]  # a lone ":" or "-" before the text
    if destination is None and len(rest) > 2 and _is_trailing_channel(words, rest):
        return words[rest[-1]], rest[:-2]
    return destination, rest


def _skip_lead_in(words: Sequence[_Word], indexes: list[int]) -> list[int]:
    rest = list(indexes)
    while rest and words[rest[0]].low in _LEAD_IN_WORDS:
        rest = rest[1:]
    if len(rest) > 1 and words[rest[0]].low in _TO_WORDS and words[rest[1]].channel:
        rest = rest[1:]
    return rest


def _is_destination(word: _Word) -> bool:
    return (
        word.low in ("me", "us", "here") or word.channel is not None or _user_of(word) is not None
    )


def _is_trailing_channel(words: Sequence[_Word], rest: list[int]) -> bool:
    return words[rest[-2]].low in _TO_WORDS and words[rest[-1]].channel is not None


def _user_of(word: _Word) -> str | None:
    return None if word.quoted else parse_user(word.text)


def _message_text(ask: _Ask, destination: _Word | None, body: list[int], verb: _Word) -> str:
    """The text to post, as Slack sent it; "me" and users become a leading mention."""
    text = _raw_text(ask, body)
    if not text:
        raise _Unclear(verb.text, "I couldn't tell what the message should say")
    if destination is not None and destination.low == "me":
        return f"<@{ask.user_id}> {text}"
    if destination is not None and _user_of(destination) is not None:
        return f"{destination.raw} {text}"
    return text


def _raw_text(ask: _Ask, indexes: list[int]) -> str:
    """The message's own text for these words: runs of neighbours joined by one space."""
    if len(indexes) == 1 and _fully_quoted(ask.words[indexes[0]]):
        return ask.words[indexes[0]].raw[1:-1].strip()
    runs: list[list[int]] = []
    for index in indexes:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    slices = [ask.message[ask.words[run[0]].start : ask.words[run[-1]].end] for run in runs]
    return " ".join(slices).strip()


def _fully_quoted(word: _Word) -> bool:
    raw = word.raw
    inner = raw[1:-1]
    return (
        len(raw) >= 2
        and raw[0] in _QUOTE_CHARS
        and raw[-1] in _QUOTE_CHARS
        and not any(char in _QUOTE_CHARS for char in inner)
    )


# ---------------------------------------------------------------------------------------------
# Conditions: "if it's down", "if it's slow", "if the page says maintenance", ...


def _condition(words: Sequence[_Word]) -> _Condition:
    start = next(
        (i for i, word in enumerate(words) if word.low in _CONDITION_WORDS and not word.quoted),
        None,
    )
    if start is None:
        return _NO_CONDITION
    # "if https://… is slower than 500ms": the checked address is the condition's subject.
    first = start + 2 if start + 1 < len(words) and words[start + 1].link else start + 1
    end = _condition_end(words, first)
    last = end
    while last > first and words[last - 1].low in _GLUE_WORDS:
        last -= 1
    span = frozenset(range(start, end))
    chosen = list(words[first:last])
    if not chosen:
        # Never drop a part of a request silently: "if" with nothing after it is a question.
        said = " ".join(word.raw for word in words[start:end])
        raise _Unclear(unescape(said), _condition_help(unescape(said)))
    return _rewrite(chosen, span)


def _condition_end(words: Sequence[_Word], first: int) -> int:
    """Where the condition stops: at a reference, a schedule, an action, or a full stop."""
    for index in range(first, len(words)):
        word = words[index]
        if _ends_condition_before(words, index):
            return index
        if word.stop and word.stop[0] in _BOUNDARIES:
            return index + 1
        if word.stop == "," and index + 1 < len(words) and _ends_condition_before(words, index + 1):
            return index + 1
    return len(words)


def _ends_condition_before(words: Sequence[_Word], index: int) -> bool:
    word = words[index]
    if word.is_reference or word.low in _ACTION_WORDS or _is_recurring_word(word.low):
        return True
    if word.low in _CHECK_WORDS and not word.quoted and index > 0 and words[index - 1].stop:
        return True  # "… slower than 500ms, check every 2 minutes"
    following = words[index + 1] if index + 1 < len(words) else None
    return (
        word.low in ("and", "then")
        and following is not None
        and (following.low in _ACTION_WORDS | _CHECK_WORDS or following.is_reference)
    )


def _is_recurring_word(low: str) -> bool:
    return low in ("every", "cron") or low in _SCHEDULE_SYNONYMS


def _rewrite(words: list[_Word], span: frozenset[int]) -> _Condition:
    said = _normalized(words)
    for rewriter in _REWRITERS:
        rewritten = rewriter(said, words)
        if rewritten is not None:
            text, is_json = rewritten
            return _Condition(text, is_json, span, _plain(words))
    raise _Unclear(_plain(words), _condition_help(_plain(words)))


def _plain(words: list[_Word]) -> str:
    return unescape(" ".join(word.raw for word in words)).translate(_STRAIGHT_QUOTES)


def _normalized(words: list[_Word]) -> str:
    said = " ".join(word.low for word in words)
    for short, long in (("it's", "it is"), ("isn't", "is not"), ("doesn't", "does not")):
        said = said.replace(short, long)
    return " ".join(said.split())


def _condition_help(part: str) -> str:
    return (
        f'I couldn\'t understand the condition "{part}": try "if it\'s down", '
        '"if it\'s slow", "if it takes more than 2s", "if the page says maintenance", '
        '"if the certificate expires within 14 days" or "when status != 200"'
    )


_SUBJECT: Final = (
    r"(?:(?:it|its|the (?:site|page|website|service|server|api|endpoint|url|check|status page))"
    r"\s+)?"
)
_DOWN: Final = re.compile(
    rf"^{_SUBJECT}(?:is |goes |went |gets |seems )?(?:down|offline|unreachable|unavailable|"
    r"failing|fails|broken|erroring|not up|not responding|not reachable)$"
)
_SLOW: Final = re.compile(
    rf"^{_SUBJECT}(?:is |gets |goes |seems |becomes )?(?:down or )?(?:too |very |really )?slow"
    r"(?: or down)?$"
)
_LATENCY: Final = re.compile(
    rf"^{_SUBJECT}(?:takes|is slower than|responds slower than|loads slower than|"
    r"(?:the )?latency is|(?:the )?response time is)\s*(?:more than|longer than|over|above|>)?\s*"
    r"(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?)(?: to (?:load|respond|answer))?$"
)
_CERT: Final = re.compile(
    r"^(?:the |its |the site's )?(?:ssl |tls |https )?cert(?:ificate)? "
    r"(?:expires|will expire|runs out) (?:within|in less than|in under|in|before|"
    r"within the next|in the next) (\d+) ?(days?|d|weeks?|w)$"
)
_CONTAINS_VERBS: Final = frozenset(
    {"say", "says", "contain", "contains", "mention", "mentions", "show", "shows"}
    | {"include", "includes", "display", "displays"}
)
_CONTAINS_SUBJECT: Final = frozenset(
    {"it", "it's", "its", "the", "page", "site", "website", "body", "response", "text"}
    | {"does", "doesn't", "not", "no", "longer", "still", "homepage"}
)
_NEGATIONS: Final = frozenset({"not", "doesn't", "no"})
_EXPRESSION: Final = re.compile(r"==|!=|<=|>=|<|>|&lt;|&gt;|\bin\b|\bis\b|\bnot\b")
_JSON_NAMES: Final = re.compile(r"\b(?:data|json)\s*[.\[]")


def _when_down(said: str, words: list[_Word]) -> tuple[str | None, bool] | None:
    # A check that fails already alerts, so "if it's down" needs no condition.
    return (None, False) if _DOWN.match(said) else None


def _when_slow(said: str, words: list[_Word]) -> tuple[str | None, bool] | None:
    return (f"latency &gt; {_SLOW_MS}ms", False) if _SLOW.match(said) else None


def _when_latency(said: str, words: list[_Word]) -> tuple[str | None, bool] | None:
    found = _LATENCY.match(said)
    if found is None:
        return None
    number = float(found[1])
    milliseconds = number if found[2].startswith("m") else number * 1000
    if milliseconds <= 0 or not milliseconds.is_integer():
        return None
    return f"latency &gt; {int(milliseconds)}ms", False


def _when_cert(said: str, words: list[_Word]) -> tuple[str | None, bool] | None:
    found = _CERT.match(said)
    if found is None:
        return None
    days = int(found[1]) * (7 if found[2].startswith("w") else 1)
    return f"cert expires &lt; {days}d", False


def _when_contains(said: str, words: list[_Word]) -> tuple[str | None, bool] | None:
    verb_at = next((i for i, word in enumerate(words) if word.low in _CONTAINS_VERBS), None)
    if verb_at is None or verb_at + 1 >= len(words):
        return None
    if not all(word.low in _CONTAINS_SUBJECT for word in words[:verb_at]):
        return None
    phrase = _quoted_phrase(words[verb_at + 1 :])
    if any(char in _QUOTE_CHARS for char in phrase):
        raise _Unclear(phrase, "I can't look for text that has double quotes in it")
    negated = any(word.low in _NEGATIONS for word in words[:verb_at])
    return f'body {"not contains" if negated else "contains"} "{phrase}"', False


def _quoted_phrase(words: list[_Word]) -> str:
    """The words to look for, as Slack sent them, without surrounding quotes."""
    if len(words) == 1 and _fully_quoted(words[0]):
        return words[0].raw[1:-1]
    return " ".join(word.raw for word in words)


def _when_expression(said: str, words: list[_Word]) -> tuple[str | None, bool] | None:
    text = " ".join(word.raw for word in words).translate(_STRAIGHT_QUOTES)
    if not _EXPRESSION.search(text):
        return None
    try:
        compile_condition(unescape(text))
    except ConditionError:
        return None
    return text, _JSON_NAMES.search(text) is not None


_STATUS: Final = re.compile(
    rf"^{_SUBJECT}(?:returns?|gives?|responds? with|answers? with|answers?|throws?|"
    r"sends? back|comes back with|gets?|is|shows?)\s+(?:an? |the |http |status |code |error )*"
    r"(\d{3}|[1-5]xx)(?: errors?| status| code| response)?$"
)
_NOT_STATUS: Final = re.compile(
    rf"^{_SUBJECT}(?:does not return|returns anything but|returns anything other than|"
    r"is not|stops returning|no longer returns)\s+(?:an? |http |status |code )*(\d{3})$"
)
_FAILS: Final = re.compile(
    rf"^{_SUBJECT}(?:returns?|gives?|throws?|responds? with) (?:an? )?"
    r"(?:errors?|server errors?|bad status|error status|error code)$"
)
_FIELD: Final = re.compile(
    r"^(?:the |its )?(?:json |api |response )?(?:field|value|key|number|property) "
    r"([A-Za-z_][\w.\[\]]*) (?:is |goes |gets |rises |climbs |drops |falls )?"
    r"(above|over|greater than|more than|higher than|exceeds|below|under|less than|"
    r"lower than|equals|equal to|is|at least|at most) (-?\d+(?:\.\d+)?)$",
    re.IGNORECASE,
)
_FIELD_OPERATORS: Final[Mapping[str, str]] = {
    **dict.fromkeys(("above", "over", "greater than", "more than", "higher than"), "&gt;"),
    **dict.fromkeys(("exceeds",), "&gt;"),
    **dict.fromkeys(("below", "under", "less than", "lower than"), "&lt;"),
    **dict.fromkeys(("equals", "equal to", "is"), "=="),
    "at least": "&gt;=",
    "at most": "&lt;=",
}


def _when_status(said: str, words: list[_Word]) -> tuple[str | None, bool] | None:
    if _FAILS.match(said):
        return None, False  # a status that is not 2xx already alerts
    found = _STATUS.match(said)
    if found is not None:
        code = found[1]
        if code.endswith("xx"):
            low = int(code[0]) * 100
            return f"status &gt;= {low} and status &lt; {low + 100}", False
        return f"status == {code}", False
    found = _NOT_STATUS.match(said)
    return None if found is None else (f"status != {found[1]}", False)


def _when_field(said: str, words: list[_Word]) -> tuple[str | None, bool] | None:
    found = _FIELD.match(" ".join(word.text for word in words))
    if found is None:
        return None
    path = found[1]
    if not path.lower().startswith(("json.", "data.")):
        path = f"json.{path}"
    return f"{path} {_FIELD_OPERATORS[found[2].lower()]} {found[3]}", True


_REWRITERS: Final[tuple[Callable[[str, list[_Word]], tuple[str | None, bool] | None], ...]] = (
    _when_down,
    _when_status,
    _when_field,
    _when_slow,
    _when_latency,
    _when_cert,
    _when_contains,
    _when_expression,
)


# ---------------------------------------------------------------------------------------------
# Schedules: the longest phrase `parse_schedule` accepts


def _schedule(ask: _Ask, skip: frozenset[int]) -> str | None:
    found = _find_schedule(ask, skip)
    return None if found is None else found.text


def _find_schedule(ask: _Ask, skip: frozenset[int]) -> _Found | None:
    """The schedule in the message, or None when it names none.

    Recurring phrases win over one-offs, so "every blue moon at 9" is refused rather than
    read as "at 9"; a phrase that starts like a schedule but never parses is refused.
    """
    _refuse_ambiguous(ask.words)
    pieces = _schedule_pieces(ask.words, skip)
    recurring = [i for i, piece in enumerate(pieces) if piece and _is_recurring_piece(piece)]
    if recurring:
        return _best(ask, pieces, recurring, with_times=True)
    one_offs = [i for i in range(len(pieces)) if _starts_one_off(pieces, i)]
    return _best(ask, pieces, one_offs, with_times=False) if one_offs else None


def _refuse_ambiguous(words: Sequence[_Word]) -> None:
    for word in words:
        if word.low in _AMBIGUOUS:
            raise _Unclear(
                word.text,
                f'"{word.text}" is ambiguous: say "every 2 weeks", "every 14 days" or '
                '"every month on the 1st at 9am"',
            )


def _schedule_pieces(words: Sequence[_Word], skip: frozenset[int]) -> list[str | None]:
    """Each word as the schedule grammar spells it; None where no schedule can go.

    A day of the month said the English way ("on the first of each month") becomes the
    grammar's "every month on the 1st": its first word carries the whole phrase and the
    others are empty (used, but adding nothing).
    """
    pieces: list[str | None] = []
    for index, word in enumerate(words):
        before = pieces[-1] if pieces else None
        pieces.append(None if index in skip else _schedule_piece(word, before))
    start = 0
    while start < len(words):
        found = _day_of_a_month(words, start)
        if found is None or None in pieces[start : found[0]]:
            start += 1
            continue
        end, day = found
        pieces[start:end] = [f"every month on the {day}", *([""] * (end - start - 1))]
        start = end
    return pieces


def _day_of_a_month(words: Sequence[_Word], start: int) -> tuple[int, str] | None:
    """``[on] [the] first|1st|last [day] of each|every|the month`` from ``start``: where
    it ends and the day as the grammar says it ("1st", "last day"); None if it is not one."""
    lows = [None if word.quoted else word.low for word in words]
    at = start + (lows[start] == "on")
    at += at < len(lows) and lows[at] == "the"
    day, at = _day_word(lows, at)
    of_a_month = lows[at : at + 3]
    if day is None or len(of_a_month) < 3:
        return None
    of, which, month = of_a_month
    return (at + 3, day) if of == "of" and which in _OF_A_MONTH and month == "month" else None


def _day_word(lows: list[str | None], at: int) -> tuple[str | None, int]:
    """The day of the month at ``at`` ("1st", "last day") and the index after it."""
    word = lows[at] if at < len(lows) else None
    if word is None:
        return None, at
    if word == "last":
        return "last day", at + 1 + (at + 1 < len(lows) and lows[at + 1] == "day")
    number = _ORDINAL_WORDS.get(word)
    found = _DAY_NUMBER.match(word)
    if number is None and found is not None:
        number = int(found[1])
    if number is None or not 1 <= number <= 31:
        return None, at
    return ordinal(number), at + 1 + (at + 1 < len(lows) and lows[at + 1] == "day")


def _schedule_piece(word: _Word, before: str | None) -> str | None:
    if word.quoted:
        return f'"{word.text}"' if before == "cron" and '"' not in word.text else None
    if word.is_reference or not word.text:
        return None
    if before == "tz":
        return word.text
    if before == "in" and word.low in ("a", "an"):
        return "1"
    if before == "every" and word.low == "other":
        return "2"
    return _SCHEDULE_SYNONYMS.get(word.low, word.low)


def _is_recurring_piece(piece: str) -> bool:
    return piece.split()[0] in ("every", "cron")


def _starts_one_off(pieces: list[str | None], index: int) -> bool:
    piece = pieces[index]
    following = pieces[index + 1] if index + 1 < len(pieces) else None
    if piece in ("today", "tomorrow"):
        return True
    if piece == "on":
        return following is not None and _ISO_DATE.match(following) is not None
    return piece in _ONE_OFF_STARTS and following is not None


def _best(ask: _Ask, pieces: list[str | None], starts: list[int], *, with_times: bool) -> _Found:
    candidates = [found for start in starts for found in _candidates(ask, pieces, start)]
    if with_times and (not candidates or _time_said_apart(pieces, candidates)):
        # "remind #team at 12:00 every day": "every day" parses alone, but the time joins it
        joined = [found for start in starts for found in _with_time(ask, pieces, start)]
        candidates = joined or candidates
    if with_times and not candidates:
        candidates = [found for start in starts for found in _at_default_time(ask, pieces, start)]
        if candidates:
            ask.note(f"no time of day given: {_DEFAULT_TIME}")
    if not candidates:
        raise _schedule_error(ask, pieces, starts[0])
    best = max(candidates, key=lambda found: (len(found.span), -min(found.span)))
    _refuse_dangling_time(ask, pieces, best)
    return best


def _refuse_dangling_time(ask: _Ask, pieces: list[str | None], found: _Found) -> None:
    """Refuse "every other day at 8" read as "every 2 days": the "at 8" would be lost."""
    after = max(found.span) + 1
    if after + 1 < len(pieces) and pieces[after] == "at" and pieces[after + 1] is not None:
        raise _schedule_error(ask, pieces, min(found.span))


def _candidates(ask: _Ask, pieces: list[str | None], start: int) -> list[_Found]:
    """The longest phrase from ``start`` that parses (a list of one, or empty)."""
    for end in range(_reach(ask.words, pieces, start), start, -1):
        text = _phrase(ask.words, pieces, start, end)
        if pieces[end - 1] != "and" and _parses(text, ask):
            return [_Found(text, frozenset(range(start, end)))]
    return []


def _time_said_apart(pieces: list[str | None], candidates: list[_Found]) -> bool:
    used = frozenset().union(*(found.span for found in candidates))
    return any(
        piece == "at" and index not in used and index + 1 < len(pieces) and pieces[index + 1]
        for index, piece in enumerate(pieces)
    )


def _at_default_time(ask: _Ask, pieces: list[str | None], start: int) -> list[_Found]:
    """``every friday`` with no time anywhere: at 9:00 (said in the summary)."""
    if any(piece == "at" for piece in pieces):
        return []
    for end in range(_reach(ask.words, pieces, start), start, -1):
        text = f"{_phrase(ask.words, pieces, start, end)} at {_DEFAULT_TIME}"
        if pieces[end - 1] != "and" and _parses(text, ask):
            return [_Found(text, frozenset(range(start, end)))]
    return []


def _with_time(ask: _Ask, pieces: list[str | None], start: int) -> list[_Found]:
    """``every weekday`` joined with an ``at 9:30`` said elsewhere, in grammar order."""
    found: list[_Found] = []
    for at in (i for i, piece in enumerate(pieces) if piece == "at"):
        for end in range(start + 1, _reach(ask.words, pieces, start) + 1):
            found += _joined(ask, pieces, (start, end), at)
    return found


def _joined(ask: _Ask, pieces: list[str | None], days: tuple[int, int], at: int) -> list[_Found]:
    """The longest ``at ...`` phrase from ``at`` that completes the ``days`` phrase."""
    start, end = days
    if start <= at < end:
        return []
    head = _phrase(ask.words, pieces, start, end)
    for at_end in range(_reach(ask.words, pieces, at), at + 1, -1):
        if at < start < at_end or pieces[at_end - 1] == "and":
            continue
        text = f"{head} {_phrase(ask.words, pieces, at, at_end)}"
        if _parses(text, ask):
            return [_Found(text, frozenset(range(start, end)) | frozenset(range(at, at_end)))]
    return []


def _reach(words: Sequence[_Word], pieces: list[str | None], start: int) -> int:
    """One past the last word a schedule from ``start`` could use."""
    end = start
    while end < len(pieces) and pieces[end] is not None:
        end += 1
        if words[end - 1].stop and words[end - 1].stop[0] in _BOUNDARIES:
            break
    return end


def _phrase(words: Sequence[_Word], pieces: list[str | None], start: int, end: int) -> str:
    return " ".join(text for _, text in _phrase_parts(words, pieces, start, end))


def _phrase_parts(
    words: Sequence[_Word], pieces: list[str | None], start: int, end: int
) -> list[tuple[int, str]]:
    """The phrase's pieces with the index of the word each one stands for."""
    parts: list[tuple[int, str]] = []
    for index in range(start, end):
        comma = "," if words[index].stop.startswith(",") and index < end - 1 else ""
        if pieces[index]:
            parts.append((index, f"{pieces[index]}{comma}"))
    return parts


def _parses(text: str, ask: _Ask) -> bool:
    try:
        parse_schedule(text, default_tz=ask.default_tz, now=ask.now, min_interval=ask.min_interval)
    except ValueError:  # ScheduleError, or a schedule's own check
        return False
    return True


def _schedule_error(ask: _Ask, pieces: list[str | None], start: int) -> _Unclear:
    """Why the schedule phrase at ``start`` fails, in `parse_schedule`'s own words."""
    end = start + 1
    reach = _reach(ask.words, pieces, start)
    while end < reach and ask.words[end].low not in _SEGMENT_STOPS:
        end += 1
    while end > start + 1 and pieces[end - 1] in ("and", ","):
        end -= 1
    text = _phrase(ask.words, pieces, start, end)
    said = _said(ask, start, end - 1)
    try:
        parse_schedule(text, default_tz=ask.default_tz, now=ask.now, min_interval=ask.min_interval)
    except ScheduleError as error:
        part = _said_for(ask, pieces, (start, end), error.part)
        return _Unclear(part, _requoted(str(error), error.part, part))
    except ValueError as error:
        return _Unclear(said, str(error))
    return _Unclear(said, "I couldn't fit this schedule together with the rest of the message")


def _said(ask: _Ask, first: int, last: int) -> str:
    """What the person wrote from word ``first`` to word ``last``, Slack's escaping undone."""
    return unescape(ask.message[ask.words[first].start : ask.words[last].end])


def _said_for(ask: _Ask, pieces: list[str | None], words: tuple[int, int], part: str) -> str:
    """The person's own words behind ``part`` of the schedule phrase the bot put together
    (which may have reordered, respelled or dropped some): a refusal quotes what they wrote."""
    parts = _phrase_parts(ask.words, pieces, *words)
    phrase = " ".join(text for _, text in parts)
    found = phrase.find(part) if part else -1
    if found < 0:
        return _said(ask, words[0], words[1] - 1)
    used: list[int] = []
    offset = 0
    # A piece stands for its word and the empty pieces after it (a phrase put in order).
    ends = [index for index, _ in parts[1:]] + [words[1]]
    for (index, text), next_index in zip(parts, ends, strict=True):
        if offset < found + len(part) and found < offset + len(text):
            used += [index, next_index - 1]
        offset += len(text) + 1
    return _said(ask, min(used), max(used))


def _requoted(reason: str, part: str, said: str) -> str:
    """``reason`` quoting ``said`` where the schedule parser quoted its own ``part``."""
    if part == said:
        return reason
    quoted = f"`{said}`" if '"' in said else f'"{said}"'
    for theirs in (f'"{part}"', f"`{part}`"):
        if theirs in reason:
            return reason.replace(theirs, quoted, 1)
    return reason
