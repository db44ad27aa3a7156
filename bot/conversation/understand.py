"""Plain-language requests, turned into a trigger or hook spec.

People DM the bot or @mention it in plain English ("check https://status.example.com every
5 minutes and tell #ops if it's down"). `understand` turns such a message into a
`TriggerSpec` or `HookSpec`, the same value the slash commands and the modals produce. It is
a small rule-based reader, not a language model, in two passes: `phrasing.respell` first
turns everyday phrasing into the grammar's words (times of day, frequency words, quarters,
time zones, names) and records every default it chose; then:

* the schedule is found by `spoken_schedules` (the longest phrase the grammar accepts, in
  grammar order; a day with no time runs at 9:00, said);
* the kind comes from the words: ``remind`` → message; ``webhook``/``hook`` → a hook; a mail
  address → email; a link with ``report`` → a report with a starter template; a link with
  "new leads/orders/rows" → a scan of new items; another link → http, json (the condition
  reads ``data.``/``json.``) or rss (feed words, or a feed-like path); ``report`` → a
  digest; ``post``/``say``/``tell`` without a link → message; a check with no link asks
  for the address;
* ``if``/``when`` starts a condition, read by `spoken_conditions`; one that cannot be read
  is refused, never dropped;
* a missing or ambiguous piece (two links, no channel in a DM, no schedule for a post, an
  unknown zone) is one `Question`; ``answers`` carries the answers given so far.

A refusal names the part at fault as the person wrote it, even where the bot had respelled
or reordered it ("each" for "every", a day of the month moved behind "every month").

A trigger request is written out as ``/trigger add`` text (Slack's escaped form, like a
slash command's) and read back with the slash grammar (`parse_trigger_add`), so a proposal
means exactly what the same typed command would.

A ``message`` or ``report`` without a channel goes to the conversation where it was asked
(in a DM the reader asks first, unless "me"/"here" was said); the caller supplies that
channel. "remind me" starts the message with a mention of the user
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

from bot.conversation.phrasing import respell
from bot.conversation.questions import HERE, Answers, Question
from bot.conversation.reading import (
    CHECK_WORDS,
    CONDITION_WORDS,
    DEFAULT_TIME,
    QUOTE_CHARS,
    REMIND_WORDS,
    SAY_WORDS,
    Ask,
    Asking,
    Unclear,
    Word,
    fully_quoted,
    strip_filler,
    words_of,
)
from bot.conversation.spoken_conditions import (
    Condition,
    condition_help,
    read_condition,
)
from bot.conversation.spoken_schedules import find_schedule, schedule_in
from bot.slack.text import (
    parse_url,
    parse_user,
    unescape,
)
from bot.triggers.conditions import ConditionError, compile_condition
from bot.triggers.grammar import TriggerSyntaxError, parse_trigger_add
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
    {"a", "an", "the", "my", "our", "this", "post", "send", "csv", "json"}
)
_MAILBOX: Final = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+$")
_NAME_LENGTH: Final = 40

# Longer than any request worth reading; refused before any parsing, so that the cost of
# reading a message stays bounded whatever people paste.
MAX_REQUEST_CHARS: Final = 1000

_HOOK_WORDS: Final = frozenset({"webhook", "webhooks", "hook", "hooks"})
_REPORT_WORDS: Final = frozenset({"report", "reports", "digest", "summary"})
_CHANGE_WORDS: Final = frozenset(
    {"delete", "remove", "stop", "cancel", "pause", "disable", "mute", "don't", "dont"}
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
_MARKER_WORDS: Final = frozenset({"to", "that", "about", "saying"})
_LEAD_IN_WORDS: Final = frozenset({"a", "an", "the", "message", "reminder", "note"})
_TO_WORDS: Final = frozenset({"to", "in", "into", "for"})
_NAME_STOPWORDS: Final = frozenset({"a", "an", "the", "to", "do", "our", "my", "your", "about"})


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
        has_quote = any(char in QUOTE_CHARS for char in self.target)
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
            raise Unclear(*ask.heard.refusal)
        if ask.heard.question is not None:
            return ask.heard.question
        _refuse_changes(ask.words)
        intent = _intent_of(ask)
        return _with_notes(_BUILDERS[intent](ask), ask)
    except Asking as asking:
        return asking.question
    except Unclear as unclear:
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


def _with_notes(proposal: Proposal, ask: Ask) -> Proposal:
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
) -> Ask:
    cleaned = strip_filler(message)
    heard = respell(cleaned, answers, default_tz.key or "UTC", now.astimezone(default_tz).date())
    zone = ZoneInfo(heard.zone) if heard.zone else default_tz
    if "when" in answers:
        heard.text = f"{heard.text} {answers['when']}"
    if "url" in answers and "<" not in heard.text and "://" not in heard.text:
        heard.text = f"{heard.text} <{answers['url']}>"
    words = words_of(heard.text)
    return Ask(heard.text, words, zone, now, min_interval, user_id, heard, answers, False)


def _refuse_changes(words: Sequence[Word]) -> None:
    if words and words[0].low in _CHANGE_WORDS:
        raise Unclear(
            words[0].text,
            "I can only set new things up from a message: change existing ones with "
            "/trigger or /hook",
        )


def _intent_of(ask: Ask) -> _Intent:
    words = ask.words
    lows = {word.low for word in words if not word.quoted}
    links = [word.link for word in words if word.link is not None]
    if lows & REMIND_WORDS:
        return "message"
    if lows & _HOOK_WORDS:
        return "hook"
    if any(link.lower().startswith("mailto:") for link in links) or _mailbox_word(words):
        return "email"
    if links:
        return _link_intent(ask, lows)
    if lows & _REPORT_WORDS:
        return "report"
    if lows & (CHECK_WORDS | CONDITION_WORDS) or lows & _ABOUT_A_SITE:
        raise Asking(_ADDRESS_QUESTION)
    if lows & SAY_WORDS:
        return "message"
    raise Unclear("", f"I didn't understand that. {_HELP}")


def _link_intent(ask: Ask, lows: set[str]) -> _Intent:
    """A report from the address, a scan of its new items, or a check of it."""
    has_condition = bool(lows & CONDITION_WORDS)
    if lows & _REPORT_WORDS and not has_condition:
        return "data"
    if lows & _NEW_WORDS and lows & _ITEM_WORDS and not _feed_like(ask.words):
        return "items"
    return "check"


def _feed_like(words: Sequence[Word]) -> bool:
    lows = {word.low for word in words}
    paths = [urlsplit(word.link).path for word in words if word.link is not None]
    return bool(lows & _FEED_ONLY_WORDS) or any(_FEED_PATH.search(path) for path in paths)


def _mailbox_word(words: Sequence[Word]) -> Word | None:
    return next((w for w in words if not w.quoted and _MAILBOX.match(w.text)), None)


# ---------------------------------------------------------------------------------------------
# Builders, one per intent


def _build_check(ask: Ask) -> Proposal:
    link_at = _the_link(ask)
    url = _http_url(ask.words[link_at])
    condition = read_condition(ask.words)
    if condition.text is None and not condition.span:
        _refuse_unread_condition(ask.words)
    kind = _check_kind(ask.words, url, condition)
    schedule = schedule_in(ask, condition.span) or _default_schedule(kind, ask)
    if kind == "rss" and condition.text is not None:
        raise Unclear(condition.said, "I post every new item of a feed; I can't filter them")
    channel = _destination(ask, condition.span)
    name = _name(ask, _host_name(url))
    draft = _Draft(name, schedule, kind, _escape(url), condition.text, channel)
    return _checked(draft, ask)


def _refuse_unread_condition(words: Sequence[Word]) -> None:
    """Words that describe a condition, said without "if"/"when" ("30 days before the
    certificate expires"): refused with the way to say it, never dropped."""
    hint = next((w for w in words if not w.quoted and w.low in _CONDITION_HINTS), None)
    if hint is not None:
        raise Unclear(hint.text, condition_help(hint.text))


def _build_data_report(ask: Ask) -> Proposal:
    """ "every day at 9am post the sales report from URL to #sales": a report with a
    starter template, posted on every run (not an up/down check)."""
    url = _http_url(ask.words[_the_link(ask)])
    schedule = schedule_in(ask, frozenset()) or _ask_when(ask)
    kind: TriggerKind = "csv" if _is_csv(ask.words, url) else "json"
    name = _name(ask, _report_name(ask.words) or _host_name(url))
    channel = _destination(ask, frozenset())
    draft = _Draft(name, schedule, kind, _escape(url), None, channel)
    ask.note(
        f"it posts on every run with a starter template: `/trigger template {name}` changes it"
    )
    proposal = _checked(draft, ask)
    return replace(proposal, template=_starter_template(kind, name))


def _build_items(ask: Ask) -> Proposal:
    """ "post each new lead from URL to #sales": a scan that posts each new item once."""
    url = _http_url(ask.words[_the_link(ask)])
    kind: TriggerKind = "csv" if _is_csv(ask.words, url) else "json"
    schedule = schedule_in(ask, frozenset()) or _default_schedule(kind, ask)
    listed = "rows" if kind == "csv" else ask.answers.get("list")
    if listed is None:
        raise Asking(_LIST_QUESTION)
    ask.note("items are told apart by their `id` field (`key=` in the command)")
    name = _name(ask, _host_name(url))
    channel = _destination(ask, frozenset())
    options = f"each={listed} key=id"
    draft = _Draft(name, schedule, kind, _escape(url), None, channel, options)
    return _checked(draft, ask)


def _build_email(ask: Ask) -> Proposal:
    """ "check support@example.com every 5 minutes": a mailbox watch, its server and the
    secret holding its password said in the summary."""
    address = _mail_address(ask.words)
    local, _, domain = address.partition("@")
    name = _name(ask, _slug(local) or "mail")
    secret = f"{_slug(local) or 'mail'}-mail"
    host = f"imap.{domain.lower()}"
    schedule = schedule_in(ask, frozenset()) or _default_schedule("email", ask)
    ask.note(
        f"the mail server is {host}, signed in with the secret `{secret}` (set it with "
        f"`/secret set {secret} for {host} user={address}`)"
    )
    target = f"imaps://{local}%40{domain}@{host}/INBOX"
    channel = _destination(ask, frozenset())
    draft = _Draft(name, schedule, "email", target, None, channel, f"auth=basic:{secret}")
    return _checked(draft, ask)


def _build_report(ask: Ask) -> Proposal:
    schedule = schedule_in(ask, frozenset()) or _ask_when(ask)
    channel = _destination(ask, frozenset())
    draft = _Draft(_name(ask, "report"), _calendar(schedule, ask), "report", None, None, channel)
    return _checked(draft, ask)


def _build_message(ask: Ask) -> Proposal:
    found = find_schedule(ask, frozenset())
    if found is None:
        _ask_when(ask)
    verbs = [i for i, word in enumerate(ask.words) if word.low in REMIND_WORDS | SAY_WORDS]
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


def _build_hook(ask: Ask) -> Proposal:
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


_BUILDERS: Final[Mapping[_Intent, Callable[[Ask], Proposal]]] = {
    "message": _build_message,
    "hook": _build_hook,
    "check": _build_check,
    "report": _build_report,
    "data": _build_data_report,
    "items": _build_items,
    "email": _build_email,
}


def _no_schedule(reason: str) -> NoReturn:
    raise Unclear("", reason)


def _ask_when(ask: Ask) -> NoReturn:
    raise Asking(_WHEN_QUESTION)


def _default_schedule(kind: TriggerKind, ask: Ask) -> str:
    """A check, a mailbox or a scan runs every 5 minutes unless told otherwise (a feed
    every 15), and the summary says so."""
    said = next((w for w in ask.words if w.low.startswith(_SCHEDULE_STEMS)), None)
    if said is not None:  # "hourly-ish": a schedule was meant, but not one I can read
        raise Unclear("", 'I couldn\'t tell how often to check: add e.g. "every 5 minutes"')
    schedule = _FEED_SCHEDULE if kind == "rss" else _CHECK_SCHEDULE
    ask.note(f"no schedule given: {schedule}")
    return schedule


def _calendar(schedule: str, ask: Ask) -> str:
    """A post said "daily"/"weekly"/"monthly" without a time goes out at 9:00, not at the
    minute the request happened to be made."""
    day_time = _CALENDAR_DEFAULTS.get(schedule)
    if day_time is None:
        return schedule
    ask.note(f"no time of day given: {DEFAULT_TIME}")
    return day_time


def _name(ask: Ask, default: str) -> str:
    """The name the person gave ("called deploys"), else ``default``."""
    given = ask.heard.name
    if given is None:
        return default
    name = _slug(given)
    if not name:
        raise Unclear(given, 'a name is letters, digits and dashes, e.g. "called site-check"')
    if name != given:
        ask.note(f'the name "{given}" written as {name}')
    return name


def _destination(ask: Ask, skip: frozenset[int]) -> str | None:
    """The channel named, the one answered, or (in a DM, when none is said) a question."""
    return _the_channel(ask.words, skip) or _answered_channel(ask)


def _answered_channel(ask: Ask) -> str | None:
    answer = ask.answers.get("channel")
    if answer is not None:
        if answer == HERE:
            return None
        return answer if answer.startswith("#") else f"<#{answer}>"
    if ask.ask_for_channel and not _says_here(ask.words):
        raise Asking(_CHANNEL_QUESTION)
    return None


def _says_here(words: Sequence[Word]) -> bool:
    return any(
        word.low in _HERE_WORDS or (_user_of(word) is not None) for word in words if not word.quoted
    )


def _report_name(words: Sequence[Word]) -> str | None:
    """ "the sales report" → sales; "the weekly numbers report" → numbers."""
    for index, word in enumerate(words):
        if word.low in _REPORT_WORDS and index > 0:
            before = words[index - 1]
            if before.text.isalpha() and before.low not in _REPORT_NAME_STOPS:
                return _slug(before.text) or None
    return None


def _is_csv(words: Sequence[Word], url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".csv") or any(w.low == "csv" for w in words)


def _starter_template(kind: TriggerKind, name: str) -> str:
    if kind == "csv":
        return f"*{name}*\n{{{{ rows|table }}}}"
    return f"*{name}*\n```{{{{ json|tojson }}}}```"


def _mail_address(words: Sequence[Word]) -> str:
    for word in words:
        link = word.link
        if link is not None and link.lower().startswith("mailto:"):
            address = link[len("mailto:") :].split("?")[0]
            if _MAILBOX.match(address):
                return address
    found = _mailbox_word(words)
    if found is None:
        raise Unclear("", "I couldn't read the mail address: e.g. check support@example.com")
    return found.text


# ---------------------------------------------------------------------------------------------
# The final check: one parser decides


def _checked(draft: _Draft, ask: Ask) -> TriggerProposal:
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
        raise Unclear(error.part, str(error)) from None
    except ConditionError as error:
        raise Unclear(draft.condition or "", str(error)) from None
    expected = None if draft.target is None else unescape(draft.target)
    if spec.kind != draft.kind or spec.target != expected:
        raise Unclear(expected or "", "I couldn't turn this into a command without changing it")
    return TriggerProposal(spec)


# ---------------------------------------------------------------------------------------------
# Links, channels, names


def _the_link(ask: Ask) -> int:
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
        raise Asking(Question("url", "I can check one address at a time: which one?", options))
    return links[0]


def _http_url(word: Word) -> str:
    url = parse_url(word.text)
    if url is None:
        raise Unclear(_link_text(word), "I can only check http:// and https:// addresses")
    return url


def _link_text(word: Word) -> str:
    return word.link or word.text


def _escape(text: str) -> str:
    """Slack's escaping of a literal ``&``, ``<`` and ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _check_kind(words: Sequence[Word], url: str, condition: Condition) -> TriggerKind:
    lows = {word.low for i, word in enumerate(words) if i not in condition.span}
    if lows & _FEED_WORDS or _FEED_PATH.search(urlsplit(url).path):
        return "rss"
    return "json" if condition.is_json else "http"


def _channel_index(words: Sequence[Word], skip: frozenset[int]) -> int | None:
    """The index of the one channel named outside ``skip``; a second one is refused."""
    found = [i for i, word in enumerate(words) if i not in skip and word.channel is not None]
    distinct = {_render_channel(words[i]) for i in found}
    if len(distinct) > 1:
        first = _render_channel(words[found[0]])
        second = next(i for i in found if _render_channel(words[i]) != first)
        raise Unclear(words[second].raw, "I can post to one channel: pick one")
    return found[0] if found else None


def _the_channel(words: Sequence[Word], skip: frozenset[int]) -> str | None:
    at = _channel_index(words, skip)
    return None if at is None else _render_channel(words[at])


def _render_channel(word: Word) -> str:
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


def _the_preset(words: Sequence[Word]) -> str | None:
    presets = [word for word in words if word.low in _PRESET_WORDS]
    distinct = {_PRESET_WORDS[word.low] for word in presets}
    if len(distinct) > 1:
        raise Unclear(presets[-1].text, "I can create one webhook at a time: pick one sender")
    return distinct.pop() if distinct else None


# ---------------------------------------------------------------------------------------------
# Messages: "remind #team: standup", "remind me to call Bob", "post "Lunch!" in #general"


def _split_message(words: Sequence[Word], after: list[int]) -> tuple[Word | None, list[int]]:
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


def _skip_lead_in(words: Sequence[Word], indexes: list[int]) -> list[int]:
    rest = list(indexes)
    while rest and words[rest[0]].low in _LEAD_IN_WORDS:
        rest = rest[1:]
    if len(rest) > 1 and words[rest[0]].low in _TO_WORDS and words[rest[1]].channel:
        rest = rest[1:]
    return rest


def _is_destination(word: Word) -> bool:
    return (
        word.low in ("me", "us", "here") or word.channel is not None or _user_of(word) is not None
    )


def _is_trailing_channel(words: Sequence[Word], rest: list[int]) -> bool:
    return words[rest[-2]].low in _TO_WORDS and words[rest[-1]].channel is not None


def _user_of(word: Word) -> str | None:
    return None if word.quoted else parse_user(word.text)


def _message_text(ask: Ask, destination: Word | None, body: list[int], verb: Word) -> str:
    """The text to post, as Slack sent it; "me" and users become a leading mention."""
    text = _raw_text(ask, body)
    if not text:
        raise Unclear(verb.text, "I couldn't tell what the message should say")
    if destination is not None and destination.low == "me":
        return f"<@{ask.user_id}> {text}"
    if destination is not None and _user_of(destination) is not None:
        return f"{destination.raw} {text}"
    return text


def _raw_text(ask: Ask, indexes: list[int]) -> str:
    """The message's own text for these words: runs of neighbours joined by one space."""
    if len(indexes) == 1 and fully_quoted(ask.words[indexes[0]]):
        return ask.words[indexes[0]].raw[1:-1].strip()
    runs: list[list[int]] = []
    for index in indexes:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    slices = [ask.message[ask.words[run[0]].start : ask.words[run[-1]].end] for run in runs]
    return " ".join(slices).strip()
