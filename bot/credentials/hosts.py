"""The hosts a secret may be sent to: parsing ``/secret set NAME for HOST[,HOST…]``.

A pattern is an exact host (``api.crm.example.com``), a wildcard (``*.example.com``) or
an IP literal (``192.0.2.7``, ``[2001:db8::1]``), each with an optional ``:port``.
Host names are compared as lower-case IDNA A-labels without a trailing dot, so
``EXAMPLE.com.``, ``example.com`` and ``ＥＸＡＭＰＬＥ.com`` are one host, and a
look-alike such as ``exаmple.com`` (Cyrillic а) is a different one.

Rules, chosen to fail closed:

* **Port.** A pattern without a port allows only the default port of an encrypted
  scheme: https on 443, imaps on 993, smtps on 465. Anything else, including every
  cleartext scheme (http, imap, smtp) and non-default ports, must be written out
  (``imap.example.com:143``, ``127.0.0.1:8080``); an explicit port allows any scheme on
  that port. So a bare host never sends a secret in clear text or to another service
  on the same machine (a debug server on :8080), and saying ``:80`` is the deliberate
  opt-in to clear text.
* **Wildcard depth.** ``*.example.com`` matches exactly one more label, as in TLS
  certificates (RFC 6125): ``api.example.com`` yes; ``example.com`` and
  ``a.b.example.com`` no. Deeper names are often delegated to someone else (tenants,
  customers), so sharing a secret with them must be asked for by another pattern.
* **Refused.** Schemes, paths, queries, fragments, user-info, empty labels, a bare
  ``*``, a ``*`` anywhere but as the whole first label, wildcards over IP literals,
  numeric look-alikes of IPv4 (``2130706433``, ``0x7f.1``), labels mixing scripts
  (Latin with Cyrillic or Greek), and wildcards over a public suffix: every single
  label (``*.com``), ``<registry>.<country>`` (``*.co.uk``, ``*.com.au``) and a short
  list of shared hosting domains (``*.github.io``, ``*.herokuapp.com``). The last list
  is partial: the full Public Suffix List would need a dependency.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from typing import Final, Literal

import idna
from yarl import URL

HostKind = Literal["name", "ipv4", "ipv6"]

EXAMPLE: Final = "api.crm.example.com, *.example.com or imap.example.com:993"

DEFAULT_PORTS: Final[dict[str, int]] = {
    "http": 80,
    "https": 443,
    "imap": 143,
    "imaps": 993,
    "smtp": 25,
    "smtps": 465,
}
# The only (scheme, port) pairs a pattern without a port allows: encrypted defaults.
_IMPLICIT_TARGETS: Final = frozenset({("https", 443), ("imaps", 993), ("smtps", 465)})

_FORBIDDEN_CHARACTERS: Final = frozenset("/?#@\\%&=;,'\"<>`{}|^ \t\r\n")
_PORT = re.compile(r"[1-9][0-9]{0,4}")
_DOTTED_QUAD = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_NUMBER_LABEL = re.compile(r"(?:[0-9]+|0x[0-9a-f]*)")
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

_REGISTRY_SECOND_LEVELS: Final = frozenset(
    {"co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go", "mil", "gob", "gouv"}
    | {"govt", "ltd", "plc", "nhs", "sch", "nom"}
)
_SHARED_HOSTING: Final = frozenset(
    {
        "github.io",
        "githubusercontent.com",
        "gitlab.io",
        "herokuapp.com",
        "netlify.app",
        "vercel.app",
        "pages.dev",
        "workers.dev",
        "appspot.com",
        "web.app",
        "firebaseapp.com",
        "azurewebsites.net",
        "cloudapp.net",
        "cloudfront.net",
        "blogspot.com",
        "onrender.com",
        "fly.dev",
        "ngrok.io",
        "ngrok.app",
        "ngrok-free.app",
        "trycloudflare.com",
        "glitch.me",
        "surge.sh",
        "deno.dev",
        "r2.dev",
        "run.app",
    }
)
# Every name under these belongs to some customer of the provider, never to one owner.
_SHARED_TREES: Final = frozenset({"amazonaws.com", "googleusercontent.com"})
# Scripts that may share a label (Chrome's IDN policy): Japanese, Chinese, Korean.
_SCRIPT_MIXES: Final = (
    frozenset({"LATIN", "CJK", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "CJK", "BOPOMOFO"}),
    frozenset({"LATIN", "CJK", "HANGUL"}),
)


class HostPatternError(ValueError):
    """A host binding that cannot be understood; ``part`` is the fragment at fault."""

    def __init__(self, message: str, *, part: str) -> None:
        super().__init__(f"{message}. Example: {EXAMPLE}")
        self.part = part


@dataclass(frozen=True)
class Target:
    """Where a request goes: scheme, normalised host and the port actually used."""

    scheme: str
    host: str
    port: int
    kind: HostKind

    @classmethod
    def of(cls, scheme: str, host: str, port: int | None = None) -> Target | None:
        """The target of a connection, or None if the host or scheme is not usable."""
        scheme = scheme.lower()
        normal = _normalise_request_host(host)
        effective = port if port is not None else DEFAULT_PORTS.get(scheme)
        if normal is None or effective is None:
            return None
        return cls(scheme, normal[1], effective, normal[0])

    @classmethod
    def of_url(cls, url: str) -> Target | None:
        """The target of a URL as aiohttp would connect to it, or None if unusable."""
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            return None
        if not parsed.scheme or parsed.raw_host is None:
            return None
        return cls.of(parsed.scheme, parsed.raw_host, parsed.explicit_port)


@dataclass(frozen=True)
class HostPattern:
    """One host a secret may be sent to.

    ``host`` is ASCII: lower-case A-labels without a trailing dot, dotted-quad IPv4 or
    compressed IPv6 without brackets; for a wildcard it is the part after ``*.``.
    """

    host: str
    kind: HostKind
    wildcard: bool = False
    port: int | None = None

    def __str__(self) -> str:
        """The canonical text, which `parse_host_pattern` reads back to an equal value."""
        host = f"[{self.host}]" if self.kind == "ipv6" else self.host
        prefix = "*." if self.wildcard else ""
        suffix = f":{self.port}" if self.port is not None else ""
        return f"{prefix}{host}{suffix}"

    def describe(self) -> str:
        """As shown to people: the canonical text, with the Unicode form of an IDN."""
        text = str(self)
        if self.kind == "name" and "xn--" in self.host:
            return f"{text} ({idna.decode(self.host)})"
        return text

    def allows(self, scheme: str, host: str, port: int | None = None) -> bool:
        """May a secret bound here go to ``scheme://host:port``? (port None: the default)."""
        target = Target.of(scheme, host, port)
        return target is not None and self.allows_target(target)

    def allows_target(self, target: Target) -> bool:
        """May a secret bound here go to ``target``?"""
        return self._allows_port(target) and self._allows_host(target)

    def _allows_port(self, target: Target) -> bool:
        if self.port is None:
            return (target.scheme, target.port) in _IMPLICIT_TARGETS
        return target.port == self.port

    def _allows_host(self, target: Target) -> bool:
        if target.kind != self.kind:
            return False
        if not self.wildcard:
            return target.host == self.host
        head, dot, tail = target.host.partition(".")
        return bool(dot) and tail == self.host and bool(head)


