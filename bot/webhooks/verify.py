"""Check that a webhook delivery really comes from the sender it claims to be.

Each sender authenticates differently (see ``tests/fixtures/README.md`` for the sources):
an HMAC of the raw body (GitHub, Sentry, Grafana, our generic scheme), an HMAC over a
timestamp and the body (Stripe, Slack), or a shared token sent as-is (GitLab, bearer or
basic auth for Alertmanager and Grafana). Every scheme function has the same shape,
``(secret, body, headers, now) -> Verdict``, and never raises: a malformed header is
`Verdict.BAD`.

``headers`` must have lower-cased names: HTTP header names are case-insensitive, and the
caller (the HTTP handler) folds them once so that every scheme can look them up directly.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from enum import StrEnum

from bot.slack.signing import TOLERANCE_SECONDS, slack_signature
from bot.webhooks.event import Sender

# Grafana has no default name for the timestamp header (it is configured per contact
# point); this is the name our setup instructions tell users to configure.
GRAFANA_TIMESTAMP_HEADER = "x-grafana-alerting-signature-timestamp"
# The name Grafana's docs and UI use, then the default in grafana/alerting http/hmac.go.
GRAFANA_SIGNATURE_HEADERS = ("x-grafana-alerting-signature", "x-grafana-alert-signature")


class Verdict(StrEnum):
    """The outcome of checking one delivery's credentials."""

    OK = "ok"
    MISSING = "missing"  # no credential sent while one is required
    BAD = "bad"  # wrong signature or token, or a malformed header
    STALE = "stale"  # correctly signed, but the timestamp is outside the tolerance


Scheme = Callable[[str, bytes, Mapping[str, str], float], Verdict]


def _utf8(text: str | bytes) -> bytes:
    # surrogatepass: a header value with a lone surrogate must compare unequal, not raise.
    return text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text


def _hmac_hex(secret: str, message: bytes) -> str:
    return hmac.new(_utf8(secret), message, hashlib.sha256).hexdigest()


def _same(expected: str | bytes, given: str | bytes) -> bool:
    """Constant-time equality on bytes (compare_digest refuses non-ASCII str)."""
    return hmac.compare_digest(_utf8(expected), _utf8(given))


def _parse_timestamp(text: str) -> int | None:
    """Unix seconds as plain ASCII digits, or None (int() would also accept ' 1_0', '٣')."""
    if text.isascii() and text.isdigit():
        return int(text)
    return None


def _is_fresh(timestamp: int, now: float, tolerance: float) -> bool:
    return abs(now - timestamp) <= tolerance


def _best(verdicts: list[Verdict]) -> Verdict:
    """Combine alternative credentials: any OK wins, then STALE, then BAD; none sent is MISSING."""
    for verdict in (Verdict.OK, Verdict.STALE, Verdict.BAD):
        if verdict in verdicts:
            return verdict
    return Verdict.MISSING


