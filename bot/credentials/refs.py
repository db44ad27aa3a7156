"""References to secrets in options, written the same way everywhere.

* ``auth=bearer:NAME`` sends ``Authorization: Bearer <value>``;
* ``auth=basic:NAME`` sends ``Authorization: Basic base64(user:value)``, with the user
  name stored beside the secret;
* ``header.X-Api-Key=secret:NAME`` sends the value in any header;
* ``header.X-Trace=abc`` sends a literal value.

They are parsed once into `AuthRef` and `HeaderRef`, shown to people with `describe`
(``Authorization: Bearer ••••(crm-token)``), and turned into request headers only at
the moment of sending by `build_headers`, which is given a way to look values up.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from bot.credentials.redact import placeholder

AuthScheme = Literal["bearer", "basic"]

NAME_EXAMPLE: Final = "crm-token"
AUTH_EXAMPLE: Final = "auth=bearer:crm-token"
HEADER_EXAMPLE: Final = "header.X-Api-Key=secret:crm-key"
MAX_NAME_LENGTH: Final = 64

_SECRET_NAME = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?")
# RFC 9110 token characters.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Visible ASCII, space and tab (RFC 9110 field-vchar without obs-text): what every
# server reads the same way. CR, LF and NUL never pass.
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")
_HEADER_PREFIX: Final = "header."
_SECRET_PREFIX: Final = "secret:"
_AUTHORIZATION: Final = "authorization"

# Headers that frame the message, steer proxies or belong to the connection: a user
# setting them could smuggle requests or confuse the connection pool.
_REFUSED_HEADERS: Final = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
# Words in a header name that say its value is a credential: a literal value there is
# a secret typed into chat, so it must be stored with /secret set instead.
_CREDENTIAL_WORDS: Final = frozenset(
    {"authorization", "auth", "token", "key", "apikey", "secret", "password", "passwd"}
    | {"cookie", "session", "signature", "credential", "credentials"}
)


class RefError(ValueError):
    """An option that cannot be understood.

    ``part`` is the exact fragment at fault; ``example`` is an option that works.
    """

    def __init__(self, message: str, *, part: str, example: str) -> None:
        super().__init__(f"{message}. Example: {example}")
        self.part = part
        self.example = example


class HeaderBuildError(ValueError):
    """A stored secret that cannot go into a header; names the secret, never its value."""

    def __init__(self, message: str, *, secret: str) -> None:
        super().__init__(message)
        self.secret = secret


@dataclass(frozen=True)
class SecretRef:
    """A reference to the stored secret ``name``."""

    name: str

    def describe(self) -> str:
        """``••••(name)``."""
        return placeholder(self.name)


@dataclass(frozen=True)
class LiteralValue:
    """A header value written out in the option."""

    text: str

    def describe(self) -> str:
        """The value itself: literals are not secret."""
        return self.text


HeaderValue = LiteralValue | SecretRef


@dataclass(frozen=True)
class AuthRef:
    """``auth=bearer:NAME`` or ``auth=basic:NAME``."""

    scheme: AuthScheme
    secret: SecretRef

    def describe(self) -> str:
        """``Authorization: Bearer ••••(NAME)``."""
        return f"Authorization: {self.scheme.capitalize()} {self.secret.describe()}"

    def as_option(self) -> tuple[str, str]:
        """The option as ``(key, value)``, which `parse_option` reads back."""
        return "auth", f"{self.scheme}:{self.secret.name}"


@dataclass(frozen=True)
class HeaderRef:
    """``header.NAME=VALUE`` or ``header.NAME=secret:SECRET``; ``name`` kept as written."""

    name: str
    value: HeaderValue

    def describe(self) -> str:
        """``X-Api-Key: ••••(NAME)`` or ``X-Trace: abc``."""
        return f"{self.name}: {self.value.describe()}"

    def as_option(self) -> tuple[str, str]:
        """The option as ``(key, value)``, which `parse_option` reads back."""
        if isinstance(self.value, SecretRef):
            return f"{_HEADER_PREFIX}{self.name}", f"{_SECRET_PREFIX}{self.value.name}"
        return f"{_HEADER_PREFIX}{self.name}", self.value.text


CredentialRef = AuthRef | HeaderRef


@dataclass(frozen=True)
class ResolvedSecret:
    """A secret's value (never shown in ``repr``) and, for basic auth, its user name."""

    value: str = field(repr=False)
    user: str | None = None