def parse_host_patterns(text: str) -> tuple[HostPattern, ...]:
    """``HOST[,HOST…]`` into patterns, in order, without repeats."""
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise HostPatternError("Name at least one host", part=text)
    patterns = [parse_host_pattern(part) for part in parts]
    return tuple(dict.fromkeys(patterns))


def allowed(patterns: tuple[HostPattern, ...], scheme: str, host: str, port: int | None) -> bool:
    """Does any of ``patterns`` allow the target?"""
    target = Target.of(scheme, host, port)
    return target is not None and any(p.allows_target(target) for p in patterns)


def allowed_url(patterns: tuple[HostPattern, ...], url: str) -> bool:
    """Does any of ``patterns`` allow a request to ``url``?"""
    target = Target.of_url(url)
    return target is not None and any(p.allows_target(target) for p in patterns)


def same_origin(url_a: str, url_b: str) -> bool:
    """Same scheme, host and port (default ports filled in): the redirect rule.

    Two URLs either of which cannot be parsed are never the same origin.
    """
    a, b = Target.of_url(url_a), Target.of_url(url_b)
    return a is not None and a == b


def parse_host_pattern(text: str) -> HostPattern:
    """One pattern: ``host``, ``*.domain``, ``192.0.2.7``, ``[2001:db8::1]``, each ``[:port]``."""
    raw = text.strip()
    _refuse_url_parts(raw, text)
    host, port = _split_port(raw, text)
    if host.startswith("["):
        return HostPattern(_parse_ipv6(host, text), "ipv6", port=port)
    if "*" in host:
        return _parse_wildcard(host, port, text)
    if _DOTTED_QUAD.fullmatch(host):
        return HostPattern(_parse_ipv4(host, text), "ipv4", port=port)
    return HostPattern(_parse_name(host, text), "name", port=port)


def _refuse_url_parts(raw: str, original: str) -> None:
    if not raw:
        raise HostPatternError("The host is empty", part=original)
    if "://" in raw:
        raise HostPatternError(
            f"{raw!r} is a URL: give only its host, without the scheme or path", part=original
        )
    bad = sorted({c for c in raw if c in _FORBIDDEN_CHARACTERS or not c.isprintable()})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise HostPatternError(
            f"{raw!r} is not a host: it has {shown} (no path, user name or query)",
            part=original,
        )