def sign_github(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + _hmac_hex(secret, body)


def sign_generic(secret: str, body: bytes) -> str:
    """The ``X-Signature-256`` value our generic scheme expects for ``body``."""
    return "sha256=" + _hmac_hex(secret, body)


def _stripe_v1(secret: str, body: bytes, timestamp: int) -> str:
    return _hmac_hex(secret, str(timestamp).encode() + b"." + body)


def sign_stripe(secret: str, body: bytes, timestamp: int) -> str:
    """A whole ``Stripe-Signature`` value, ``t=<timestamp>,v1=<hex>``, for ``body``."""
    return f"t={timestamp},v1={_stripe_v1(secret, body, timestamp)}"


# What the timestamped schemes sign, a timestamp then the body: Stripe "{t}.{body}",
# Grafana "{t}:{body}", Slack "v0:{t}:{body}". The same secret may serve several schemes,
# so a body that starts like this, sent with a plain (untimestamped) HMAC, could be an old
# timestamped signature replayed without its timestamp, for ever. No real body looks so.
_TIMESTAMPED_INPUT = re.compile(rb"(?:v0:)?[0-9]{9,}[.:]")


def _plain_hmac_matches(secret: str, body: bytes, signature: str) -> bool:
    """``signature`` is the hex HMAC of ``body`` alone (and the body is no replay, above)."""
    return not _TIMESTAMPED_INPUT.match(body) and _same(_hmac_hex(secret, body), signature)


def _check_sha256_header(secret: str, body: bytes, value: str | None) -> Verdict:
    """A ``sha256=<hex>`` header over the raw body (GitHub, generic)."""
    if value is None:
        return Verdict.MISSING
    prefix, _, signature = value.partition("=")
    ok = prefix == "sha256" and _plain_hmac_matches(secret, body, signature)
    return Verdict.OK if ok else Verdict.BAD


def _check_bearer(secret: str, authorization: str | None) -> Verdict:
    """``Authorization: Bearer <secret>``; any other scheme is BAD."""
    if authorization is None:
        return Verdict.MISSING
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return Verdict.BAD
    return Verdict.OK if _same(secret, token.strip(" ")) else Verdict.BAD


def _basic_password(credentials: str) -> bytes | None:
    """The password part of HTTP basic credentials, or None when they do not decode."""
    try:
        decoded = base64.b64decode(credentials.strip(" "), validate=True)
    except (binascii.Error, ValueError):
        return None
    _user, colon, password = decoded.partition(b":")
    return password if colon else None


def _check_basic(secret: str, authorization: str | None) -> Verdict:
    """HTTP basic auth with any user name and the secret as password; any other scheme is BAD."""
    if authorization is None:
        return Verdict.MISSING
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "basic":
        return Verdict.BAD
    password = _basic_password(credentials)
    return Verdict.OK if password is not None and _same(secret, password) else Verdict.BAD


def _check_authorization(secret: str, authorization: str | None) -> Verdict:
    """Bearer token or basic auth; an Authorization header with another scheme is BAD."""
    return _best([_check_bearer(secret, authorization), _check_basic(secret, authorization)])


def verify_github(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> Verdict:
    """``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``; legacy sha1 is ignored."""
    return _check_sha256_header(secret, body, headers.get("x-hub-signature-256"))


def verify_gitlab(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> Verdict:
    """``X-Gitlab-Token`` carries the secret itself; GitLab does not sign the body."""
    token = headers.get("x-gitlab-token")
    if token is None:
        return Verdict.MISSING
    return Verdict.OK if _same(secret, token) else Verdict.BAD


def _stripe_fields(header: str) -> tuple[int, list[str]] | None:
    """``t`` and every ``v1`` value of a Stripe-Signature header, or None when malformed."""
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        key, equals, value = item.strip().partition("=")
        if equals and key == "t":
            timestamps.append(value)
        elif equals and key == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not signatures:
        return None
    timestamp = _parse_timestamp(timestamps[0])
    return None if timestamp is None else (timestamp, signatures)


def verify_stripe(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    now: float,
    *,
    tolerance: float = TOLERANCE_SECONDS,
) -> Verdict:
    """``Stripe-Signature: t=<unix>,v1=<hex>[,v1=…][,v0=…]`` over ``"{t}.{body}"``.

    Any matching v1 is accepted (several appear while a secret is being rolled); v0 is
    ignored. A correct signature whose ``t`` is more than ``tolerance`` seconds away from
    ``now`` is STALE; a wrong one is BAD whatever its age.
    """
    header = headers.get("stripe-signature")
    if header is None:
        return Verdict.MISSING
    fields = _stripe_fields(header)
    if fields is None:
        return Verdict.BAD
    timestamp, signatures = fields
    expected = _stripe_v1(secret, body, timestamp)
    # Compare against every candidate without stopping early, so timing says nothing.
    matches = [_same(expected, candidate) for candidate in signatures]
    if not any(matches):
        return Verdict.BAD
    return Verdict.OK if _is_fresh(timestamp, now, tolerance) else Verdict.STALE


def verify_slack(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    now: float,
    *,
    tolerance: float = TOLERANCE_SECONDS,
) -> Verdict:
    """Slack-style v0 signing: ``X-Slack-Signature: v0=<hex>`` over ``v0:{timestamp}:{body}``.

    The timestamp comes from ``X-Slack-Request-Timestamp``. A correct signature more than
    ``tolerance`` seconds from ``now`` is STALE.
    """
    signature = headers.get("x-slack-signature")
    if signature is None:
        return Verdict.MISSING
    text = headers.get("x-slack-request-timestamp", "")
    timestamp = _parse_timestamp(text)
    if timestamp is None:
        return Verdict.BAD
    if not _same(slack_signature(secret, text, body), signature):
        return Verdict.BAD
    return Verdict.OK if _is_fresh(timestamp, now, tolerance) else Verdict.STALE


def verify_sentry(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> Verdict:
    """``Sentry-Hook-Signature`` = hex HMAC-SHA256 of the body, keyed by the client secret."""
    signature = headers.get("sentry-hook-signature")
    if signature is None:
        return Verdict.MISSING
    return Verdict.OK if _plain_hmac_matches(secret, body, signature) else Verdict.BAD


def _grafana_signature(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    now: float,
    tolerance: float,
) -> Verdict:
    """Grafana's optional HMAC: over the body, or over ``{ts}:{body}`` with a timestamp header."""
    signature = next((headers[h] for h in GRAFANA_SIGNATURE_HEADERS if h in headers), None)
    if signature is None:
        return Verdict.MISSING
    text = headers.get(GRAFANA_TIMESTAMP_HEADER)
    if text is None:
        return Verdict.OK if _plain_hmac_matches(secret, body, signature) else Verdict.BAD
    timestamp = _parse_timestamp(text)
    if timestamp is None:
        return Verdict.BAD
    if not _same(_hmac_hex(secret, text.encode() + b":" + body), signature):
        return Verdict.BAD
    return Verdict.OK if _is_fresh(timestamp, now, tolerance) else Verdict.STALE


def verify_grafana(
    secret: str,
    body: bytes,
    headers: Mapping[str, str],
    now: float,
    *,
    tolerance: float = TOLERANCE_SECONDS,
) -> Verdict:
    """Grafana contact points: an HMAC signature, a bearer token, or basic auth.

    The signature is hex HMAC-SHA256 in ``X-Grafana-Alerting-Signature`` (also accepted
    under ``X-Grafana-Alert-Signature``). If ``X-Grafana-Alerting-Signature-Timestamp`` is
    present, the HMAC covers ``{timestamp}:{body}`` and the timestamp must be within
    ``tolerance`` of ``now``. That timestamp header name is our convention: Grafana has no
    default and sends one only when a name is configured. Any valid credential is enough.
    """
    return _best(
        [
            _grafana_signature(secret, body, headers, now, tolerance),
            _check_authorization(secret, headers.get("authorization")),
        ]
    )


def verify_alertmanager(
    secret: str, body: bytes, headers: Mapping[str, str], now: float
) -> Verdict:
    """Alertmanager's ``http_config``: ``Authorization: Bearer <secret>`` or basic auth."""
    return _check_authorization(secret, headers.get("authorization"))


def verify_generic(secret: str, body: bytes, headers: Mapping[str, str], now: float) -> Verdict:
    """``X-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>``, Slack-style ``v0``
    signing (``X-Slack-Signature``, 5-minute tolerance), or a bearer token."""
    return _best(
        [
            _check_sha256_header(secret, body, headers.get("x-signature-256")),
            verify_slack(secret, body, headers, now),
            _check_bearer(secret, headers.get("authorization")),
        ]
    )


SCHEMES: Mapping[Sender, Scheme] = {
    "github": verify_github,
    "gitlab": verify_gitlab,
    "alertmanager": verify_alertmanager,
    "grafana": verify_grafana,
    "sentry": verify_sentry,
    "stripe": verify_stripe,
    "generic": verify_generic,
}


def verify(
    sender: Sender,
    secret: str | None,
    body: bytes,
    headers: Mapping[str, str],
    now: float,
) -> Verdict:
    """Check one delivery with its sender's scheme; ``headers`` must have lower-cased names.

    ``secret is None`` means the hook has no secret and its unguessable URL is the
    credential, so every delivery is OK. An empty secret is a configuration mistake and
    authenticates nothing (it would otherwise match an empty token).
    """
    if secret is None:
        return Verdict.OK
    if not secret:
        return Verdict.BAD
    return SCHEMES[sender](secret, body, headers, now)
