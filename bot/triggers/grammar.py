"""The grammar of ``/trigger add``.

    /trigger add NAME SCHEDULE KIND TARGET [when CONDITION] [#channel] [key=value ...]

The schedule is every word between the name and the first kind keyword (http, rss, json,
csv, message, report, email). ``#channel`` and ``key=value`` options may also stand between
the URL and ``when``. A condition runs from ``when`` to the trailing channel and options, and is kept as
the user wrote it (Slack's escaping undone, curly quotes made straight) for the evaluator.

Options are ``key=value``; ``header.NAME=…`` and ``query.NAME=…`` keep NAME as written, and
``body=…`` keeps its quotes (a JSON body is made of them: write it without spaces outside
its strings). The request and scan options are checked by `bot.triggers.fetching`.

A message's text is one quoted string, or every word after ``message`` up to the trailing
channel and options. It keeps Slack's ``<@U123>``/``<#C123|x>``/``<https://...>`` references
as sent so they still render when posted; ``&amp;``, ``&lt;`` and ``&gt;`` are decoded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from bot.credentials.refs import RefError, parse_auth
from bot.mail.imap import MailError, parse_mailbox_url
from bot.mail.watch import MAX_FETCH
from bot.names import NAME_RULE, valid_name
from bot.slack.text import (
    CommandSyntaxError,
    Token,
    link_target,
    parse_channel,
    parse_url,
    scan,
    split_key_value,
    unescape,
)
from bot.triggers.fetching import option_check, option_keys
from bot.triggers.schedule import Schedule, ScheduleError, parse_duration_or_none, parse_schedule
from bot.triggers.spec import KINDS, TriggerKind, TriggerSpec

_KIND_BY_WORD: Final[Mapping[str, TriggerKind]] = {kind: kind for kind in KINDS}

_CURLY_QUOTES: Final = str.maketrans({"“": '"', "”": '"'})
# An example command per kind: (name, schedule, what follows the kind keyword).
_EXAMPLES: Final[Mapping[TriggerKind, tuple[str, str, str]]] = {
    "http": ("site", "every 5m", "https://example.com"),
    "rss": ("blog", "every 30m", "https://example.com/feed.xml #news"),
    "json": (
        "status",
        "every 5m",
        'https://status.example.com/api/v2/status.json when json.status.indicator != "none"',
    ),
    "csv": ("weekly", "every monday at 9am", "https://example.com/export/weekly.csv #ops"),
    "message": ("standup", "every weekday at 9:30", '"Standup in 5 minutes" #team'),
    "report": ("weekly", "every monday at 9am", "#ops"),
    "email": (
        "support",
        "every 5m",
        "imaps://support%40example.com@imap.example.com/INBOX auth=basic:support-mail #support",
    ),
}


class TriggerSyntaxError(ValueError):
    """A ``/trigger add`` command that cannot be understood.

    ``part`` is the exact fragment at fault; ``example`` is a whole command that works;
    ``field`` is the part of the definition it is about (as a form names its fields:
    name, schedule, kind, target, condition, channel, options).
    """

    def __init__(self, message: str, *, part: str, example: str, field: str) -> None:
        super().__init__(f"{message}. Example: {example}")
        self.part = part
        self.example = example
        self.field = field


@dataclass(frozen=True)
class _Body:
    """What follows the kind keyword, split up."""

    target: str | None
    condition: str | None
    extras: list[Token]  # must all be #channel or key=value


def example_command(kind: TriggerKind = "http", schedule: str | None = None) -> str:
    """A working ``/trigger add`` command for ``kind``, optionally with another schedule."""
    name, default_schedule, tail = _EXAMPLES[kind]
    return f"/trigger add {name} {schedule or default_schedule} {kind} {tail}"


def parse_trigger_add(
    text: str, *, default_tz: ZoneInfo, now: datetime, min_interval: timedelta
) -> TriggerSpec:
    """Parse what follows ``/trigger add`` (still Slack-escaped) into a `TriggerSpec`.

    Raises `TriggerSyntaxError` naming the part at fault and giving a working example.
    """
    tokens = _scan(text)
    name = _parse_name(tokens)
    kind_at = _find_kind(tokens, text)
    kind = _KIND_BY_WORD[tokens[kind_at].text.lower()]
    schedule = _parse_schedule(text, tokens[1:kind_at], kind, default_tz, now, min_interval)
    body = _BODY_PARSERS[kind](text, tokens[kind_at + 1 :], tokens[kind_at])
    channel, options = _parse_extras(body.extras, kind)
    schedule_text = _raw(text, tokens[1:kind_at])
    return TriggerSpec(
        name, schedule, kind, body.target, body.condition, channel, options, schedule_text
    )


def _scan(text: str) -> list[Token]:
    try:
        return [_raw_body(text, token) for token in scan(text)]
    except CommandSyntaxError as error:
        raise TriggerSyntaxError(
            str(error), part=error.part, example=example_command(), field="schedule"
        ) from None


def _raw_body(text: str, token: Token) -> Token:
    """A ``body=`` option as typed, quotes kept (one pair around it all is dropped)."""
    raw = text[token.start : token.end]
    if raw[:5].lower() != "body=":
        return token
    value = unescape(raw[5:]).translate(_CURLY_QUOTES)
    if len(value) >= 2 and value[0] == value[-1] == '"' and value.count('"') == 2:
        value = value[1:-1]
    return Token(f"body={value}", token.start, token.end, quoted=False)


def _parse_name(tokens: Sequence[Token]) -> str:
    if not tokens:
        raise TriggerSyntaxError(
            "I need a name first", part="", example=example_command(), field="name"
        )
    name = valid_name(tokens[0].text)
    if name is None:
        raise TriggerSyntaxError(
            f'"{tokens[0].text}" can\'t be a name: use {NAME_RULE}',
            part=tokens[0].text,
            example=example_command(),
            field="name",
        )
    return name


def _find_kind(tokens: Sequence[Token], text: str) -> int:
    for index, token in enumerate(tokens[1:], start=1):
        if not token.quoted and token.text.lower() in _KIND_BY_WORD:
            return index
    raise TriggerSyntaxError(
        "I couldn't find what to check: expected http, rss, json, csv, message, report or email "
        "after the schedule",
        part=_raw(text, tokens[1:]),
        example=example_command(),
        field="kind",
    )


def _raw(text: str, tokens: Sequence[Token]) -> str:
    """The user's own text for a run of tokens, unescaped, spacing kept."""
    return unescape(text[tokens[0].start : tokens[-1].end]) if tokens else ""


