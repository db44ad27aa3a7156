"""Webhook presets against the real published payloads in tests/fixtures/.

Headers come from the fixtures' sidecars (tests/fixtures/*/headers.json and the Stripe
signature vector). Where a test needs a state no published payload shows (a merged copy of
an opened PR, a failed workflow run, a 500-commit push), it derives it from a real fixture
and says so.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.slack import blocks as bk
from bot.webhooks.event import SENDERS, InboundEvent, Rendered, Sender
from bot.webhooks.presets import (
    dedupe_key,
    detect_sender,
    event_name,
    format_amount,
    render,
    render_preset,
    sample_event,
)

FIXTURES = Path(__file__).parent / "fixtures"
JsonPath = tuple[str | int, ...]


@cache
def _load(relative: str) -> Any:
    return json.loads((FIXTURES / relative).read_text(encoding="utf-8"))


def load(relative: str) -> Any:
    """A fresh copy of a fixture payload, safe to modify."""
    return copy.deepcopy(_load(relative))


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def github_headers(name: str) -> dict[str, str]:
    sidecar = _load("github/headers.json")
    documented = sidecar["documented_example_delivery"]
    return lower(
        {
            "X-GitHub-Event": sidecar["files"][name]["X-GitHub-Event"],
            "X-GitHub-Delivery": documented["X-GitHub-Delivery"],
            "User-Agent": documented["User-Agent"],
            "Content-Type": documented["Content-Type"],
            "X-Hub-Signature-256": sidecar["files"][name]["computed_X-Hub-Signature-256"],
        }
    )


def gitlab_headers(name: str) -> dict[str, str]:
    sidecar = _load("gitlab/headers.json")
    documented = dict(sidecar["documented_request_headers_example"])
    documented["X-Gitlab-Event"] = sidecar["files"][name]["X-Gitlab-Event"]
    return lower(documented)


def sentry_headers(name: str) -> dict[str, str]:
    sidecar = _load("sentry/headers.json")
    headers = dict(sidecar["documented_headers"])
    headers["Sentry-Hook-Resource"] = sidecar["files"][name]["Sentry-Hook-Resource"]
    headers["Sentry-Hook-Signature"] = sidecar["files"][name]["computed_Sentry-Hook-Signature"]
    return lower(headers)


def stripe_headers(name: str) -> dict[str, str]:
    vector = _load("stripe/signature_test_vector.json")
    seen = {k: v for k, v in vector["other_headers_seen_in_real_deliveries"].items() if k[0] != "_"}
    return lower({**seen, "Stripe-Signature": vector["computed_vector"]["Stripe-Signature"]})


def json_headers(name: str) -> dict[str, str]:
    return {"content-type": "application/json"}


HEADERS_FOR = {
    "github": github_headers,
    "gitlab": gitlab_headers,
    "sentry": sentry_headers,
    "stripe": stripe_headers,
    "alertmanager": json_headers,
    "grafana": json_headers,
}

ALL_FIXTURES = [
    "github/push.json",
    "github/pull_request.opened.json",
    "github/pull_request.closed.json",
    "github/pull_request.closed.merged.json",
    "github/issues.opened.json",
    "github/release.published.json",
    "github/workflow_run.completed.json",
    "github/workflow_job.completed.failure.json",
    "github/check_run.completed.json",
    "github/check_run.completed.failure.json",
    "github/ping.json",
    "gitlab/push.json",
    "gitlab/merge_request.json",
    "gitlab/pipeline.json",
    "alertmanager/firing.json",
    "alertmanager/resolved.json",
    "alertmanager/firing.multiple.json",
    "grafana/alert.firing.json",
    "grafana/alert.resolved.json",
    "sentry/event_alert.triggered.json",
    "stripe/charge.succeeded.json",
    "stripe/event.fixture.json",
]


def fixture_headers(relative: str) -> dict[str, str]:
    folder, name = relative.split("/")
    return HEADERS_FOR[folder](name)


def event_for(relative: str, payload: Any = None) -> InboundEvent:
    """The InboundEvent the receiver would build for this fixture (or a variant of it)."""
    headers = fixture_headers(relative)
    body = load(relative) if payload is None else payload
    sender = detect_sender(headers, body)
    return InboundEvent(sender, event_name(sender, headers, body), body, headers)


def all_text(rendered: Rendered) -> str:
    """Everything a person could read in the message."""
    return rendered.text + "\n" + json.dumps(rendered.blocks, ensure_ascii=False)


def assert_within_slack_limits(rendered: Rendered) -> None:
    assert isinstance(rendered.text, str)
    assert rendered.text
    assert len(rendered.text) <= bk.MESSAGE_TEXT_MAX
    assert 1 <= len(rendered.blocks) <= bk.MAX_BLOCKS
    for block in rendered.blocks:
        check = _BLOCK_CHECKS[block["type"]]
        check(block)
    json.dumps(rendered.blocks)  # plain JSON, postable as is


def _check_header(block: dict[str, Any]) -> None:
    assert 1 <= len(block["text"]["text"]) <= bk.HEADER_MAX


def _check_section(block: dict[str, Any]) -> None:
    assert "text" in block or "fields" in block
    if "text" in block:
        assert 1 <= len(block["text"]["text"]) <= bk.SECTION_TEXT_MAX
    if "fields" in block:
        assert 1 <= len(block["fields"]) <= bk.MAX_FIELDS
        assert all(1 <= len(f["text"]) <= bk.FIELD_TEXT_MAX for f in block["fields"])


def _check_context(block: dict[str, Any]) -> None:
    assert 1 <= len(block["elements"]) <= bk.MAX_CONTEXT_ELEMENTS
    assert all(1 <= len(e["text"]) <= bk.CONTEXT_TEXT_MAX for e in block["elements"])


def _check_divider(block: dict[str, Any]) -> None:
    assert block == {"type": "divider"}


_BLOCK_CHECKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "header": _check_header,
    "section": _check_section,
    "context": _check_context,
    "divider": _check_divider,
}


# --- detect_sender ----------------------------------------------------------------------


@pytest.mark.parametrize("relative", ALL_FIXTURES)
def test_detect_sender_with_real_headers(relative: str) -> None:
    expected = relative.split("/")[0]
    assert detect_sender(fixture_headers(relative), load(relative)) == expected


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        # these senders are recognisable from the body alone
        ("alertmanager/firing.json", "alertmanager"),
        ("alertmanager/resolved.json", "alertmanager"),
        ("alertmanager/firing.multiple.json", "alertmanager"),
        ("grafana/alert.firing.json", "grafana"),
        ("grafana/alert.resolved.json", "grafana"),
        ("stripe/charge.succeeded.json", "stripe"),
        ("stripe/event.fixture.json", "stripe"),
        # these need their event header
        ("github/pull_request.opened.json", "generic"),
        ("gitlab/merge_request.json", "generic"),
        ("sentry/event_alert.triggered.json", "generic"),
    ],
)
def test_detect_sender_from_body_alone(relative: str, expected: str) -> None:
    assert detect_sender({}, load(relative)) == expected


def test_alertmanager_user_agent_wins_over_grafana_like_body() -> None:
    headers = {"user-agent": "Alertmanager/0.27.0"}
    assert detect_sender(headers, load("grafana/alert.firing.json")) == "alertmanager"


@pytest.mark.parametrize("payload", [[], "text", None, 5, {"alerts": 5}, {"object": "event"}])
def test_detect_sender_odd_bodies_are_generic(payload: Any) -> None:
    assert detect_sender({}, payload) == "generic"


# --- event_name ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("github/push.json", "push"),
        ("github/pull_request.opened.json", "pull_request"),
        ("github/workflow_job.completed.failure.json", "workflow_job"),
        ("gitlab/merge_request.json", "Merge Request Hook"),
        ("gitlab/pipeline.json", "Pipeline Hook"),
        ("stripe/charge.succeeded.json", "charge.succeeded"),
        ("stripe/event.fixture.json", "plan.created"),
        ("sentry/event_alert.triggered.json", "event_alert.triggered"),
        ("alertmanager/firing.json", "firing"),
        ("alertmanager/resolved.json", "resolved"),
        ("grafana/alert.resolved.json", "resolved"),
    ],
)
def test_event_name_of_fixtures(relative: str, expected: str) -> None:
    assert event_for(relative).event == expected


@pytest.mark.parametrize(
    ("headers", "payload", "expected"),
    [
        ({"x-event-type": "deploy"}, {"event": "ignored"}, "deploy"),
        ({"x-event": "build"}, {}, "build"),
        ({}, {"event": "deploy.finished"}, "deploy.finished"),
        ({}, {"type": "incident", "action": "x"}, "incident"),
        ({}, {"action": "opened"}, "opened"),
        ({}, {"event": 5}, "event"),
        ({}, ["a"], "event"),
        ({}, "plain text", "event"),
        ({}, {"event": "e" * 500}, "e" * 100),
    ],
)
def test_event_name_generic(headers: dict[str, str], payload: Any, expected: str) -> None:
    assert event_name("generic", headers, payload) == expected


def test_event_name_sentry_without_action_is_the_resource() -> None:
    assert event_name("sentry", {"sentry-hook-resource": "installation"}, {}) == "installation"


# --- dedupe_key -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("github/push.json", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        ("gitlab/push.json", "9cebe914-4827-408f-b014-cfa23a47a35f"),
        ("stripe/charge.succeeded.json", "evt_3TbGBUJEe0yY0QKr1eTEBGsV"),
        ("sentry/event_alert.triggered.json", "<request_uuid>"),
    ],
)
def test_dedupe_key_is_the_senders_delivery_id(relative: str, expected: str) -> None:
    event = event_for(relative)
    assert dedupe_key(event.sender, event.headers, event.payload) == expected


def test_dedupe_key_falls_back_to_idempotency_key() -> None:
    headers = gitlab_headers("push.json")
    del headers["x-gitlab-event-uuid"]
    assert dedupe_key("gitlab", headers, load("gitlab/push.json")) == (
        "3a427872-00df-429c-9bc9-a9475de2efe4"
    )
    assert dedupe_key("generic", {"idempotency-key": "k-1"}, {"a": 1}) == "k-1"


def test_dedupe_key_none_when_nothing_identifies_it() -> None:
    assert dedupe_key("generic", {}, {"a": 1}) is None
    assert dedupe_key("github", {"x-github-event": "push"}, {}) is None
    assert dedupe_key("alertmanager", {}, "text") is None


@pytest.mark.parametrize("relative", ALL_FIXTURES)
def test_dedupe_key_present_and_stable(relative: str) -> None:
    first = event_for(relative)
    again = event_for(relative, json.loads(json.dumps(load(relative))))
    key = dedupe_key(first.sender, first.headers, first.payload)
    assert key
    assert key == dedupe_key(again.sender, again.headers, again.payload)


@pytest.mark.parametrize(
    ("sender", "relative"),
    [
        ("alertmanager", "alertmanager/firing.multiple.json"),
        ("grafana", "grafana/alert.firing.json"),
    ],
)
def test_alert_dedupe_key_ignores_alert_order_but_not_state(sender: Sender, relative: str) -> None:
    payload = load(relative)
    reordered = {**payload, "alerts": list(reversed(payload["alerts"]))}
    resolved = copy.deepcopy(payload)
    resolved["alerts"][0]["status"] = "resolved"
    key = dedupe_key(sender, {}, payload)
    assert key is not None and len(key) == 64
    assert dedupe_key(sender, {}, reordered) == key
    assert dedupe_key(sender, {}, resolved) != key


def test_alertmanager_firing_and_resolved_are_different_deliveries() -> None:
    firing = dedupe_key("alertmanager", {}, load("alertmanager/firing.json"))
    resolved = dedupe_key("alertmanager", {}, load("alertmanager/resolved.json"))
    assert firing != resolved


# --- render: key facts ----------------------------------------------------------------------

KEY_FACTS = [
    ("github/push.json", ["Codertocat/Hello-World", "deleted tag", "simple-tag"]),
    (
        "github/pull_request.opened.json",
        [
            "#2 Update the README with new information.",
            "https://github.com/Codertocat/Hello-World/pull/2",
            "Codertocat/Hello-World",
            "Codertocat opened pull request #2",
            "`master` ← `changes`",
            "+1 -1 in 1 file",
        ],
    ),
    ("github/pull_request.closed.json", ["Codertocat closed pull request #2", ":red_circle:"]),
    (
        "github/pull_request.closed.merged.json",
        ["#13 PR to create merge payload", "FakeUser1 merged", "`main` ← `MergeTest`"],
    ),
    (
        "github/issues.opened.json",
        ["#1 Spelling error in the README file", "issues/1", "*Labels*\\nbug"],
    ),
    (
        "github/release.published.json",
        ["releases/tag/0.0.1", "Codertocat published release `0.0.1`"],
    ),
    (
        "github/workflow_run.completed.json",
        [
            "test #163",
            ":white_check_mark:",
            "succeeded on `master`",
            "`3484a3f`",
            "ci(action): update actions/setup-node digest to 8c91899",
            "octo-org/octo-repo/actions/runs/289782451",
        ],
    ),
    (
        "github/workflow_job.completed.failure.json",
        ["Job *<", "linters", "*CodeQL* failed", "Run yarn run format-check", ":x:"],
    ),
    ("github/check_run.completed.json", ["Octocoders-linter", "succeeded on `changes`"]),
    (
        "github/check_run.completed.failure.json",
        ["Octocoders-linter", "failed on `changes`", "`ec26c3e`", "pull/2|#2"],
    ),
    ("github/ping.json", ["Webhook configured", "_Anything added dilutes everything else._"]),
    (
        "gitlab/push.json",
        [
            "mike/diaspora",
            "John Smith* pushed 4 commits",
            "`b6568db`",
            "Update Catalan translation to e38cb41.",
            "— Jordi Mallach",
            "2 more commits not listed",
            "compare/95790bf891e76fee5e1747ab589903a6a1f80f22...da1560886d4f",
        ],
    ),
    (
        "gitlab/merge_request.json",
        ["!1 MS-Viewport", "merge_requests/1", "`master` ← `ms-viewport`", "Administrator opened"],
    ),
    (
        "gitlab/pipeline.json",
        ["Pipeline #31", "passed on `master`", "`test-build`", "(test): script_failure", "1m 3s"],
    ),
    (
        "alertmanager/firing.json",
        [
            "[FIRING:1] Fire",
            "*Severity*\\ncritical",
            "Something is on fire",
            "http://localhost:9090/graph?g0.expr=vector%28666%29&amp;g0.tab=1|Source",
        ],
    ),
    ("alertmanager/resolved.json", ["[RESOLVED] Fire", "1 resolved"]),
    (
        "alertmanager/firing.multiple.json",
        [
            "[FIRING:2] High CPU Temperature",
            "High CPU core temperature",
            "CPU core temperature is 34.75C",
            "CPU core temperature is 17.625C",
            "host=andromeda",
            "2 firing",
        ],
    ),
    (
        "grafana/alert.firing.json",
        [
            "[FIRING:2] (blue)",
            "High memory usage",
            "High CPU usage",
            "This alert was triggered for zone us-1",
            "B=44.2394, C=1",
            "team=blue, zone=us-1",
            "|Silence>",
            "https://play.grafana.org/alerting/1afz29v7z/edit|Source",
        ],
    ),
    (
        "grafana/alert.resolved.json",
        ["[RESOLVED] (Test alert true)", "*State*\\nok", "failure on &lt;no value&gt;"],
    ),
    (
        "sentry/event_alert.triggered.json",
        [
            "ReferenceError: heck is not defined",
            "`?(&lt;anonymous&gt;)`",
            "*Project*\\nfront-end",
            "*Level*\\nerror",
            "sentry.io/organizations/test-org/issues/1117540176/events/",
            "Very Important Alert Rule!",
        ],
    ),
    (
        "stripe/charge.succeeded.json",
        [
            "$222.00",
            "Payment succeeded",
            "dfdfvds",
            "_(test mode)_",
            "https://dashboard.stripe.com/test/payments/pi_3TbGBUJEe0yY0QKr1NhtlhQp",
        ],
    ),
    ("stripe/event.fixture.json", ["Stripe", "`plan.created`", "evt_1Pgc76B7WZ01zgkWwyRHS12y"]),
]


@pytest.mark.parametrize(("relative", "facts"), KEY_FACTS)
def test_render_fixture_carries_key_facts(relative: str, facts: list[str]) -> None:
    rendered = render(event_for(relative))
    shown = all_text(rendered)
    for fact in facts:
        assert fact in shown, f"{fact!r} missing from {relative}"
    assert_within_slack_limits(rendered)


def test_every_fixture_has_a_key_facts_case() -> None:
    assert sorted(relative for relative, _ in KEY_FACTS) == sorted(ALL_FIXTURES)


@pytest.mark.parametrize("relative", [r for r in ALL_FIXTURES if r != "stripe/event.fixture.json"])
def test_every_known_fixture_gets_its_preset_rendering(relative: str) -> None:
    assert render_preset(event_for(relative)) is not None


def test_fallback_text_is_a_one_line_summary() -> None:
    rendered = render(event_for("github/pull_request.opened.json"))
    assert rendered.text == (
        "[Codertocat/Hello-World] Codertocat opened pull request #2: "
        "Update the README with new information."
    )


# --- render: threads ------------------------------------------------------------------------

THREADS = [
    ("github/pull_request.opened.json", "github:Codertocat/Hello-World:pr:2", False, None),
    (
        "github/pull_request.closed.json",
        "github:Codertocat/Hello-World:pr:2",
        True,
        "no_entry_sign",
    ),
    (
        "github/pull_request.closed.merged.json",
        "github:Azure/azure-sdk-fake:pr:13",
        True,
        "white_check_mark",
    ),
    ("github/issues.opened.json", "github:Codertocat/Hello-World:issue:1", False, None),
    (
        "github/workflow_run.completed.json",
        "github:octo-org/octo-repo:wf:2823525:master",
        True,
        "white_check_mark",
    ),
    # a check run joins its pull request's thread without rewriting the PR's root message
    ("github/check_run.completed.failure.json", "github:Codertocat/Hello-World:pr:2", False, None),
    ("github/push.json", None, False, None),
    ("github/release.published.json", None, False, None),
    ("gitlab/merge_request.json", "gitlab:1:mr:1", False, None),
    ("gitlab/pipeline.json", "gitlab:1:pipeline:master", True, "white_check_mark"),
    ("gitlab/push.json", None, False, None),
    # Alert threads are per incident: the group key, and when its first alert started.
    (
        "alertmanager/firing.json",
        'alertmanager:{}:{alertname="Fire"}@20181104T214358Z',
        False,
        None,
    ),
    (
        "alertmanager/resolved.json",
        'alertmanager:{}:{alertname="Fire"}@20181104T214358Z',
        True,
        "white_check_mark",
    ),
    ("grafana/alert.firing.json", "grafana:{}:{}@20211012T075103Z", False, None),
    (
        "grafana/alert.resolved.json",
        'grafana:{}/{test="true"}:{}@20220617T004100Z',
        True,
        "white_check_mark",
    ),
    ("sentry/event_alert.triggered.json", "sentry:issue:1117540176", False, None),
    (
        "stripe/charge.succeeded.json",
        "stripe:payment_intent:pi_3TbGBUJEe0yY0QKr1NhtlhQp",
        True,
        "white_check_mark",
    ),
    ("stripe/event.fixture.json", None, False, None),
]


@pytest.mark.parametrize(("relative", "key", "updates_root", "reaction"), THREADS)
def test_thread_key_and_root_update(
    relative: str, key: str | None, updates_root: bool, reaction: str | None
) -> None:
    rendered = render(event_for(relative))
    assert (rendered.thread_key, rendered.updates_root, rendered.reaction) == (
        key,
        updates_root,
        reaction,
    )


def test_pr_opened_and_merged_share_a_thread_and_merged_updates_the_root() -> None:
    opened = load("github/pull_request.opened.json")
    # derived from the real opened delivery: what GitHub sends when that PR is merged
    merged = copy.deepcopy(opened)
    merged["action"] = "closed"
    merged["pull_request"].update(state="closed", merged=True)
    first = render(event_for("github/pull_request.opened.json", opened))
    last = render(event_for("github/pull_request.opened.json", merged))
    assert first.thread_key == last.thread_key == "github:Codertocat/Hello-World:pr:2"
    assert (first.updates_root, last.updates_root, last.reaction) == (
        False,
        True,
        "white_check_mark",
    )
    assert "merged pull request #2" in last.text


def test_failed_workflow_run_marks_the_root_with_x() -> None:
    # no published failed workflow_run exists (fixtures README); derived from the real one
    payload = load("github/workflow_run.completed.json")
    payload["workflow_run"]["conclusion"] = "failure"
    rendered = render(event_for("github/workflow_run.completed.json", payload))
    assert rendered.thread_key == "github:octo-org/octo-repo:wf:2823525:master"
    assert (rendered.updates_root, rendered.reaction) == (True, "x")
    assert "|test #163>* failed on `master`" in all_text(rendered)


@pytest.mark.parametrize(
    ("action", "updates_root", "reaction"),
    [
        ("merge", True, "white_check_mark"),
        ("close", True, "no_entry_sign"),
        ("update", False, None),
    ],
)
def test_gitlab_merge_request_actions(
    action: str, updates_root: bool, reaction: str | None
) -> None:
    payload = load("gitlab/merge_request.json")
    payload["object_attributes"]["action"] = action
    rendered = render(event_for("gitlab/merge_request.json", payload))
    assert rendered.thread_key == "gitlab:1:mr:1"
    assert (rendered.updates_root, rendered.reaction) == (updates_root, reaction)


def test_alert_firing_then_resolved_share_the_thread() -> None:
    firing = render(event_for("alertmanager/firing.json"))
    resolved = render(event_for("alertmanager/resolved.json"))
    assert firing.thread_key == resolved.thread_key
    assert (firing.updates_root, resolved.updates_root) == (False, True)


@pytest.mark.parametrize("fixture", ["alertmanager/firing.json", "grafana/alert.firing.json"])
def test_an_alert_firing_again_after_resolving_starts_a_new_thread(fixture: str) -> None:
    # Issue 12, defect 8: firing → resolved → firing again (a new startsAt) was only a
    # reply in the first, resolved thread.
    firing = load(fixture)
    resolved = copy.deepcopy(firing)
    resolved["status"] = "resolved"
    for alert in resolved["alerts"]:
        alert |= {"status": "resolved", "endsAt": "2031-01-06T10:05:00Z"}
    again = copy.deepcopy(firing)
    for alert in again["alerts"]:
        alert["startsAt"] = "2031-01-06T11:00:00.123456789Z"
    first, closing, second = (render(event_for(fixture, p)) for p in (firing, resolved, again))
    assert first.thread_key == closing.thread_key and closing.updates_root
    assert second.thread_key != first.thread_key and not second.updates_root


def test_an_alert_joining_a_firing_group_stays_in_its_thread() -> None:
    firing = load("alertmanager/firing.json")
    grown = copy.deepcopy(firing)
    joined = copy.deepcopy(grown["alerts"][0])
    joined |= {"startsAt": "2018-11-04T23:10:00+01:00", "fingerprint": "second"}
    grown["alerts"].append(joined)
    first = render(event_for("alertmanager/firing.json", firing))
    later = render(event_for("alertmanager/firing.json", grown))
    assert first.thread_key == later.thread_key


def test_grafana_without_group_key_threads_by_fingerprints() -> None:
    payload = load("grafana/alert.firing.json")
    del payload["groupKey"]
    first = render(event_for("grafana/alert.firing.json", payload))
    payload["alerts"].reverse()
    second = render(event_for("grafana/alert.firing.json", payload))
    assert first.thread_key is not None
    assert first.thread_key.startswith("grafana:")
    assert first.thread_key == second.thread_key


# --- Stripe amounts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1999, "usd", "$19.99"),
        (22200, "usd", "$222.00"),
        (5, "USD", "$0.05"),
        (0, "usd", "$0.00"),
        (-500, "usd", "-$5.00"),
        (123456789, "eur", "€1,234,567.89"),
        (500, "jpy", "¥500"),
        (1500, "krw", "1,500 KRW"),
        (1234, "kwd", "1.234 KWD"),
        (1999, "chf", "19.99 CHF"),
        (1999, "", "19.99"),
        (2**70, "usd", "(amount too large) USD"),
    ],
)
def test_format_amount(amount: int, currency: str, shown: str) -> None:
    assert format_amount(amount, currency) == shown


def test_zero_decimal_currency_in_a_real_charge() -> None:
    payload = load("stripe/charge.succeeded.json")
    payload["data"]["object"].update(currency="jpy", amount=500)
    assert "*¥500*" in all_text(render(event_for("stripe/charge.succeeded.json", payload)))


def test_live_charge_links_to_the_live_dashboard() -> None:
    payload = load("stripe/charge.succeeded.json")
    payload["livemode"] = True
    shown = all_text(render(event_for("stripe/charge.succeeded.json", payload)))
    assert "https://dashboard.stripe.com/payments/pi_3TbGBUJEe0yY0QKr1NhtlhQp" in shown
    assert "test mode" not in shown


# No published payloads exist for these types (fixtures README, "Not found"); the objects
# below hold only the documented fields the renderer reads.
SYNTHETIC_STRIPE = [
    (
        "invoice.payment_failed",
        {
            "id": "in_1",
            "object": "invoice",
            "amount_due": 1999,
            "amount_paid": 0,
            "currency": "usd",
            "customer_email": "jenny@example.com",
            "attempt_count": 2,
            "status": "open",
        },
        ["Invoice payment failed", "$19.99", "jenny@example.com", "Attempt 2", "invoices/in_1"],
        ("stripe:invoice:in_1", "x"),
    ),
    (
        "invoice.paid",
        {"id": "in_1", "amount_paid": 1999, "currency": "usd", "status": "paid"},
        ["Invoice paid", "$19.99"],
        ("stripe:invoice:in_1", "white_check_mark"),
    ),
    (
        "checkout.session.completed",
        {
            "id": "cs_1",
            "amount_total": 4200,
            "currency": "eur",
            "payment_intent": "pi_9",
            "payment_status": "paid",
            "customer_details": {"email": "max@example.com"},
        },
        ["Checkout completed", "€42.00", "max@example.com", "payments/pi_9"],
        ("stripe:payment_intent:pi_9", "white_check_mark"),
    ),
    (
        "payment_intent.payment_failed",
        {
            "id": "pi_2",
            "amount": 300,
            "currency": "gbp",
            "last_payment_error": {"message": "Your card was declined."},
        },
        ["Payment failed", "£3.00", "Your card was declined."],
        ("stripe:payment_intent:pi_2", "x"),
    ),
]


@pytest.mark.parametrize(("event_type", "obj", "facts", "thread"), SYNTHETIC_STRIPE)
def test_stripe_payment_types(
    event_type: str, obj: dict[str, Any], facts: list[str], thread: tuple[str, str]
) -> None:
    payload = {"id": "evt_1", "object": "event", "type": event_type, "livemode": False}
    payload["data"] = {"object": obj}
    rendered = render(InboundEvent("stripe", event_type, payload))
    for fact in facts:
        assert fact in all_text(rendered)
    assert (rendered.thread_key, rendered.reaction) == thread


def test_unpaid_checkout_session_is_not_marked_done() -> None:
    obj = {"id": "cs_1", "amount_total": 4200, "currency": "eur", "payment_status": "unpaid"}
    payload = {"type": "checkout.session.completed", "data": {"object": obj}}
    rendered = render(InboundEvent("stripe", "checkout.session.completed", payload))
    assert "payment unpaid" in rendered.text
    assert rendered.reaction is None


# --- limits on huge payloads ------------------------------------------------------------------


def huge_github_push() -> dict[str, Any]:
    """The real push delivery turned into a branch push of 500 commits with 10k-char messages."""
    payload: dict[str, Any] = load("github/push.json")
    payload.update(ref="refs/heads/main", deleted=False, after="a" * 40)
    payload["commits"] = [
        {
            "id": f"{n:040x}",
            "message": f"commit {n} " + "m" * 10_000,
            "url": f"https://github.com/Codertocat/Hello-World/commit/{n:040x}",
            "author": {"name": "N" * 10_000, "username": "Codertocat"},
        }
        for n in range(500)
    ]
    return payload


def test_huge_github_push_fits_and_counts_commits() -> None:
    rendered = render(event_for("github/push.json", huge_github_push()))
    assert_within_slack_limits(rendered)
    shown = all_text(rendered)
    assert "pushed 500 commits" in shown
    assert "more commits" in shown
    assert "`0000000`" in shown


def test_huge_pull_request_title_fits() -> None:
    payload = load("github/pull_request.opened.json")
    payload["pull_request"]["title"] = "T" * 10_000
    payload["pull_request"]["head"]["ref"] = "b" * 10_000
    rendered = render(event_for("github/pull_request.opened.json", payload))
    assert_within_slack_limits(rendered)
    assert rendered.thread_key == "github:Codertocat/Hello-World:pr:2"


def test_huge_alert_group_fits() -> None:
    payload = load("alertmanager/firing.multiple.json")
    template = payload["alerts"][0]
    payload["alerts"] = [
        {**template, "labels": {**template["labels"], "host": f"h{n}" + "x" * 3000}}
        for n in range(500)
    ]
    payload["commonAnnotations"]["summary"] = "S" * 10_000
    rendered = render(event_for("alertmanager/firing.multiple.json", payload))
    assert_within_slack_limits(rendered)
    assert "[FIRING:500]" in rendered.text
    assert "480 more alerts not shown" in all_text(rendered)


def test_huge_gitlab_push_fits() -> None:
    payload = load("gitlab/push.json")
    template = payload["commits"][0]
    payload["commits"] = [{**template, "title": "t" * 10_000} for _ in range(500)]
    payload["total_commits_count"] = 500
    assert_within_slack_limits(render(event_for("gitlab/push.json", payload)))


def test_huge_generic_payload_fits() -> None:
    payload = {f"key{n}": "v" * 10_000 for n in range(500)}
    payload["title"] = "T" * 10_000
    rendered = render(InboundEvent("generic", "e" * 10_000, payload))
    assert_within_slack_limits(rendered)
    assert "492 more fields" in all_text(rendered)


# --- odd payloads never raise ---------------------------------------------------------------

EVENTS_BY_SENDER: dict[Sender, list[str]] = {
    "github": [
        "push",
        "pull_request",
        "issues",
        "release",
        "workflow_run",
        "workflow_job",
        "check_run",
        "ping",
        "star",
    ],
    "gitlab": ["Push Hook", "Tag Push Hook", "Merge Request Hook", "Pipeline Hook", "Note Hook"],
    "alertmanager": ["firing", "resolved", "alert"],
    "grafana": ["firing", "resolved", "alert"],
    "sentry": ["event_alert.triggered", "event_alert", "issue.created"],
    "stripe": [
        "charge.succeeded",
        "charge.failed",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "checkout.session.completed",
        "invoice.paid",
        "invoice.payment_failed",
        "plan.created",
    ],
    "generic": ["event"],
}
ALL_EVENTS = [(sender, name) for sender, names in EVENTS_BY_SENDER.items() for name in names]

GARBAGE: list[Any] = [
    [],
    "text",
    "",
    None,
    0,
    3.5,
    True,
    {},
    {"alerts": 5},
    {"alerts": [None, 5, "x", {"labels": None, "annotations": [1]}]},
    {"alerts": [{"labels": {"alertname": ["x"]}, "values": {"A": None}}], "groupKey": 7},
    {"repository": None, "pull_request": None, "issue": None, "workflow_run": None},
    {"repository": {"full_name": "o/r"}, "pull_request": {"number": "2", "title": None}},
    {"repository": {"full_name": "o/r"}, "ref": "refs/heads/x", "commits": [None, {"id": 5}]},
    {"repository": {"full_name": ["o"]}, "check_run": {"name": {}, "pull_requests": [None]}},
    {"project": {"path_with_namespace": "g/p", "id": 1}, "object_attributes": None},
    {"project": {"path_with_namespace": "g/p", "id": 1}, "object_attributes": {"iid": 1}},
    {"project": {"path_with_namespace": "g/p", "id": 1}, "builds": "x", "object_attributes": {}},
    {"data": None},
    {"data": {"object": None}},
    {"data": {"object": {"amount": "12", "currency": 5}}},
    {"data": {"object": {"amount": True, "currency": "usd", "payment_intent": "pi_<script>"}}},
    {"data": {"event": {"title": "t", "tags": [None, ["environment"], 3]}}},
    {"a": {"b": {"c": None}}, "list": [[[]]]},
]


@pytest.mark.parametrize(("sender", "name"), ALL_EVENTS)
@pytest.mark.parametrize("payload", GARBAGE)
def test_garbage_payloads_never_raise(sender: Sender, name: str, payload: Any) -> None:
    event = InboundEvent(sender, name, payload)
    render_preset(event)  # the renderers themselves cope, not only the safety net
    assert_within_slack_limits(render(event))


def test_garbage_stripe_id_is_not_put_in_a_dashboard_url() -> None:
    obj = {"amount": 100, "currency": "usd", "payment_intent": "pi_<script>", "id": "../x"}
    payload = {"type": "charge.succeeded", "data": {"object": obj}}
    shown = all_text(render(InboundEvent("stripe", "charge.succeeded", payload)))
    assert "dashboard.stripe.com" not in shown


def test_generic_rendering_of_text_and_lists() -> None:
    text = render(InboundEvent("generic", "event", "Disk <full> & slow"))
    assert "Disk &lt;full&gt; &amp; slow" in all_text(text)
    listed = render(InboundEvent("generic", "event", [1, 2, 3]))
    assert "A list of 3 items" in all_text(listed)


JSON_KEYS = [
    "repository",
    "full_name",
    "html_url",
    "pull_request",
    "issue",
    "number",
    "title",
    "action",
    "ref",
    "commits",
    "id",
    "url",
    "message",
    "workflow_run",
    "workflow_id",
    "conclusion",
    "check_run",
    "pull_requests",
    "project",
    "path_with_namespace",
    "object_attributes",
    "iid",
    "builds",
    "status",
    "alerts",
    "labels",
    "annotations",
    "groupKey",
    "values",
    "data",
    "object",
    "event",
    "amount",
    "currency",
    "tags",
]
json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(JSON_KEYS) | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=30,
)


@pytest.mark.parametrize("sender", SENDERS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=json_values, data=st.data())
def test_render_never_raises_on_arbitrary_json(sender: Sender, payload: Any, data: Any) -> None:
    name = data.draw(st.sampled_from(EVENTS_BY_SENDER[sender]))
    event = InboundEvent(sender, name, payload)
    render_preset(event)
    assert_within_slack_limits(render(event))
    dedupe_key(sender, {}, payload)
    event_name(sender, {}, payload)
    detect_sender({}, payload)


def _paths(value: Any, prefix: JsonPath = ()) -> list[JsonPath]:
    """Every path into a JSON value, the root included."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@cache
