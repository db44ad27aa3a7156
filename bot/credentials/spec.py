"""`SecretSpec`: a secret as every front door hands it to `SecretService` (the ``/secret``
slash command with the value typed after the host, and the secret modal).

A spec is valid by construction: its name is a secret name, it is bound to at least one
host, its value can be stored and redacted, and a basic-auth user name can be sent. The
value never appears in its ``repr`` or in `to_dict`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.credentials.hosts import HostPattern, HostPatternError, parse_host_patterns
from bot.credentials.redact import SecretValueError, check_secret_value
from bot.credentials.refs import RefError, check_basic_user, parse_secret_name
from bot.errors import SpecError


@dataclass(frozen=True)
class SecretTarget:
    """What ``/secret set NAME for HOST[,HOST…] [basic | user=NAME]`` says before the value.

    ``basic`` asks the modal for a user name too; ``user`` prefills it.
    """

    name: str
    hosts: tuple[HostPattern, ...]
    basic: bool = False
    user: str | None = None

    def with_value(self, value: str, user: str | None = None) -> SecretSpec:
        """The spec once the value (and, for basic auth, the user name) is known."""
        chosen = (user or "").strip() or self.user
        if self.basic and not chosen:
            raise SpecError("Basic auth needs a user name", field="user")
        return SecretSpec(self.name, self.hosts, value, chosen)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (a modal's private metadata); `secret_target_from_dict` reads it."""
        return {
            "name": self.name,
            "hosts": [str(host) for host in self.hosts],
            "basic": self.basic,
            "user": self.user,
        }

    def hosts_text(self) -> str:
        """The hosts as people read them: ``api.example.com, *.example.com``."""
        return ", ".join(host.describe() for host in self.hosts)


@dataclass(frozen=True)
class SecretSpec:
    """A secret to store: its name, the hosts it may be sent to, its value and, for
    basic auth, the user name sent with it. Raises `SpecError` (with its field) if any
    part cannot be stored."""

    name: str
    hosts: tuple[HostPattern, ...]
    value: str = field(repr=False)
    user: str | None = None

    def __post_init__(self) -> None:
        if parse_target_name(self.name) != self.name:
            raise SpecError(f"`{self.name}` is not a secret name in its plain form", field="name")
        if not self.hosts:
            raise SpecError("Bind the secret to at least one host", field="hosts")
        try:
            check_secret_value(self.value)
        except SecretValueError as error:
            raise SpecError(str(error), field="value") from None
        if self.user is not None:
            try:
                check_basic_user(self.user)
            except RefError as error:
                raise SpecError(str(error), field="user") from None

    def to_dict(self) -> dict[str, Any]:
        """Everything but the value, JSON-safe."""
        return {"name": self.name, "hosts": [str(h) for h in self.hosts], "user": self.user}


def parse_target_name(text: str) -> str:
    """A secret's name from what was typed; `SpecError` on the name field."""
    try:
        return parse_secret_name(text)
    except RefError as error:
        raise SpecError(str(error), field="name", part=text) from None


def parse_target_hosts(text: str) -> tuple[HostPattern, ...]:
    """``HOST[,HOST…]`` from what was typed; `SpecError` on the hosts field."""
    try:
        return parse_host_patterns(text)
    except HostPatternError as error:
        raise SpecError(str(error), field="hosts", part=error.part) from None


def secret_target_from_dict(data: Any) -> SecretTarget:
    """Read back `SecretTarget.to_dict`; `SpecError` for a document of another shape."""
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), list):
        raise SpecError("This form is out of date: run /secret set again", field="value")
    user = data.get("user")
    return SecretTarget(
        name=parse_target_name(str(data.get("name", ""))),
        hosts=parse_target_hosts(",".join(str(host) for host in data["hosts"])),
        basic=bool(data.get("basic")),
        user=str(user) if user else None,
    )