def _parse_schedule(
    text: str,
    tokens: Sequence[Token],
    kind: TriggerKind,
    default_tz: ZoneInfo,
    now: datetime,
    min_interval: timedelta,
) -> Schedule:
    if not tokens:
        raise TriggerSyntaxError(
            f"I need a schedule between the name and {kind}",
            part=kind,
            example=example_command(kind),
            field="schedule",
        )
    try:
        return parse_schedule(
            _raw(text, tokens), default_tz=default_tz, now=now, min_interval=min_interval
        )
    except ScheduleError as error:
        example = example_command(kind, error.example)
        raise TriggerSyntaxError(
            str(error), part=error.part, example=example, field="schedule"
        ) from None


# What follows the kind keyword


def _url_body(text: str, tokens: Sequence[Token], kind_token: Token) -> _Body:
    kind = _KIND_BY_WORD[kind_token.text.lower()]
    if not tokens:
        raise TriggerSyntaxError(
            f"{kind} needs a URL to check",
            part=kind_token.text,
            example=example_command(kind),
            field="target",
        )
    url = _url_of(tokens[0], kind)
    rest = list(tokens[1:])
    when_at = next((i for i, token in enumerate(rest) if _is_word(token, "when")), None)
    if when_at is None:
        return _Body(url, None, rest)
    condition_tokens, extras = _split_extras(rest[when_at + 1 :])
    if not condition_tokens:
        raise TriggerSyntaxError(
            "when needs a condition",
            part=rest[when_at].text,
            example=example_command(kind),
            field="condition",
        )
    condition = _raw(text, condition_tokens).translate(_CURLY_QUOTES)
    return _Body(url, condition, rest[:when_at] + extras)


def _csv_body(text: str, tokens: Sequence[Token], kind_token: Token) -> _Body:
    body = _url_body(text, tokens, kind_token)
    if body.condition is not None:
        raise TriggerSyntaxError(
            "a csv trigger takes no condition: it posts a report with "
            "/trigger template, or each new row with each=rows key=FIELD",
            part=body.condition,
            example=example_command("csv"),
            field="condition",
        )
    return body


