"""An action as people write it: ``/action add`` text → a typed `ActionSpec`, and the
request shown back as it would be sent (secrets as ``••••(NAME)``).

Everything here is pure: parsing raises `SpecError` naming the field and the part at
fault, with an example that works.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from bot.credentials.refs import (
    CredentialRef,
    RefError,
    describe,
    is_credential_option,
    parse_option,
    parse_options,
)
from bot.errors import SpecError
from bot.models import Action
from bot.names import NAME_RULE, valid_name
from bot.slack.text import parse_key_values, parse_url

BodyKind = Literal["json", "form"]

METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
# Methods whose redirects are followed; any other method's redirect is its answer.
REDIRECTED_METHODS: Final = frozenset({"GET", "HEAD"})
# What a trigger's ``then=`` actions run on (``on=``; `bot.actions.triggered`).
ON_CHOICES: Final = ("problem", "recover", "item", "always")
DEFAULT_TIMEOUT: Final = 10.0
MAX_TIMEOUT: Final = 60.0
DEFAULT_RETRIES: Final = 5
MAX_RETRIES: Final = 10
ADD_EXAMPLE: Final = (
    "/action add crm POST https://crm.example.com/api/leads auth=bearer:crm-token body=json"
)
_ADD_OPTIONS: Final = ("body", "confirm", "timeout", "retries")
_BOT_HEADERS: Final = frozenset({"content-type", "idempotency-key"})
CONTENT_TYPES: Final[Mapping[str, str]] = {
    "json": "application/json",
    "form": "application/x-www-form-urlencoded",
}


@dataclass(frozen=True)
class ActionSpec:
    """A new action, or the new definition of one (``/action add``, the modal)."""

    name: str
    method: str
    url: str
    refs: tuple[CredentialRef, ...] = ()
    body_kind: BodyKind = "json"
    confirm: bool = False
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES

    def options(self) -> dict[str, str]:
        """The credential options as stored (``{"auth": "bearer:crm-token"}``)."""
        return dict(ref.as_option() for ref in self.refs)


def parse_add(words: Sequence[str]) -> ActionSpec:
    """``NAME METHOD URL [auth=…] [header.X=…] [body=json|form] [confirm=yes]
    [timeout=10s] [retries=5]`` → an `ActionSpec`."""
    options, positional = split_options(words)
    if len(positional) < 3:
        missing = ("name", "method", "url")[len(positional)]
        raise SpecError(
            f"`/action add` needs a name, a method and a URL. Example: `{ADD_EXAMPLE}`",
            field=missing,
        )
    if len(positional) > 3:
        raise SpecError(
            f"I don't know what `{positional[3]}` means here: options are key=value. "
            f"Example: `{ADD_EXAMPLE}`",
            field="options",
            part=positional[3],
        )
    return spec_from_fields(
        name=positional[0], method=positional[1], url=positional[2], options=options
    )


_HEADER_OPTION: Final = re.compile(r"^(header\.[^=\s]+)=(.*)$", re.IGNORECASE | re.DOTALL)


def split_options(words: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``key=value`` words from the others; ``header.X-Api-Key=…`` keeps the
    header name's case. `SpecError` when an option is given twice."""
    headers: dict[str, str] = {}
    rest: list[str] = []
    for word in words:
        found = _HEADER_OPTION.match(word)
        if found is None:
            rest.append(word)
            continue
        key = "header." + found[1].partition(".")[2]
        if key.lower() in (k.lower() for k in headers):
            raise SpecError(f"`{key}` is given twice", field="options", part=word)
        headers[key] = found[2]
    options, positional = parse_key_values(rest)
    return options | headers, positional


def spec_from_fields(*, name: str, method: str, url: str, options: Mapping[str, str]) -> ActionSpec:
    """An `ActionSpec` from its parts as typed (the slash command's words, a form's fields)."""
    refs = _refs({k: v for k, v in options.items() if is_credential_option(k)})
    plain = {k: v for k, v in options.items() if not is_credential_option(k)}
    unknown = [key for key in plain if key not in _ADD_OPTIONS]
    if unknown:
        raise SpecError(
            f"`{unknown[0]}=` isn't an option of an action; use auth=, header.NAME=, "
            f"{'=, '.join(_ADD_OPTIONS)}=. Example: `{ADD_EXAMPLE}`",
            field="options",
            part=unknown[0],
        )
    return ActionSpec(
        name=parse_name(name),
        method=parse_method(method),
        url=parse_action_url(url),
        refs=refs,
        **plain_options(plain),
    )


def plain_options(options: Mapping[str, str]) -> dict[str, Any]:
    """``body=``, ``confirm=``, ``timeout=``, ``retries=`` (those given) → the values an
    `ActionSpec` (and an `Action` row) holds them as."""
    readers: Mapping[str, tuple[str, Callable[[str], Any]]] = {
        "body": ("body_kind", body_kind_of),
        "confirm": ("confirm", lambda value: _yes_no(value, "confirm")),
        "timeout": ("timeout", _timeout),
        "retries": ("retries", _retries),
    }
    return {readers[key][0]: readers[key][1](value) for key, value in options.items()}


def parse_name(text: str) -> str:
    """An action's name, lower-cased; `SpecError` for one that cannot be."""
    name = valid_name(text)
    if name is None:
        raise SpecError(
            f"`{text}` can't be an action's name: use {NAME_RULE}. Example: `{ADD_EXAMPLE}`",
            field="name",
            part=text,
        )
    return name


