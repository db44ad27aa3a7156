"""Webhook signature verification against the senders' published vectors and fixtures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.slack.signing import slack_signature
from bot.webhooks.event import SENDERS, Sender
from bot.webhooks.verify import (
    SCHEMES,
    Verdict,
    sign_generic,
    sign_github,
    sign_stripe,
    verify,
    verify_alertmanager,
    verify_generic,
    verify_github,
    verify_gitlab,
    verify_grafana,
    verify_sentry,
    verify_slack,
    verify_stripe,
)

FIXTURES = Path(__file__).parent / "fixtures"
NOW = 1_779_783_477.0
SECRET = "s3cr3t-for-tests"


@cache
def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


@cache
def sidecar(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def tamper(body: bytes) -> bytes:
    """The same body with its middle byte changed."""
    middle = len(body) // 2
    return body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]


# -- official vectors and the sidecars' computed signatures ----------------------------


def test_github_official_vector() -> None:
    vector = sidecar("github/headers.json")["official_signature_test_vector"]
    body = vector["payload"].encode()
    headers = {"x-hub-signature-256": vector["X-Hub-Signature-256"]}
    assert sign_github(vector["secret"], body) == vector["X-Hub-Signature-256"]
    assert verify_github(vector["secret"], body, headers, NOW) is Verdict.OK
    assert verify("github", vector["secret"], body, headers, NOW) is Verdict.OK


GITHUB_FILES = sorted(sidecar("github/headers.json")["files"].items())


@pytest.mark.parametrize(("name", "meta"), GITHUB_FILES, ids=[n for n, _ in GITHUB_FILES])
def test_github_computed_signature_of_every_fixture(name: str, meta: dict[str, Any]) -> None:
    secret = sidecar("github/headers.json")["signing_secret_used_for_computed_values"]
    body = fixture_bytes(f"github/{name}")
    signature = meta["computed_X-Hub-Signature-256"]
    assert sign_github(secret, body) == signature
    assert verify("github", secret, body, {"x-hub-signature-256": signature}, NOW) is Verdict.OK
    tampered = verify("github", secret, tamper(body), {"x-hub-signature-256": signature}, NOW)
    assert tampered is Verdict.BAD


def test_sentry_computed_signature() -> None:
    meta = sidecar("sentry/headers.json")["files"]["event_alert.triggered.json"]
    body = fixture_bytes("sentry/event_alert.triggered.json")
    secret = meta["client_secret_used_for_computed_value"]
    headers = {"sentry-hook-signature": meta["computed_Sentry-Hook-Signature"]}
    assert verify("sentry", secret, body, headers, NOW) is Verdict.OK
    assert verify("sentry", secret, tamper(body), headers, NOW) is Verdict.BAD


def test_stripe_computed_vector() -> None:
    vector = sidecar("stripe/signature_test_vector.json")["computed_vector"]
    body = fixture_bytes(f"stripe/{vector['body_file']}")
    t = vector["t"]
    headers = {"stripe-signature": vector["Stripe-Signature"]}
    assert t == 1779783477
    assert sign_stripe(vector["signing_secret"], body, t) == vector["Stripe-Signature"]
    assert verify("stripe", vector["signing_secret"], body, headers, float(t)) is Verdict.OK


def test_slack_official_vector() -> None:
    vector = sidecar("slack/signature_test_vector.json")
    body = fixture_bytes(f"slack/{vector['body_file']}")
    timestamp = vector["X-Slack-Request-Timestamp"]
    headers = {
        "x-slack-signature": vector["X-Slack-Signature"],
        "x-slack-request-timestamp": timestamp,
    }
    assert slack_signature(vector["signing_secret"], timestamp, body) == vector["X-Slack-Signature"]
    assert verify_slack(vector["signing_secret"], body, headers, float(timestamp)) is Verdict.OK
    assert verify_slack(vector["signing_secret"], tamper(body), headers, float(timestamp)) == "bad"


def test_gitlab_token_from_documented_headers() -> None:
    documented = sidecar("gitlab/headers.json")["documented_request_headers_example"]
    headers = {name.lower(): value for name, value in documented.items()}
    body = fixture_bytes("gitlab/push.json")
    assert verify("gitlab", "[REDACTED]", body, headers, NOW) is Verdict.OK
    assert verify("gitlab", "[REDACTED]x", body, headers, NOW) is Verdict.BAD
    assert verify("gitlab", "[redacted]", body, headers, NOW) is Verdict.BAD


# -- good / bad / missing / stale for every scheme -------------------------------------

GITHUB_BODY = fixture_bytes("github/pull_request.opened.json")
GITLAB_BODY = fixture_bytes("gitlab/merge_request.json")
SENTRY_BODY = fixture_bytes("sentry/event_alert.triggered.json")
STRIPE_BODY = fixture_bytes("stripe/charge.succeeded.json")
SLACK_BODY = fixture_bytes("slack/slash_command.txt")
GRAFANA_BODY = fixture_bytes("grafana/alert.firing.json")
ALERTMANAGER_BODY = fixture_bytes("alertmanager/firing.json")
GENERIC_BODY = fixture_bytes("json/statuspage.status.json")
T = int(NOW)


def slack_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "x-slack-signature": slack_signature(secret, str(timestamp), body),
        "x-slack-request-timestamp": str(timestamp),
    }


def grafana_ts_headers(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    signed = str(timestamp).encode() + b":" + body
    return {
        "x-grafana-alerting-signature": hex_hmac(secret, signed),
        "x-grafana-alerting-signature-timestamp": str(timestamp),
    }


Case = tuple[str, Any, bytes, Mapping[str, str], float, Verdict]

CASES: list[Case] = [
    # GitHub
    ("github good", verify_github, GITHUB_BODY,
     {"x-hub-signature-256": sign_github(SECRET, GITHUB_BODY)}, NOW, Verdict.OK),
    ("github wrong secret", verify_github, GITHUB_BODY,
     {"x-hub-signature-256": sign_github("other", GITHUB_BODY)}, NOW, Verdict.BAD),
    ("github tampered body", verify_github, tamper(GITHUB_BODY),
     {"x-hub-signature-256": sign_github(SECRET, GITHUB_BODY)}, NOW, Verdict.BAD),
    ("github missing", verify_github, GITHUB_BODY, {}, NOW, Verdict.MISSING),
    ("github legacy sha1 only is missing", verify_github, GITHUB_BODY,
     {"x-hub-signature": "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6"}, NOW, Verdict.MISSING),
    ("github sha1 value in the 256 header", verify_github, GITHUB_BODY,
     {"x-hub-signature-256": "sha1=" + hex_hmac(SECRET, GITHUB_BODY)}, NOW, Verdict.BAD),
    ("github bare hex without prefix", verify_github, GITHUB_BODY,
     {"x-hub-signature-256": hex_hmac(SECRET, GITHUB_BODY)}, NOW, Verdict.BAD),
    ("github upper-case hex", verify_github, GITHUB_BODY,
     {"x-hub-signature-256": "sha256=" + hex_hmac(SECRET, GITHUB_BODY).upper()}, NOW,
     Verdict.BAD),
    ("github non-hex", verify_github, GITHUB_BODY,
     {"x-hub-signature-256": "sha256=zzzz"}, NOW, Verdict.BAD),
    ("github empty value", verify_github, GITHUB_BODY,
     {"x-hub-signature-256": ""}, NOW, Verdict.BAD),
    ("github names must be lower-cased by the caller", verify_github, GITHUB_BODY,
     {"X-Hub-Signature-256": sign_github(SECRET, GITHUB_BODY)}, NOW, Verdict.MISSING),
    # GitLab
    ("gitlab good", verify_gitlab, GITLAB_BODY, {"x-gitlab-token": SECRET}, NOW, Verdict.OK),
    ("gitlab wrong", verify_gitlab, GITLAB_BODY, {"x-gitlab-token": SECRET + "x"}, NOW,
     Verdict.BAD),
    ("gitlab prefix of secret", verify_gitlab, GITLAB_BODY, {"x-gitlab-token": SECRET[:-1]},
     NOW, Verdict.BAD),
    ("gitlab missing", verify_gitlab, GITLAB_BODY, {}, NOW, Verdict.MISSING),
    ("gitlab non-ascii token", verify_gitlab, GITLAB_BODY, {"x-gitlab-token": "sécret"}, NOW,
     Verdict.BAD),
    # Sentry
    ("sentry good", verify_sentry, SENTRY_BODY,
     {"sentry-hook-signature": hex_hmac(SECRET, SENTRY_BODY)}, NOW, Verdict.OK),
    ("sentry wrong secret", verify_sentry, SENTRY_BODY,
     {"sentry-hook-signature": hex_hmac("other", SENTRY_BODY)}, NOW, Verdict.BAD),
    ("sentry tampered", verify_sentry, tamper(SENTRY_BODY),
     {"sentry-hook-signature": hex_hmac(SECRET, SENTRY_BODY)}, NOW, Verdict.BAD),
    ("sentry missing", verify_sentry, SENTRY_BODY, {}, NOW, Verdict.MISSING),
    # Stripe
    ("stripe good", verify_stripe, STRIPE_BODY,
     {"stripe-signature": sign_stripe(SECRET, STRIPE_BODY, T)}, NOW, Verdict.OK),
    ("stripe good at the tolerance edge", verify_stripe, STRIPE_BODY,
     {"stripe-signature": sign_stripe(SECRET, STRIPE_BODY, T)}, NOW + 300, Verdict.OK),
    ("stripe stale", verify_stripe, STRIPE_BODY,
     {"stripe-signature": sign_stripe(SECRET, STRIPE_BODY, T)}, NOW + 301, Verdict.STALE),
    ("stripe from the future", verify_stripe, STRIPE_BODY,
     {"stripe-signature": sign_stripe(SECRET, STRIPE_BODY, T)}, NOW - 301, Verdict.STALE),
    ("stripe wrong secret", verify_stripe, STRIPE_BODY,
     {"stripe-signature": sign_stripe("other", STRIPE_BODY, T)}, NOW, Verdict.BAD),
    ("stripe wrong and stale is bad", verify_stripe, STRIPE_BODY,
     {"stripe-signature": sign_stripe("other", STRIPE_BODY, T)}, NOW + 9999, Verdict.BAD),
    ("stripe tampered", verify_stripe, tamper(STRIPE_BODY),
     {"stripe-signature": sign_stripe(SECRET, STRIPE_BODY, T)}, NOW, Verdict.BAD),
    ("stripe t changed", verify_stripe, STRIPE_BODY,
     {"stripe-signature": sign_stripe(SECRET, STRIPE_BODY, T).replace(f"t={T}", f"t={T + 1}")},
     NOW, Verdict.BAD),
    ("stripe second of several v1 matches", verify_stripe, STRIPE_BODY,
     {"stripe-signature": f"t={T},v1={'0' * 64},"
      f"v1={hex_hmac(SECRET, f'{T}.'.encode() + STRIPE_BODY)},v0={'1' * 64}"},
     NOW, Verdict.OK),
    ("stripe only v0 matches", verify_stripe, STRIPE_BODY,
     {"stripe-signature": f"t={T},v1={'0' * 64},"
      f"v0={hex_hmac(SECRET, f'{T}.'.encode() + STRIPE_BODY)}"}, NOW, Verdict.BAD),
    ("stripe missing t", verify_stripe, STRIPE_BODY,
     {"stripe-signature": "v1=" + hex_hmac(SECRET, STRIPE_BODY)}, NOW, Verdict.BAD),
    ("stripe non-numeric t", verify_stripe, STRIPE_BODY,
     {"stripe-signature": "t=abc,v1=" + "0" * 64}, NOW, Verdict.BAD),
    ("stripe two t", verify_stripe, STRIPE_BODY,
     {"stripe-signature": f"t={T},t={T},v1=" + "0" * 64}, NOW, Verdict.BAD),
    ("stripe no v1", verify_stripe, STRIPE_BODY, {"stripe-signature": f"t={T}"}, NOW,
     Verdict.BAD),
    ("stripe garbage", verify_stripe, STRIPE_BODY, {"stripe-signature": ",,=,"}, NOW,
     Verdict.BAD),
    ("stripe documented example does not verify here", verify_stripe, STRIPE_BODY,
     {"stripe-signature": sidecar("stripe/signature_test_vector.json")[
         "documented_header_example"].removeprefix("Stripe-Signature: ")},
     1492774577.0, Verdict.BAD),
    ("stripe missing", verify_stripe, STRIPE_BODY, {}, NOW, Verdict.MISSING),
    # Slack-style
    ("slack good", verify_slack, SLACK_BODY, slack_headers(SECRET, SLACK_BODY, T), NOW,
     Verdict.OK),
    ("slack stale", verify_slack, SLACK_BODY, slack_headers(SECRET, SLACK_BODY, T - 301), NOW,
     Verdict.STALE),
    ("slack wrong secret", verify_slack, SLACK_BODY, slack_headers("x", SLACK_BODY, T), NOW,
     Verdict.BAD),
    ("slack tampered", verify_slack, tamper(SLACK_BODY), slack_headers(SECRET, SLACK_BODY, T),
     NOW, Verdict.BAD),
    ("slack timestamp missing", verify_slack, SLACK_BODY,
     {"x-slack-signature": slack_signature(SECRET, str(T), SLACK_BODY)}, NOW, Verdict.BAD),
    ("slack timestamp not digits", verify_slack, SLACK_BODY,
     {"x-slack-signature": slack_signature(SECRET, "1_0", SLACK_BODY),
      "x-slack-request-timestamp": "1_0"}, NOW, Verdict.BAD),
    ("slack missing", verify_slack, SLACK_BODY, {}, NOW, Verdict.MISSING),
    # Grafana
    ("grafana hmac", verify_grafana, GRAFANA_BODY,
     {"x-grafana-alerting-signature": hex_hmac(SECRET, GRAFANA_BODY)}, NOW, Verdict.OK),
    ("grafana hmac under the library's default header name", verify_grafana, GRAFANA_BODY,
     {"x-grafana-alert-signature": hex_hmac(SECRET, GRAFANA_BODY)}, NOW, Verdict.OK),
    ("grafana hmac wrong", verify_grafana, GRAFANA_BODY,
     {"x-grafana-alerting-signature": hex_hmac("other", GRAFANA_BODY)}, NOW, Verdict.BAD),
    ("grafana hmac tampered", verify_grafana, tamper(GRAFANA_BODY),
     {"x-grafana-alerting-signature": hex_hmac(SECRET, GRAFANA_BODY)}, NOW, Verdict.BAD),
    ("grafana hmac with timestamp", verify_grafana, GRAFANA_BODY,
     grafana_ts_headers(SECRET, GRAFANA_BODY, T), NOW, Verdict.OK),
    ("grafana hmac with stale timestamp", verify_grafana, GRAFANA_BODY,
     grafana_ts_headers(SECRET, GRAFANA_BODY, T - 301), NOW, Verdict.STALE),
    ("grafana body-only hmac when a timestamp is sent", verify_grafana, GRAFANA_BODY,
     {"x-grafana-alerting-signature": hex_hmac(SECRET, GRAFANA_BODY),
      "x-grafana-alerting-signature-timestamp": str(T)}, NOW, Verdict.BAD),
    ("grafana timestamp garbage", verify_grafana, GRAFANA_BODY,
     {"x-grafana-alerting-signature": hex_hmac(SECRET, GRAFANA_BODY),
      "x-grafana-alerting-signature-timestamp": "soon"}, NOW, Verdict.BAD),
    ("grafana bearer", verify_grafana, GRAFANA_BODY, {"authorization": f"Bearer {SECRET}"},
     NOW, Verdict.OK),
    ("grafana bearer scheme is case-insensitive", verify_grafana, GRAFANA_BODY,
     {"authorization": f"bearer {SECRET}"}, NOW, Verdict.OK),
    ("grafana basic", verify_grafana, GRAFANA_BODY, {"authorization": basic("grafana", SECRET)},
     NOW, Verdict.OK),
    ("grafana basic wrong password", verify_grafana, GRAFANA_BODY,
     {"authorization": basic(SECRET, "nope")}, NOW, Verdict.BAD),
    ("grafana bad hmac but good bearer", verify_grafana, GRAFANA_BODY,
     {"x-grafana-alerting-signature": "00", "authorization": f"Bearer {SECRET}"}, NOW,
     Verdict.OK),
    ("grafana missing", verify_grafana, GRAFANA_BODY, {}, NOW, Verdict.MISSING),
    # Alertmanager
    ("alertmanager bearer", verify_alertmanager, ALERTMANAGER_BODY,
     {"authorization": f"Bearer {SECRET}"}, NOW, Verdict.OK),
    ("alertmanager basic", verify_alertmanager, ALERTMANAGER_BODY,
     {"authorization": basic("am", SECRET)}, NOW, Verdict.OK),
    ("alertmanager basic with a colon in the password", verify_alertmanager,
     ALERTMANAGER_BODY, {"authorization": basic("am", "a:b")}, NOW, Verdict.BAD),
    ("alertmanager wrong bearer", verify_alertmanager, ALERTMANAGER_BODY,
     {"authorization": "Bearer nope"}, NOW, Verdict.BAD),
    ("alertmanager basic not base64", verify_alertmanager, ALERTMANAGER_BODY,
     {"authorization": "Basic !!!"}, NOW, Verdict.BAD),
    ("alertmanager basic without colon", verify_alertmanager, ALERTMANAGER_BODY,
     {"authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}, NOW,
     Verdict.BAD),
    ("alertmanager other scheme", verify_alertmanager, ALERTMANAGER_BODY,
     {"authorization": f"Token {SECRET}"}, NOW, Verdict.BAD),
    ("alertmanager bare secret", verify_alertmanager, ALERTMANAGER_BODY,
     {"authorization": SECRET}, NOW, Verdict.BAD),
    ("alertmanager missing", verify_alertmanager, ALERTMANAGER_BODY, {}, NOW, Verdict.MISSING),
    # Generic
    ("generic signature", verify_generic, GENERIC_BODY,
     {"x-signature-256": sign_generic(SECRET, GENERIC_BODY)}, NOW, Verdict.OK),
    ("generic tampered", verify_generic, tamper(GENERIC_BODY),
     {"x-signature-256": sign_generic(SECRET, GENERIC_BODY)}, NOW, Verdict.BAD),
    ("generic bearer", verify_generic, GENERIC_BODY, {"authorization": f"Bearer {SECRET}"},
     NOW, Verdict.OK),
    ("generic wrong bearer", verify_generic, GENERIC_BODY, {"authorization": "Bearer x"}, NOW,
     Verdict.BAD),
    ("generic basic is not accepted", verify_generic, GENERIC_BODY,
     {"authorization": basic("u", SECRET)}, NOW, Verdict.BAD),
    ("generic missing", verify_generic, GENERIC_BODY, {}, NOW, Verdict.MISSING),
]  # fmt: skip


@pytest.mark.parametrize(
    ("scheme", "body", "headers", "now", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_scheme(
    scheme: Any, body: bytes, headers: Mapping[str, str], now: float, expected: Verdict
) -> None:
    assert scheme(SECRET, body, headers, now) is expected


def test_stripe_tolerance_is_a_parameter() -> None:
    headers = {"stripe-signature": sign_stripe(SECRET, STRIPE_BODY, T)}
    assert verify_stripe(SECRET, STRIPE_BODY, headers, NOW + 60, tolerance=30) is Verdict.STALE
    assert verify_stripe(SECRET, STRIPE_BODY, headers, NOW + 600, tolerance=900) is Verdict.OK


def test_sign_helpers_match_the_documented_formats() -> None:
    assert sign_generic(SECRET, GENERIC_BODY) == "sha256=" + hex_hmac(SECRET, GENERIC_BODY)
    assert sign_stripe(SECRET, b"{}", 12) == f"t=12,v1={hex_hmac(SECRET, b'12.{}')}"


# -- the dispatcher --------------------------------------------------------------------


def test_every_sender_has_a_scheme() -> None:
    assert set(SCHEMES) == set(SENDERS)


@pytest.mark.parametrize("sender", SENDERS)
def test_no_secret_means_the_url_is_the_credential(sender: Sender) -> None:
    assert verify(sender, None, b"{}", {}, NOW) is Verdict.OK


@pytest.mark.parametrize("sender", SENDERS)
def test_empty_secret_authenticates_nothing(sender: Sender) -> None:
    headers = {"x-gitlab-token": "", "authorization": "Bearer ", "x-signature-256": ""}
    assert verify(sender, "", b"{}", headers, NOW) is Verdict.BAD


@pytest.mark.parametrize("sender", SENDERS)
def test_a_secret_with_no_credential_is_missing(sender: Sender) -> None:
    headers = {"content-type": "application/json"}
    assert verify(sender, SECRET, b"{}", headers, NOW) is Verdict.MISSING


# -- arbitrary input never raises -------------------------------------------------------

HEADER_NAMES = [
    "x-hub-signature-256",
    "x-gitlab-token",
    "stripe-signature",
    "x-slack-signature",
    "x-slack-request-timestamp",
    "sentry-hook-signature",
    "x-grafana-alerting-signature",
    "x-grafana-alert-signature",
    "x-grafana-alerting-signature-timestamp",
    "authorization",
    "x-signature-256",
]
# Any code point, lone surrogates included, plus values shaped like the real headers.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=80)
SHAPED = st.one_of(
    ANY_TEXT,
    st.builds(lambda t, v: f"t={t},v1={v}", st.integers(), ANY_TEXT),
    st.builds(lambda v: f"sha256={v}", ANY_TEXT),
    st.builds(lambda s, v: f"{s} {v}", st.sampled_from(["Bearer", "Basic", "basic"]), ANY_TEXT),
    st.builds(lambda v: "Basic " + base64.b64encode(v).decode(), st.binary(max_size=40)),
)


@settings(max_examples=300, deadline=None)
@given(
    sender=st.sampled_from(SENDERS),
    body=st.binary(max_size=200),
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), SHAPED),
    now=st.floats(allow_nan=True, allow_infinity=True),
)
def test_garbage_headers_never_raise_and_never_pass(
    sender: Sender, body: bytes, headers: dict[str, str], now: float
) -> None:
    verdict = verify(sender, SECRET, body, headers, now)
    assert verdict in {Verdict.MISSING, Verdict.BAD}


@settings(max_examples=200, deadline=None)
@given(
    sender=st.sampled_from(SENDERS),
    secret=ANY_TEXT.filter(bool),
    headers=st.dictionaries(st.sampled_from(HEADER_NAMES), SHAPED),
)
def test_any_secret_and_headers_give_a_verdict(
    sender: Sender, secret: str, headers: dict[str, str]
) -> None:
    # The generated token may equal the generated secret, so any verdict is fine here.
    assert verify(sender, secret, b"{}", headers, NOW) in set(Verdict)


@settings(max_examples=100, deadline=None)
@given(headers=st.dictionaries(st.sampled_from(HEADER_NAMES), SHAPED), now=st.floats())
def test_slack_garbage_never_raises(headers: dict[str, str], now: float) -> None:
    assert verify_slack(SECRET, SLACK_BODY, headers, now) in {Verdict.MISSING, Verdict.BAD}


def _stripe_signed_input(body: bytes, timestamp: int) -> tuple[bytes, str]:
    """What an old Stripe signature covers, and its hex: '{t}.{body}'."""
    signed = f"{timestamp}.".encode() + body
    v1 = sign_stripe(SECRET, body, timestamp).split("v1=")[1]
    return signed, v1


@pytest.mark.parametrize(
    "replay",
    [
        lambda signed, hex_: verify_sentry(SECRET, signed, {"sentry-hook-signature": hex_}, NOW),
        lambda signed, hex_: verify_generic(
            SECRET, signed, {"x-signature-256": "sha256=" + hex_}, NOW
        ),
        lambda signed, hex_: verify_github(
            SECRET, signed, {"x-hub-signature-256": "sha256=" + hex_}, NOW
        ),
        lambda signed, hex_: verify_grafana(
            SECRET, signed, {"x-grafana-alerting-signature": hex_}, NOW
        ),
    ],
)
def test_an_old_timestamped_signature_cannot_be_replayed_as_a_plain_one(replay: Any) -> None:
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'
    day_old = int(NOW) - 86_400
    assert (
        verify_stripe(SECRET, body, {"stripe-signature": sign_stripe(SECRET, body, day_old)}, NOW)
        is Verdict.STALE
    )
    signed, hex_ = _stripe_signed_input(body, day_old)
    assert replay(signed, hex_) is Verdict.BAD


def test_an_old_slack_v0_signature_cannot_be_replayed_as_a_generic_hmac() -> None:
    body = b'{"text": "deploy"}'
    day_old = str(int(NOW) - 86_400)
    v0 = slack_signature(SECRET, day_old, body).removeprefix("v0=")
    signed = b"v0:" + day_old.encode() + b":" + body
    headers = {"x-signature-256": "sha256=" + v0}
    assert verify_generic(SECRET, signed, headers, NOW) is Verdict.BAD


def test_ordinary_bodies_still_verify_with_plain_hmacs() -> None:
    for body in (b'{"a": 1}', b"[1, 2]", b"payload=%7B%7D", b"12 deploys done", b"1.5"):
        headers = {"x-signature-256": sign_generic(SECRET, body)}
        assert verify_generic(SECRET, body, headers, NOW) is Verdict.OK