def _message_body(text: str, tokens: Sequence[Token], kind_token: Token) -> _Body:
    if tokens and tokens[0].quoted:
        message, extras = tokens[0].text, list(tokens[1:])
    else:
        words, extras = _split_extras(tokens)
        message = _raw(text, words)
    if not message.strip():
        raise TriggerSyntaxError(
            "message needs the text to post",
            part=kind_token.text,
            example=example_command("message"),
            field="target",
        )
    return _Body(message, None, extras)


def _report_body(text: str, tokens: Sequence[Token], kind_token: Token) -> _Body:
    return _Body(None, None, list(tokens))


# --- email ----------------------------------------------------------------------------------


def _email_body(text: str, tokens: Sequence[Token], kind_token: Token) -> _Body:
    """``imaps://user@host/Mailbox`` (or ``imap://``), then the channel and options."""
    target = link_target(tokens[0].text) if tokens and not tokens[0].quoted else None
    if target is None:
        raise TriggerSyntaxError(
            "email needs the mailbox to watch, like imaps://support%40example.com@imap.example.com/INBOX",
            part=tokens[0].text if tokens else kind_token.text,
            example=example_command("email"),
            field="target",
        )
    try:
        parse_mailbox_url(target)
    except MailError as error:
        shown = _without_password(target)  # a password typed into the URL is not repeated
        raise TriggerSyntaxError(
            f"{error.reason}: {shown}", part=shown, example=example_command("email"),
            field="target",
        ) from None  # fmt: skip
    rest = list(tokens[1:])
    when = next((token for token in rest if _is_word(token, "when")), None)
    if when is not None:
        raise TriggerSyntaxError(
            "email takes no condition: send messages to channels with "
            "`/trigger route NAME RULE → #channel`",
            part=when.text,
            example=example_command("email"),
            field="condition",
        )
    return _Body(target, None, rest)


def _without_password(url: str) -> str:
    head, at, tail = url.rpartition("@")
    scheme, sep, userinfo = head.partition("://")
    if not at or not sep or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:••••@{tail}"


_BODY_PARSERS: Final[Mapping[TriggerKind, Callable[[str, Sequence[Token], Token], _Body]]] = {
    "http": _url_body,
    "rss": _url_body,
    "json": _url_body,
    "csv": _csv_body,
    "message": _message_body,
    "report": _report_body,
    "email": _email_body,
}


def _url_of(token: Token, kind: TriggerKind) -> str:
    url = parse_url(token.text)
    if url is not None:
        return url
    reason = (
        "only http and https URLs can be checked"
        if link_target(token.text) is not None
        else f"{kind} needs a URL to check, starting with https://"
    )
    raise TriggerSyntaxError(
        f'{reason}, not "{token.text}"',
        part=token.text,
        example=example_command(kind),
        field="target",
    )


def _is_word(token: Token, word: str) -> bool:
    return not token.quoted and token.text.lower() == word


def _is_extra(token: Token) -> bool:
    """A trailing ``#channel`` or ``key=value``, written without quotes."""
    if token.quoted:
        return False
    return parse_channel(token.text) is not None or _split_option(token.text) is not None


_DOTTED_OPTION: Final = re.compile(r"^((?:header|query)\.[^=\s]+)=(.*)$", re.IGNORECASE | re.DOTALL)


def _split_option(text: str) -> tuple[str, str] | None:
    """``key=value``; ``header.X-Api-Key=…`` and ``query.status=…`` keep the name's case."""
    dotted = _DOTTED_OPTION.match(text)
    if dotted is None:
        return split_key_value(text)
    prefix, _, name = dotted[1].partition(".")
    return f"{prefix.lower()}.{name}", dotted[2]


def _split_extras(tokens: Sequence[Token]) -> tuple[list[Token], list[Token]]:
    """Split off the trailing run of ``#channel`` and ``key=value`` tokens."""
    cut = len(tokens)
    while cut > 0 and _is_extra(tokens[cut - 1]):
        cut -= 1
    return list(tokens[:cut]), list(tokens[cut:])


# Channel and options


def _parse_extras(tokens: Sequence[Token], kind: TriggerKind) -> tuple[str | None, dict[str, str]]:
    channel: str | None = None
    options: dict[str, str] = {}
    for token in tokens:
        found = None if token.quoted else parse_channel(token.text)
        if found is not None and channel is None:
            channel = found.target
        elif found is not None:
            raise _extra_error("only one channel, please", token, kind)
        else:
            key, value = _option(token, kind)
            if key in options:
                raise _extra_error(f"{key} is given twice", token, kind)
            options[key] = value
    return channel, options