def parse_method(text: str) -> str:
    method = text.strip().upper()
    if method not in METHODS:
        raise SpecError(
            f"`{text}` isn't an HTTP method I send: use one of {', '.join(METHODS)}. "
            f"Example: `{ADD_EXAMPLE}`",
            field="method",
            part=text,
        )
    return method


def parse_action_url(text: str) -> str:
    url = parse_url(text.strip())
    if url is None:
        raise SpecError(
            f"`{text}` isn't an http(s) URL. Example: `{ADD_EXAMPLE}`", field="url", part=text
        )
    if "@" in urllib.parse.urlsplit(url).netloc:
        # A user name and password in the URL would be shown to everyone (`/action list`,
        # the button's confirm dialog) and sent to any host: they belong in a secret.
        raise SpecError(
            "Leave the user name and password out of the URL: store them as a secret "
            "(`/secret set crm-login for HOST basic`) and add `auth=basic:crm-login`. "
            f"Example: `{ADD_EXAMPLE}`",
            field="url",
            part="(the part before @)",
        )
    return url


def names_in(text: str | None) -> list[str]:
    """``"crm, inventory"`` → ``["crm", "inventory"]`` (a stored ``then=``/``buttons=``)."""
    return [name.strip() for name in (text or "").split(",") if name.strip()]


def option_pairs(options: Mapping[str, str]) -> tuple[CredentialRef, ...]:
    """The stored credential options as references again."""
    return tuple(parse_option(key, value) for key, value in options.items())


def _refs(options: Mapping[str, str]) -> tuple[CredentialRef, ...]:
    for key in options:
        header = key.partition(".")[2]
        if header.lower() in _BOT_HEADERS:
            raise SpecError(
                f"The header {header} is set by the bot itself (the body's type, and one "
                "key per run that repeats on every attempt)",
                field="options",
                part=key,
            )
    try:
        return parse_options(options.items())
    except RefError as error:
        raise SpecError(str(error), field="options", part=error.part) from None


def body_kind_of(value: str) -> BodyKind:
    """``json`` or ``form`` (any case); `SpecError` for anything else."""
    kind = value.strip().lower()
    if kind == "json":
        return "json"
    if kind == "form":
        return "form"
    raise SpecError(
        f"`body={value}`: use json or form. Example: `body=json`", field="options", part=value
    )


def _yes_no(value: str, key: str) -> bool:
    word = value.strip().lower()
    if word not in ("yes", "no", "on", "off", "true", "false"):
        raise SpecError(
            f"`{key}={value}`: use yes or no. Example: `{key}=yes`", field="options", part=value
        )
    return word in ("yes", "on", "true")


_SECONDS: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|secs|seconds?|m|min)?\s*$", re.I)
_UNIT_SECONDS: Final[Mapping[str, float]] = {"ms": 0.001, "m": 60.0, "min": 60.0}


def _timeout(value: str) -> float:
    found = _SECONDS.match(value)
    unit = (found[2] or "s").lower() if found else "s"
    seconds = float(found[1]) * _UNIT_SECONDS.get(unit, 1.0) if found else None
    if seconds is None or not 0 < seconds <= MAX_TIMEOUT:
        raise SpecError(
            f"`timeout={value}`: give a duration up to {MAX_TIMEOUT:g} s. Example: `timeout=10s`",
            field="options",
            part=value,
        )
    return seconds


def _retries(value: str) -> int:
    # isascii: '²' is a digit to isdigit() but not to int()
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_RETRIES:
        raise SpecError(
            f"`retries={value}`: give a number from 0 to {MAX_RETRIES}. Example: `retries=5`",
            field="options",
            part=value,
        )
    return int(value)


# Showing


def settings_text(action: Action) -> str:
    """The ``/action add`` options an action has, as they would be typed."""
    parts = [f"{key}={value}" for key, value in action.options.items()]
    parts.append(f"body={action.body_kind}")
    if action.confirm:
        parts.append("confirm=yes")
    parts += [f"timeout={action.timeout:g}s", f"retries={action.retries}"]
    return " ".join(parts)


def request_lines(action: Action, body: str | None, *, has_body: bool = False) -> list[str]:
    """The request as it would be sent, secrets as ``••••(NAME)``: method and URL, the
    headers, and ``body`` (the rendered body; None when there is none, or when it is not
    rendered yet: ``has_body`` then says whether one will be sent)."""
    headers = describe(option_pairs(action.options))
    if body is not None or has_body:
        headers.append(f"Content-Type: {CONTENT_TYPES[action.body_kind]}")
    headers.append("Idempotency-Key: (one per run, the same on every attempt)")
    lines = [f"{action.method} {action.url}", *headers]
    if body is not None:
        lines += ["", body]
    return lines


# The body


class BodyError(ValueError):
    """A rendered body that cannot be sent; the message says why."""


def unescape_rendered(text: str) -> str:
    """Template output with Slack's escaping undone: templates print values escaped for
    Slack (``&amp;``, ``&lt;``, ``&gt;``), and a request body must carry them as sent."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def encode_body(rendered: str, kind: BodyKind) -> str | None:
    """The body to send from a template's output: JSON checked as JSON; for a form, a
    JSON object of fields, form-encoded. None when the template rendered nothing."""
    text = unescape_rendered(rendered).strip()
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise BodyError(
            f"the body is not JSON ({error.msg} at line {error.lineno} column {error.colno}); "
            'print values with |tojson, e.g. {"email": {{ payload.email|tojson }}}'
        ) from None
    if kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if not isinstance(value, dict):
        raise BodyError('a form body is a JSON object of fields, e.g. {"sku": "A-1", "qty": 2}')
    return urllib.parse.urlencode({str(k): _form_value(v) for k, v in value.items()})


def _form_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)
