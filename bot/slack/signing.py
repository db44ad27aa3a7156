"""Slack's request signing (v0), shared by the receiver, the fake Slack and the tests.

Slack signs ``v0:{timestamp}:{raw body}`` with HMAC-SHA256 keyed by the app's signing
secret and sends ``X-Slack-Signature: v0=<hex>`` and ``X-Slack-Request-Timestamp``.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TOLERANCE_SECONDS = 300


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Return the ``v0=<hex>`` signature Slack would send for this body."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    """Headers that make ``body`` a correctly signed Slack request (for tests and `say`)."""
    timestamp = str(int(time.time() if now is None else now))
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, timestamp, body),
    }


def is_valid_slack_signature(
    secret: str, timestamp: str, body: bytes, signature: str, *, now: float
) -> bool:
    """Constant-time check of a Slack signature, rejecting timestamps older than 5 minutes."""
    try:
        age = abs(now - int(timestamp))
    except ValueError:
        return False
    if age > TOLERANCE_SECONDS:
        return False
    expected = slack_signature(secret, timestamp, body)
    return hmac.compare_digest(expected.encode(), signature.encode())