def _split_port(raw: str, original: str) -> tuple[str, int | None]:
    if raw.startswith("["):
        close = raw.find("]")
        if close < 0:
            raise HostPatternError(f"{raw!r} has no closing ']'", part=original)
        host, rest = raw[: close + 1], raw[close + 1 :]
        if rest and not rest.startswith(":"):
            raise HostPatternError(f"{rest!r} after {host} is not a :port", part=original)
        return host, _parse_port(rest[1:], original) if rest else None
    if raw.count(":") > 1:
        raise HostPatternError(
            f"{raw!r}: write an IPv6 address in brackets, like [2001:db8::1]:993",
            part=original,
        )
    host, colon, port_text = raw.partition(":")
    return host, _parse_port(port_text, original) if colon else None


def _parse_port(text: str, original: str) -> int:
    if not _PORT.fullmatch(text) or int(text) > 65535:
        raise HostPatternError(f"{text!r} is not a port (1 to 65535)", part=original)
    return int(text)


def _parse_ipv6(bracketed: str, original: str) -> str:
    inner = bracketed[1:-1]
    try:
        return ipaddress.IPv6Address(inner).compressed
    except ValueError:
        raise HostPatternError(f"{bracketed!r} is not an IPv6 address", part=original) from None


def _parse_ipv4(host: str, original: str) -> str:
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        raise HostPatternError(
            f"{host!r} is not an IPv4 address (four numbers 0 to 255, no leading zeros)",
            part=original,
        ) from None


def _parse_wildcard(host: str, port: int | None, original: str) -> HostPattern:
    if host == "*":
        raise HostPatternError("A bare '*' would send the secret anywhere", part=original)
    if not host.startswith("*.") or "*" in host[2:]:
        raise HostPatternError(
            f"{host!r}: '*' may only stand for the whole first label, as in *.example.com",
            part=original,
        )
    base = host[2:]
    if _DOTTED_QUAD.fullmatch(base) or base.startswith("["):
        raise HostPatternError(f"{host!r}: an IP address cannot have a wildcard", part=original)
    name = _parse_name(base, original)
    _refuse_public_suffix(name, host, original)
    return HostPattern(name, "name", wildcard=True, port=port)


def _refuse_public_suffix(name: str, host: str, original: str) -> None:
    labels = name.split(".")
    registry = len(labels) == 2 and labels[0] in _REGISTRY_SECOND_LEVELS and len(labels[1]) == 2
    tree = any(name == t or name.endswith("." + t) for t in _SHARED_TREES)
    if len(labels) == 1 or registry or tree or name in _SHARED_HOSTING:
        raise HostPatternError(
            f"{host!r} covers a public suffix, where anyone can have a name: "
            "bind the hosts of one owner, like *.example.com",
            part=original,
        )


def _parse_name(host: str, original: str) -> str:
    name = _to_ascii(host)
    if name is None:
        raise HostPatternError(
            f"{host!r} is not a host name (letters, digits and '-' in dot-separated "
            "labels, none empty)",
            part=original,
        )
    if _NUMBER_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        raise HostPatternError(
            f"{host!r} ends in a number: write an IP address as four decimal numbers "
            "like 192.0.2.7",
            part=original,
        )
    mixed = _mixed_script_label(name)
    if mixed:
        raise HostPatternError(
            f"{host!r}: the label {mixed!r} mixes alphabets, as look-alike names do",
            part=original,
        )
    return name


def _to_ascii(host: str) -> str | None:
    """Lower-case A-labels without the trailing dot, or None if not a valid name."""
    host = host[:-1] if host.endswith(".") else host
    try:
        name = idna.encode(host, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        return None
    labels = name.split(".")
    if len(name) > 253 or not all(_LDH_LABEL.fullmatch(label) for label in labels):
        return None
    return name


def _mixed_script_label(name: str) -> str | None:
    for label in idna.decode(name).split("."):
        scripts = {_script(c) for c in label if unicodedata.category(c).startswith("L")}
        if len(scripts) > 1 and not any(scripts <= mix for mix in _SCRIPT_MIXES):
            return label
    return None


def _script(letter: str) -> str:
    # The first word of a letter's Unicode name is its script closely enough here:
    # LATIN, CYRILLIC, GREEK, CJK, HIRAGANA, KATAKANA, HANGUL...
    first = unicodedata.name(letter, "UNKNOWN").split(" ", 1)[0]
    return "KATAKANA" if first == "KATAKANA-HIRAGANA" else first


def _normalise_request_host(host: str) -> tuple[HostKind, str] | None:
    """A request's host as (kind, normal form), or None when it is not a usable host."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if ":" in text:
        try:
            return "ipv6", ipaddress.IPv6Address(text).compressed
        except ValueError:
            return None
    if _DOTTED_QUAD.fullmatch(text):
        try:
            return "ipv4", str(ipaddress.IPv4Address(text))
        except ValueError:
            return None
    if any(c in _FORBIDDEN_CHARACTERS or not c.isprintable() for c in text):
        return None
    name = _to_ascii(text)
    if name is None or _NUMBER_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
        return None
    return "name", name
