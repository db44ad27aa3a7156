"""What may be sent where: the host rule applied to a request that names secrets.

A request that names a secret not bound to its target is refused before anything is
sent, and a redirect to another origin loses every header that carries a secret.
The fetching code calls `headers_for` before the first request and
`headers_after_redirect` before following each redirect.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from bot.credentials.hosts import HostPattern, Target, same_origin
from bot.credentials.refs import (
    CredentialRef,
    ResolvedSecret,
    build_headers,
    secret_header_names,
    secret_names,
)


@dataclass(frozen=True)
class StoredSecret:
    """A secret as the fetcher needs it: value (never in ``repr``), user and hosts."""

    value: str = field(repr=False)
    hosts: tuple[HostPattern, ...]
    user: str | None = None


class SecretNotAllowed(ValueError):
    """A request names a secret that is not bound to its target.

    ``secrets`` are the names refused; ``target`` is the host (and port) asked for.
    """

    def __init__(self, secrets: tuple[str, ...], target: str) -> None:
        names = ", ".join(secrets)
        super().__init__(
            f"Not sent: the secret {names} is not bound to {target}. Bind it with "
            f"/secret set {secrets[0]} for HOST, naming {target} or a pattern covering it"
        )
        self.secrets = secrets
        self.target = target


def refused_secrets(
    refs: Iterable[CredentialRef], url: str, lookup: Callable[[str], StoredSecret]
) -> tuple[str, ...]:
    """The secrets named by ``refs`` that may not go to ``url``, sorted; empty if all may."""
    target = Target.of_url(url)
    return tuple(
        sorted(
            name
            for name in secret_names(refs)
            if target is None or not any(p.allows_target(target) for p in lookup(name).hosts)
        )
    )


def headers_for(
    refs: Iterable[CredentialRef], url: str, lookup: Callable[[str], StoredSecret]
) -> dict[str, str]:
    """The headers for a request to ``url``, or `SecretNotAllowed` before any is built.

    ``lookup`` raises whatever the caller chooses for an unknown secret.
    """
    refs = tuple(refs)
    refused = refused_secrets(refs, url, lookup)
    if refused:
        raise SecretNotAllowed(refused, _shown_target(url))

    def resolve(name: str) -> ResolvedSecret:
        stored = lookup(name)
        return ResolvedSecret(stored.value, stored.user)

    return build_headers(refs, resolve)


def headers_after_redirect(
    headers: Mapping[str, str], refs: Iterable[CredentialRef], from_url: str, to_url: str
) -> dict[str, str]:
    """The headers to send to ``to_url``: those carrying a secret are dropped unless
    it is the same origin (scheme, host, port) as ``from_url``."""
    if same_origin(from_url, to_url):
        return dict(headers)
    carrying = secret_header_names(refs)
    return {name: value for name, value in headers.items() if name.lower() not in carrying}


def _shown_target(url: str) -> str:
    target = Target.of_url(url)
    if target is None:
        return "that address"
    host = f"[{target.host}]" if target.kind == "ipv6" else target.host
    return f"{host}:{target.port}"
