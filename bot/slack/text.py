"""Slash-command text as Slack sends it, split into tokens and references.

Our slash commands are declared with ``should_escape: true``, so Slack rewrites what the user
typed before we see it:

* links become ``<https://x.example/feed>`` or ``<https://x.example|x.example>``;
* channels become ``<#C123ABC|name>`` (sometimes ``<#C123ABC>`` or ``<#C123ABC|>``);
* users become ``<@U123>`` or ``<@U123|name>``;
* a literal ``&``, ``<`` or ``>`` the user typed becomes ``&amp;``, ``&lt;`` or ``&gt;``.

Because a literal ``<`` always arrives as ``&lt;``, a raw ``<`` can only open one of Slack's
references. So the text is split first and unescaped afterwards. People also type the plain
forms (``https://...``, ``#name``), and Slack clients replace straight quotes with curly ones,
so both kinds of quotes group words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

_QUOTES: Final = frozenset('"“”')
_HTML_ENTITIES: Final = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
_PLAIN_LINK: Final = re.compile(r"^[a-z][a-z0-9+.-]*://\S+$", re.IGNORECASE)
_CHANNEL_ESCAPE: Final = re.compile(r"^<#([A-Z0-9]+)(?:\|([^>]*))?>$")
_CHANNEL_NAME: Final = re.compile(r"^#([^\s#<>|@]{1,80})$")
_USER_ESCAPE: Final = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_KEY_VALUE: Final = re.compile(r"^([a-z][a-z0-9_]*)=(?!=)(.*)$", re.IGNORECASE | re.DOTALL)


class CommandSyntaxError(ValueError):
    """The command text cannot be split into tokens; ``part`` is the offending fragment."""

    def __init__(self, message: str, *, part: str) -> None:
        super().__init__(message)
        self.part = part


@dataclass(frozen=True)
class Token:
    """One word of command text.

    ``text`` is unescaped and has its quotes removed. ``start`` and ``end`` are offsets into
    the raw (still escaped) text, so a caller can take a raw stretch of several tokens.
    ``quoted`` is true when any part of the word was inside quotes.
    """

    text: str
    start: int
    end: int
    quoted: bool


@dataclass(frozen=True)
class ChannelRef:
    """A channel the user named: Slack's escape gives the id, a typed ``#name`` only the name."""

    id: str | None
    name: str | None

    @property
    def target(self) -> str:
        """Where to post: the id when known, else ``#name`` (posted to by name)."""
        return self.id or f"#{self.name}"


def unescape(text: str) -> str:
    """Undo Slack's HTML escaping of ``&``, ``<`` and ``>`` (and nothing else)."""
    for entity, char in _HTML_ENTITIES:
        text = text.replace(entity, char)
    return text


def scan(text: str) -> list[Token]:
    """Split raw command text into tokens, keeping quoted strings and ``<...>`` together.

    Raises `CommandSyntaxError` for a quote that is never closed.
    """
    tokens: list[Token] = []
    position = _skip_spaces(text, 0)
    while position < len(text):
        token = _read_token(text, position)
        tokens.append(token)
        position = _skip_spaces(text, token.end)
    return tokens


def tokenize(text: str) -> list[str]:
    """The texts of `scan`: words, quoted strings without their quotes, and ``<...>`` escapes."""
    return [token.text for token in scan(text)]


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


def _read_token(text: str, start: int) -> Token:
    pieces: list[str] = []
    quoted = False
    position = start
    while position < len(text) and not text[position].isspace():
        piece_end = _piece_end(text, position)
        if text[position] in _QUOTES:
            pieces.append(text[position + 1 : piece_end - 1])
            quoted = True
        else:
            pieces.append(text[position:piece_end])
        position = piece_end
    return Token(unescape("".join(pieces)), start, position, quoted)


def _piece_end(text: str, position: int) -> int:
    """Where the piece starting at ``position`` ends: after a quote, an escape, or one char."""
    if text[position] in _QUOTES:
        return _closing_quote(text, position) + 1
    if text[position] == "<":
        close = text.find(">", position)
        if close != -1 and "<" not in text[position + 1 : close]:
            return close + 1
    return position + 1


def _closing_quote(text: str, opening: int) -> int:
    for position in range(opening + 1, len(text)):
        if text[position] in _QUOTES:
            return position
    fragment = unescape(text[opening:])
    raise CommandSyntaxError(f"The quote in {fragment} is never closed", part=fragment)


def link_target(token: str) -> str | None:
    """The address a link token points at, whatever its scheme; None when it is no link.

    ``<mailto:a@b.example|a@b.example>`` → ``mailto:a@b.example``; a plain token needs a
    ``scheme://`` prefix, so ``file:///etc/passwd`` counts but ``note:x`` does not.
    """
    if token.startswith("<") and token.endswith(">"):
        target = token[1:-1].split("|", 1)[0]
        return target if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) else None
    return token if _PLAIN_LINK.match(token) else None


def parse_url(token: str) -> str | None:
    """An http(s) URL from ``<https://a.b/c|a.b/c>`` or a plain ``https://a.b/c``; else None."""
    target = link_target(token)
    if target is None:
        return None
    try:
        parts = urlsplit(target)
        host = parts.hostname
    except ValueError:  # e.g. a bracketed host that is not an IPv6 address: http://[zz]/
        return None
    return target if parts.scheme.lower() in ("http", "https") and host else None


def parse_channel(token: str) -> ChannelRef | None:
    """``<#C123|ops>`` → ChannelRef("C123", "ops"); ``#ops`` → ChannelRef(None, "ops")."""
    escaped = _CHANNEL_ESCAPE.match(token)
    if escaped:
        return ChannelRef(id=escaped[1], name=escaped[2] or None)
    typed = _CHANNEL_NAME.match(token)
    return ChannelRef(id=None, name=typed[1].lower()) if typed else None


def parse_user(token: str) -> str | None:
    """The user id in ``<@U123>`` or ``<@U123|name>``; None for anything else."""
    escaped = _USER_ESCAPE.match(token)
    return escaped[1] if escaped else None


def split_key_value(token: str) -> tuple[str, str] | None:
    """``Retries=3`` → ("retries", "3"); None when the token is not ``key=value``."""
    found = _KEY_VALUE.match(token)
    return (found[1].lower(), found[2]) if found else None


def parse_key_values(tokens: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``key=value`` tokens (keys lower-cased) from the others, keeping their order.

    Raises `CommandSyntaxError` when a key is given twice.
    """
    options: dict[str, str] = {}
    rest: list[str] = []
    for token in tokens:
        pair = split_key_value(token)
        if pair is None:
            rest.append(token)
        elif pair[0] in options:
            raise CommandSyntaxError(f"{pair[0]} is given twice", part=token)
        else:
            options[pair[0]] = pair[1]
    return options, rest