def _fixture_paths_by_depth(relative: str) -> list[list[JsonPath]]:
    """Paths grouped by depth, so shallow fields (the ones renderers read) get picked often."""
    by_depth: dict[int, list[JsonPath]] = {}
    for path in _paths(_load(relative)):
        by_depth.setdefault(len(path), []).append(path)
    return [by_depth[depth] for depth in sorted(by_depth)]


def _replace_at(payload: Any, path: JsonPath, new: Any) -> Any:
    """``payload`` with the value at ``path`` replaced; unchanged if the path is gone."""
    if not path:
        return new
    parent = payload
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return payload
    last = path[-1]
    settable = isinstance(parent, dict) and isinstance(last, str)
    if settable or (isinstance(parent, list) and isinstance(last, int) and last < len(parent)):
        parent[last] = new
    return payload


class _ReadDict(dict[str, Any]):
    """A dict that notes every key a renderer looks up (present or not)."""

    def __init__(self, data: dict[str, Any], path: JsonPath, seen: set[JsonPath]) -> None:
        super().__init__(data)
        self.path, self.seen = path, seen

    def __getitem__(self, key: str) -> Any:
        self.seen.add((*self.path, key))
        return _reading(super().__getitem__(key), (*self.path, key), self.seen)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.seen.add((*self.path, key))
        return super().__contains__(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default  # noqa: SIM401 - must go via __getitem__

    def items(self) -> Any:
        return [(key, self[key]) for key in self.keys()]

    def values(self) -> Any:
        return [self[key] for key in self.keys()]


class _ReadList(list[Any]):
    """A list that notes which elements a renderer reads."""

    def __init__(self, data: list[Any], path: JsonPath, seen: set[JsonPath]) -> None:
        super().__init__(data)
        self.path, self.seen = path, seen

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, int):
            return [self[i] for i in range(len(self))[index]]
        position = index % len(self) if self else index
        self.seen.add((*self.path, position))
        return _reading(super().__getitem__(index), (*self.path, position), self.seen)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))