def parse_secret_name(text: str) -> str:
    """A secret's name, lower-cased: letters, digits, '-' and '_', at most 64."""
    return _secret_name_in(text, text, NAME_EXAMPLE)


def check_basic_user(user: str) -> None:
    """Refuse a basic-auth user name that cannot be sent (RFC 7617: no ':')."""
    if not user or ":" in user or not user.isprintable():
        raise RefError(
            "A basic-auth user name must be non-empty, without ':' or control characters",
            part=user,
            example="/secret set crm-login for crm.example.com user=ops-bot",
        )


def is_credential_option(key: str) -> bool:
    """Is ``key`` (the part before ``=``) one of ``auth`` or ``header.NAME``?"""
    lowered = key.strip().lower()
    return lowered == "auth" or lowered.startswith(_HEADER_PREFIX)


def parse_option(key: str, value: str) -> CredentialRef:
    """One ``auth=…`` or ``header.NAME=…`` option."""
    lowered = key.strip().lower()
    if lowered == "auth":
        return parse_auth(value)
    if lowered.startswith(_HEADER_PREFIX):
        return parse_header(key.strip()[len(_HEADER_PREFIX) :], value)
    raise RefError(
        f"{key!r} is not auth or header.NAME",
        part=key,
        example=f"{AUTH_EXAMPLE} or {HEADER_EXAMPLE}",
    )


def parse_options(pairs: Iterable[tuple[str, str]]) -> tuple[CredentialRef, ...]:
    """Several options, refusing two ``auth=``, a header given twice (any case), or
    ``header.Authorization`` beside ``auth=``."""
    refs = tuple(parse_option(key, value) for key, value in pairs)
    seen: set[str] = set()
    for ref in refs:
        header = _AUTHORIZATION if isinstance(ref, AuthRef) else ref.name.lower()
        if header in seen:
            raise RefError(
                f"{ref.describe()!r} sets {header} a second time: give it once",
                part="=".join(ref.as_option()),
                example=AUTH_EXAMPLE,
            )
        seen.add(header)
    return refs


def parse_auth(value: str) -> AuthRef:
    """``bearer:NAME`` or ``basic:NAME`` (the value of ``auth=``)."""
    kind, colon, name = value.strip().partition(":")
    scheme = kind.strip().lower()
    if not colon or scheme not in ("bearer", "basic"):
        raise RefError(
            f"auth={value} is not understood: auth takes bearer:NAME or basic:NAME",
            part=f"auth={value}",
            example=AUTH_EXAMPLE,
        )
    secret = SecretRef(_secret_name_in(name, f"auth={value}", AUTH_EXAMPLE))
    return AuthRef("bearer" if scheme == "bearer" else "basic", secret)


def parse_header(name: str, value: str) -> HeaderRef:
    """``header.NAME=VALUE``: ``name`` is the part after ``header.``."""
    part = f"{_HEADER_PREFIX}{name}={value}"
    _check_header_name(name, part)
    text = value.strip()
    if text.lower().startswith(_SECRET_PREFIX):
        secret = _secret_name_in(text[len(_SECRET_PREFIX) :], part, HEADER_EXAMPLE)
        return HeaderRef(name, SecretRef(secret))
    _check_literal_value(name, text, part)
    return HeaderRef(name, LiteralValue(text))


def secret_names(refs: Iterable[CredentialRef]) -> frozenset[str]:
    """The names of the secrets that ``refs`` would send."""
    names = set()
    for ref in refs:
        if isinstance(ref, AuthRef):
            names.add(ref.secret.name)
        elif isinstance(ref.value, SecretRef):
            names.add(ref.value.name)
    return frozenset(names)