def parse_options(text: str, kind: TriggerKind) -> dict[str, str]:
    """A form's options field (``retries=3 timeout=5s``) → validated options.

    Raises `TriggerSyntaxError` (field ``options``) for anything else in it.
    """
    options: dict[str, str] = {}
    for token in _scan(text):
        key, value = _option(token, kind)
        if key in options:
            raise _extra_error(f"{key} is given twice", token, kind)
        options[key] = value
    return options


def _option(token: Token, kind: TriggerKind) -> tuple[str, str]:
    pair = None if token.quoted else _split_option(token.text)
    if pair is None:
        what = "a report takes no target" if kind == "report" else "I couldn't understand this"
        raise _extra_error(f"{what}: expected #channel or key=value", token, kind)
    key, value = pair
    check = _option_check(key, kind)
    if check is None:
        known = _known_options(kind)
        raise _extra_error(f'I don\'t know the option "{key}" (known: {known})', token, kind)
    problem = check(value)
    if problem is not None:
        raise _extra_error(f"{key} {problem}", token, kind)
    return key, value


def _extra_error(reason: str, token: Token, kind: TriggerKind) -> TriggerSyntaxError:
    return TriggerSyntaxError(
        f'{reason}: "{token.text}"', part=token.text, example=example_command(kind), field="options"
    )


def _positive_int(value: str) -> str | None:
    ok = value.isascii() and value.isdigit() and int(value) >= 1
    return None if ok else "must be a whole number of 1 or more"


def _zero_or_one(value: str) -> str | None:
    return None if value in ("0", "1") else "must be 0 or 1"


def _repeat_duration(value: str) -> str | None:
    span = parse_duration_or_none(value)
    ok = span is not None and span >= timedelta(minutes=1)
    return None if ok else "must be a duration of at least 1 minute, like 30m or 2h"


def _timeout_duration(value: str) -> str | None:
    span = parse_duration_or_none(value)
    ok = span is not None and timedelta(seconds=1) <= span <= timedelta(seconds=60)
    return None if ok else "must be between 1s and 60s, like 5s"


_OPTION_CHECKS: Final[Mapping[str, Callable[[str], str | None]]] = {
    "retries": _positive_int,
    "recover": _positive_int,
    "max": _positive_int,
    "repeat": _repeat_duration,
    "timeout": _timeout_duration,
    "latest": _zero_or_one,
}


# --- the options of an email trigger ------------------------------------------------------


def _basic_auth(value: str) -> str | None:
    try:
        ref = parse_auth(value)
    except RefError as error:
        return f"is not understood ({error.part}): give basic:SECRET"
    if ref.scheme != "basic":
        return "must be basic:SECRET: a mailbox logs in with a user name and password"
    return None


def _tls_off(value: str) -> str | None:
    return None if value.lower() == "off" else "can only be off (TLS is on by default)"


def _latest_count(value: str) -> str | None:
    ok = value.isascii() and value.isdigit() and int(value) <= MAX_FETCH
    return None if ok else f"must be a whole number from 0 to {MAX_FETCH}"


# Options only some kinds take, and kinds' own readings of common ones.
_KIND_OPTION_CHECKS: Final[Mapping[TriggerKind, Mapping[str, Callable[[str], str | None]]]] = {
    "email": {"auth": _basic_auth, "tls": _tls_off, "latest": _latest_count},
}


def _option_check(key: str, kind: TriggerKind) -> Callable[[str], str | None] | None:
    own = _KIND_OPTION_CHECKS.get(kind)
    if own is not None:  # a kind with options of its own (email) takes those and the common ones
        return own.get(key) or _OPTION_CHECKS.get(key)
    return option_check(key, kind) or _OPTION_CHECKS.get(key)


def _known_options(kind: TriggerKind) -> str:
    own = _KIND_OPTION_CHECKS.get(kind)
    extra = set(own) if own is not None else {*option_keys(), "query.NAME"}
    return ", ".join(sorted({*_OPTION_CHECKS, *extra}))


def parse_duration(text: str) -> timedelta:
    """``30s``, ``5m``, ``2h``, ``1d``, ``2w``, ``500ms``, ``5 minutes`` → a timedelta.

    Raises `TriggerSyntaxError` (``part`` is the text, ``example`` is ``5m``).
    """
    span = parse_duration_or_none(text)
    if span is None:
        raise TriggerSyntaxError(
            f'I couldn\'t understand the duration "{text}": use a number and a unit '
            "(ms, s, m, h, d, w)",
            part=text,
            example="5m",
            field="options",
        )
    return span