def _reading(value: Any, path: JsonPath, seen: set[JsonPath]) -> Any:
    if isinstance(value, dict):
        return _ReadDict(value, path, seen)
    if isinstance(value, list):
        return _ReadList(value, path, seen)
    return value


@cache
def _paths_read_by_renderer(relative: str) -> list[JsonPath]:
    """The paths the sender's renderer reads from this fixture, found by watching it."""
    original = event_for(relative)
    seen: set[JsonPath] = set()
    render_preset(replace(original, payload=_reading(load(relative), (), seen)))
    return sorted(seen, key=str) or [()]


@st.composite
def mutated_fixture(draw: st.DrawFn, relative: str) -> Any:
    """A real fixture with one to four values replaced by arbitrary JSON.

    Half the time the path is one the renderer reads (absent keys included, so fields get
    added too), otherwise any path, picked by depth so shallow ones come up often.
    """
    payload = load(relative)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        if draw(st.booleans()):
            path = draw(st.sampled_from(_paths_read_by_renderer(relative)))
        else:
            path = draw(st.sampled_from(draw(st.sampled_from(_fixture_paths_by_depth(relative)))))
        payload = _replace_at(payload, path, draw(json_values))
    return payload


@pytest.mark.parametrize("relative", ALL_FIXTURES)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_render_never_raises_on_damaged_fixtures(relative: str, data: Any) -> None:
    original = event_for(relative)
    payload = data.draw(mutated_fixture(relative))
    event = InboundEvent(original.sender, original.event, payload, original.headers)
    render_preset(event)
    assert_within_slack_limits(render(event))
    dedupe_key(event.sender, event.headers, payload)