def secret_header_names(refs: Iterable[CredentialRef]) -> frozenset[str]:
    """Lower-cased names of the headers that carry a secret (dropped on a redirect)."""
    names = set()
    for ref in refs:
        if isinstance(ref, AuthRef):
            names.add(_AUTHORIZATION)
        elif isinstance(ref.value, SecretRef):
            names.add(ref.name.lower())
    return frozenset(names)


def describe(refs: Iterable[CredentialRef]) -> list[str]:
    """Each reference as people see it, e.g. ``Authorization: Bearer ••••(crm-token)``."""
    return [ref.describe() for ref in refs]


def build_headers(
    refs: Iterable[CredentialRef], resolve: Callable[[str], ResolvedSecret]
) -> dict[str, str]:
    """The request headers for ``refs``, looking each secret up with ``resolve``.

    Whatever ``resolve`` raises for an unknown secret passes through. A value that
    cannot go into a header raises `HeaderBuildError` naming the secret only.
    """
    headers: dict[str, str] = {}
    for ref in refs:
        if isinstance(ref, AuthRef):
            headers["Authorization"] = _authorization(ref, resolve(ref.secret.name))
        elif isinstance(ref.value, SecretRef):
            secret = ref.value.name
            headers[ref.name] = _header_safe(resolve(secret).value, secret)
        else:
            headers[ref.name] = ref.value.text
    return headers


def _authorization(ref: AuthRef, resolved: ResolvedSecret) -> str:
    name = ref.secret.name
    if ref.scheme == "bearer":
        return f"Bearer {_header_safe(resolved.value, name)}"
    if resolved.user is None:
        raise HeaderBuildError(
            f"The secret {name} has no user name, which basic auth needs: set it again "
            f"with user=NAME, or use auth=bearer:{name}",
            secret=name,
        )
    pair = f"{resolved.user}:{resolved.value}".encode()
    return f"Basic {base64.b64encode(pair).decode('ascii')}"


def _header_safe(value: str, secret: str) -> str:
    if not _HEADER_VALUE.fullmatch(value):
        raise HeaderBuildError(
            f"The secret {secret} has characters a header cannot carry (line breaks, "
            "control characters or non-ASCII): set it again",
            secret=secret,
        )
    return value


def _secret_name_in(text: str, part: str, example: str) -> str:
    name = text.strip().lower()
    if not _SECRET_NAME.fullmatch(name):
        raise RefError(
            f"{text!r} is not a secret name: use letters, digits, '-' or '_' (starting and "
            f"ending with a letter or digit, at most {MAX_NAME_LENGTH})",
            part=part,
            example=example,
        )
    return name


def _check_header_name(name: str, part: str) -> None:
    if not _HEADER_NAME.fullmatch(name):
        raise RefError(
            f"{name!r} is not a header name (letters, digits and -, no spaces)",
            part=part,
            example=HEADER_EXAMPLE,
        )
    if name.lower() in _REFUSED_HEADERS:
        raise RefError(
            f"The header {name} is set by the bot itself and cannot be given",
            part=part,
            example=HEADER_EXAMPLE,
        )


def _check_literal_value(name: str, text: str, part: str) -> None:
    # The credential check comes first: its message must not repeat the value.
    words = set(re.split(r"[-_.]", name.lower()))
    if words & _CREDENTIAL_WORDS:
        raise RefError(
            f"header.{name} looks like a credential: store it with /secret set and refer "
            f"to it as header.{name}=secret:NAME, so that it is never shown",
            part=f"{_HEADER_PREFIX}{name}",
            example=HEADER_EXAMPLE,
        )
    if not _HEADER_VALUE.fullmatch(text):
        raise RefError(
            f"The value of header.{name} has characters a header cannot carry (line "
            "breaks, control characters or non-ASCII)",
            part=part,
            example="header.X-Trace=chatops",
        )