# --- samples --------------------------------------------------------------------------------


@pytest.mark.parametrize("sender", SENDERS)
def test_sample_event_renders(sender: Sender) -> None:
    event = sample_event(sender)
    assert event.sender == sender
    assert detect_sender(event.headers, event.payload) == sender
    assert event.event == event_name(sender, event.headers, event.payload)
    rendered = render(event)
    assert_within_slack_limits(rendered)
    if sender != "generic":
        assert render_preset(event) is not None


@pytest.mark.parametrize(
    ("sender", "fixture"),
    [
        ("github", "github/pull_request.opened.json"),
        ("gitlab", "gitlab/merge_request.json"),
        ("alertmanager", "alertmanager/firing.multiple.json"),
        ("grafana", "grafana/alert.firing.json"),
        ("sentry", "sentry/event_alert.triggered.json"),
        ("stripe", "stripe/charge.succeeded.json"),
    ],
)
def test_samples_are_the_published_fixtures(sender: Sender, fixture: str) -> None:
    assert sample_event(sender).payload == load(fixture)


def test_generic_sample_reads_well() -> None:
    shown = all_text(render(sample_event("generic")))
    assert "`deploy.finished`" in shown
    assert "Deploy of api v1.4.2 to production finished" in shown
    assert "<https://example.com/deploys/1842|https://example.com/deploys/1842>" in shown
