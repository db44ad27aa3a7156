"""Webhooks end to end: /hook over signed Slack requests, real payloads over HTTP, the fake Slack."""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest
from sqlmodel import col, select

from bot.devtools.fake_slack import Call, FakeSlack
from bot.models import OutboxMessage
from bot.notices import FailureNotices
from bot.webhooks.verify import sign_generic, sign_github, sign_stripe
from tests.conftest import (
    RunningBot,
    eventually,
    fake_clock,
    fixture_bytes,
    fixture_json,
    until_bots_idle,
)

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
GITHUB_HEADERS = fixture_json("github/headers.json")["files"]


async def create_hook(running: RunningBot, args: str) -> tuple[str, str | None]:
    """Create a hook with /hook; return its path and the secret shown once."""
    reply = await running.command(f"/hook create {args}")
    url = re.search(r"https://bot\.example\.com(/hooks/[\w-]+)", reply)
    secret = re.search(r"\*Secret\* \(shown once — keep it\): `([^`]+)`", reply)
    assert url, reply
    return url.group(1), secret.group(1) if secret else None


def github_headers(event: str, body: bytes, secret: str, delivery: str = "d-1") -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sign_github(secret, body),
        "User-Agent": "GitHub-Hookshot/044aadd",
    }


@BOTH
async def test_github_push_is_posted_once_even_when_redelivered(
    start_bot, fake_slack: FakeSlack
) -> None:
    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "deploys <#C0002|ops> preset=github")
    assert secret
    body = fixture_bytes("github/push.json")
    status, answer = await running.post(path, body, github_headers("push", body, secret))
    assert status == 202 and answer["duplicate"] is False
    again, answer2 = await running.post(path, body, github_headers("push", body, secret))
    assert again == 202 and answer2["duplicate"] is True
    assert answer2["delivery"] == answer["delivery"]  # the duplicate names the original
    replayed = await running.command(f"/hook replay deploys {answer2['delivery']}")
    assert "Replaying" in replayed, replayed
    (call,) = await fake_slack.wait_for("chat.postMessage")
    assert call.args["channel"] == "C0002"
    repo = fixture_json("github/push.json")["repository"]["full_name"]
    assert repo in call.args["text"] or repo in json.dumps(call.args["blocks"])
    await fake_slack.wait_for("chat.postMessage", count=2)  # the replay
    await until_bots_idle(running)
    assert len(fake_slack.messages("C0002")) == 2  # the push once, and its replay


@pytest.mark.parametrize(
    ("case", "expected"),
    [("unsigned", 401), ("wrong", 401), ("tampered", 401), ("good", 202)],
)
async def test_github_signatures(start_bot, case: str, expected: int) -> None:
    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "gh preset=github")
    assert secret
    body = fixture_bytes("github/issues.opened.json")
    headers = github_headers("issues", body, secret)
    if case == "unsigned":
        del headers["X-Hub-Signature-256"]
    elif case == "wrong":
        headers["X-Hub-Signature-256"] = sign_github("another-secret", body)
    elif case == "tampered":
        body = body.replace(b'"opened"', b'"closed"', 1)
    status, _ = await running.post(path, body, headers)
    assert status == expected
    await running.bot.receiver.writer.flush()
    log = await running.command("/hook show gh")
    assert ("Rejected requests:* 1" in log) == (expected == 401)


async def test_github_form_encoded_payload_is_accepted(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "gh preset=github")
    assert secret
    payload = fixture_bytes("github/release.published.json").decode()
    body = urllib.parse.urlencode({"payload": payload}).encode()
    headers = github_headers("release", body, secret) | {
        "Content-Type": "application/x-www-form-urlencoded"
    }
    status, _ = await running.post(path, body, headers)
    assert status == 202
    (call,) = await fake_slack.wait_for("chat.postMessage")
    tag = fixture_json("github/release.published.json")["release"]["tag_name"]
    assert tag in call.args["text"] + json.dumps(call.args.get("blocks"))


async def test_gitlab_token_is_checked(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "gl preset=gitlab")
    assert secret
    body = fixture_bytes("gitlab/merge_request.json")
    base = {
        "Content-Type": "application/json",
        "X-Gitlab-Event": "Merge Request Hook",
        "X-Gitlab-Event-UUID": "u-1",
    }
    assert (await running.post(path, body, base | {"X-Gitlab-Token": "nope"}))[0] == 401
    assert (await running.post(path, body, base | {"X-Gitlab-Token": secret}))[0] == 202
    (call,) = await fake_slack.wait_for("chat.postMessage")
    title = fixture_json("gitlab/merge_request.json")["object_attributes"]["title"]
    assert title in call.args["text"] + json.dumps(call.args.get("blocks"))


async def test_stripe_signature_with_tolerance(start_bot, fake_slack: FakeSlack) -> None:
    clock = fake_clock("2026-05-26T08:17:57")
    running: RunningBot = await start_bot(clock=clock)
    path, _ = await create_hook(running, "pay preset=stripe secret=whsec_test_secret")
    body = fixture_bytes("stripe/charge.succeeded.json")
    now = int(clock.now().timestamp())
    stale = {
        "Content-Type": "application/json",
        "Stripe-Signature": sign_stripe("whsec_test_secret", body, now - 301),
    }
    assert (await running.post(path, body, stale))[0] == 401
    fresh = {
        "Content-Type": "application/json",
        "Stripe-Signature": sign_stripe("whsec_test_secret", body, now),
    }
    assert (await running.post(path, body, fresh))[0] == 202
    (call,) = await fake_slack.wait_for("chat.postMessage")
    assert "$" in call.args["text"] + json.dumps(call.args.get("blocks"))


async def test_alertmanager_firing_then_resolved_threads_and_updates(
    start_bot, fake_slack: FakeSlack
) -> None:
    running: RunningBot = await start_bot()
    path, _ = await create_hook(running, "alerts <#C0002|ops> preset=alertmanager")
    firing, resolved = (
        fixture_bytes("alertmanager/firing.json"),
        fixture_bytes("alertmanager/resolved.json"),
    )
    headers = {"Content-Type": "application/json", "User-Agent": "Alertmanager/0.15.0"}
    # Alertmanager sends no signature; the hook's generated secret is a bearer token.
    reply = await running.command("/hook show alerts")
    assert "Signed:* yes" in reply
    status, _ = await running.post(path, firing, headers)
    assert status == 401
    await running.command("/hook set alerts secret=bearer-token-123")
    auth = headers | {"Authorization": "Bearer bearer-token-123"}
    assert (await running.post(path, firing, auth))[0] == 202
    (root,) = await fake_slack.wait_for("chat.postMessage")
    assert (await running.post(path, resolved, auth))[0] == 202
    await fake_slack.wait_for("reactions.add")
    posts = fake_slack.calls_to("chat.postMessage")
    root_ts = posts[1].args["thread_ts"]
    assert root_ts and "thread_ts" not in root.args
    updated = fake_slack.message_by_ts("C0002", root_ts)
    assert updated is not None and updated["text"] == posts[1].args["text"]


async def test_pull_request_opened_then_merged(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "prs preset=github")
    assert secret
    opened = fixture_json("github/pull_request.opened.json")
    merged = fixture_json("github/pull_request.closed.merged.json")
    # Two real deliveries of one PR: make them name the same repository and number.
    merged["repository"]["full_name"] = opened["repository"]["full_name"]
    merged["pull_request"]["number"] = merged["number"] = opened["number"]
    for n, payload in enumerate((opened, merged)):
        body = json.dumps(payload).encode()
        assert (
            await running.post(path, body, github_headers("pull_request", body, secret, f"d{n}"))
        )[0] == 202
        await fake_slack.wait_for("chat.postMessage", count=n + 1)
    (react,) = await fake_slack.wait_for("reactions.add")
    assert react.args["name"] == "white_check_mark"
    assert len(fake_slack.calls_to("chat.update")) == 1


async def test_threads_off_posts_separately(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    path, _ = await create_hook(running, "alerts preset=alertmanager secret=tok-12345678")
    await running.command("/hook set alerts threads=off")
    auth = {"Content-Type": "application/json", "Authorization": "Bearer tok-12345678"}
    for name in ("firing", "resolved"):
        assert (await running.post(path, fixture_bytes(f"alertmanager/{name}.json"), auth))[
            0
        ] == 202
    await fake_slack.wait_for("chat.postMessage", count=2)
    assert all("thread_ts" not in c.args for c in fake_slack.calls_to("chat.postMessage"))


async def test_bad_requests_get_clear_statuses(start_bot) -> None:
    running: RunningBot = await start_bot(webhook_max_body=4096)
    path, secret = await create_hook(running, "any preset=generic")
    assert secret
    bad_json = b'{"a": 1,'
    status, answer = await running.post(
        path,
        bad_json,
        {"Content-Type": "application/json", "X-Signature-256": sign_generic(secret, bad_json)},
    )
    assert status == 400 and "malformed JSON" in answer["error"]
    big = b"x" * 5000
    assert (await running.post(path, big, {"Content-Type": "text/plain"}))[0] == 413
    assert (await running.post("/hooks/not-a-token", b"{}", {"Content-Type": "application/json"}))[
        0
    ] == 404


async def test_rate_limit_answers_429_with_retry_after(start_bot) -> None:
    running: RunningBot = await start_bot()
    path, _ = await create_hook(running, "busy preset=generic")
    await running.command("/hook set busy rate=2")
    secret = "generic-secret-1"
    await running.command(f"/hook set busy secret={secret}")

    async def forged() -> int:
        body = b'{"forged": true}'
        headers = {"Content-Type": "application/json", "X-Signature-256": "sha256=" + "0" * 64}
        return (await running.post(path, body, headers))[0]

    # Forged requests are refused without using up the sender's budget.
    assert [await forged() for _ in range(3)] == [401, 401, 401]
    statuses = []
    for i in range(3):
        body = json.dumps({"n": i}).encode()
        async with running.http.post(
            f"{running.base_url}{path}",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Signature-256": sign_generic(secret, body),
            },
        ) as response:
            statuses.append((response.status, response.headers.get("Retry-After")))
    assert [s for s, _ in statuses] == [202, 202, 429]
    assert statuses[2][1] is not None and 1 <= int(statuses[2][1]) <= 60


async def test_paused_hook_accepts_but_drops(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "quiet preset=generic")
    assert secret
    await running.command("/hook pause quiet")
    body = b'{"text": "hello"}'
    status, _ = await running.post(
        path, body, {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
    )
    assert status == 202
    log = await running.command("/hook log quiet")
    assert "dropped" in log
    assert fake_slack.calls_to("chat.postMessage") == []


async def test_template_and_filter(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "prs preset=github")
    assert secret
    refused = await running.command("/hook template prs {{ payload.pull_request.title ")
    assert "doesn't compile" in refused and "line 1" in refused
    await running.command(
        "/hook template prs PR: {{ payload.pull_request.title }} by {{ payload.sender.login }}"
    )
    await running.command(
        '/hook filter prs event == "pull_request" and payload.action in ["opened"]'
    )
    opened = fixture_bytes("github/pull_request.opened.json")
    closed = fixture_bytes("github/pull_request.closed.json")
    await running.post(path, closed, github_headers("pull_request", closed, secret, "c"))
    await running.post(path, opened, github_headers("pull_request", opened, secret, "o"))
    (call,) = await fake_slack.wait_for("chat.postMessage")
    payload = fixture_json("github/pull_request.opened.json")
    assert (
        call.args["text"]
        == f"PR: {payload['pull_request']['title']} by {payload['sender']['login']}"
    )
    assert "filtered" in await running.command("/hook log prs")


async def test_template_failing_at_render_time_posts_a_fallback(
    start_bot, fake_slack: FakeSlack
) -> None:
    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "t preset=generic")
    assert secret
    await running.command("/hook template t {{ payload.__class__.__mro__ }}")
    body = b'{"text": "hi"}'
    await running.post(
        path, body, {"Content-Type": "application/json", "Authorization": f"Bearer {secret}"}
    )
    (call,) = await fake_slack.wait_for("chat.postMessage")
    assert "template" in call.args["text"] and "failed" in call.args["text"]


async def test_hook_commands_explain_mistakes(start_bot) -> None:
    running: RunningBot = await start_bot()
    assert "Example" in await running.command("/hook create Bad!Name")
    assert "isn't one I know" in await running.command("/hook create ok preset=bitbucket")
    assert "no hook named" in await running.command("/hook show missing")
    assert "/hook create" in await running.command("/hook help")
    assert "I don't know" in await running.command("/hook frobnicate")
    await running.command("/hook create twice")
    assert "exists already" in await running.command("/hook create twice")


async def test_rotate_invalidates_the_old_url(start_bot) -> None:
    running: RunningBot = await start_bot()
    path, _ = await create_hook(running, "r preset=generic")
    reply = await running.command("/hook rotate r")
    new_path = re.search(r"https://bot\.example\.com(/hooks/[\w-]+)", reply)
    assert new_path and new_path.group(1) != path
    assert (await running.post(path, b"{}", {"Content-Type": "application/json"}))[0] == 404


async def test_hook_test_and_replay(start_bot, fake_slack: FakeSlack) -> None:
    running: RunningBot = await start_bot()
    await create_hook(running, "gh <#C0002|ops> preset=github")
    assert "sample" in await running.command("/hook test gh")
    await fake_slack.wait_for("chat.postMessage")
    log = await running.command("/hook log gh")
    delivery = re.search(r"`([0-9a-f]{29})`", log)
    assert delivery, log
    assert "Replaying" in await running.command(f"/hook replay gh {delivery.group(1)}")
    await fake_slack.wait_for("chat.postMessage", count=2)


@BOTH
async def test_a_crash_after_202_still_posts_after_restart(
    start_bot, fake_slack: FakeSlack
) -> None:
    first: RunningBot = await start_bot()
    path, secret = await create_hook(first, "gh preset=github")
    assert secret
    await first.bot.deliveries.stop()  # the process dies right after answering 202 ...
    body = fixture_bytes("github/push.json")
    assert (await first.post(path, body, github_headers("push", body, secret)))[0] == 202
    await first.stop()
    assert fake_slack.calls_to("chat.postMessage") == []
    await start_bot()  # ... and the restarted one posts it
    (call,) = await fake_slack.wait_for("chat.postMessage")
    assert call.args["channel"] == "C0001"


async def test_only_the_creator_or_an_admin_changes_a_hook(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_user("U0002", tz="UTC")
    fake_slack.add_user("U0004", tz="UTC", is_admin=True)
    running: RunningBot = await start_bot(bot_admins=frozenset({"U0003"}))
    await create_hook(running, "mine preset=generic")
    refused = await running.command("/hook delete mine", user="U0002")
    assert "Only <@U0001>" in refused
    assert "mine" in await running.command("/hook list", user="U0002")  # reading is for everyone
    assert "Paused" in await running.command("/hook pause mine", user="U0003")  # BOT_ADMINS
    assert "Resumed" in await running.command("/hook resume mine", user="U0004")  # workspace admin
    assert "Deleted" in await running.command("/hook delete mine")  # the creator


async def test_a_hooks_secret_and_url_are_not_shown_to_other_users(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_user("U0002", tz="UTC")
    running: RunningBot = await start_bot()
    url_path, _ = await create_hook(running, "leak preset=generic")
    chosen = "chosen-secret-0123456789abcdef"
    updated = await running.command(f"/hook set leak secret={chosen}")
    assert "Updated" in updated and chosen not in updated
    other = await running.command("/hook show leak", user="U0002")
    assert chosen not in other and url_path not in other
    assert "set secret=(new secret) by <@U0001>" in other
    assert url_path not in await running.command("/hook show leak")  # no one sees it again


@pytest.mark.parametrize(("age", "expected"), [(0, 202), (6 * 60, 401)])
async def test_generic_hook_accepts_slack_style_v0_signatures(
    start_bot, age: int, expected: int
) -> None:
    import time

    from bot.slack.signing import signed_headers

    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "relay preset=generic")
    assert secret
    body = b'{"text": "from another Slack app"}'
    headers = signed_headers(secret, body, now=time.time() - age) | {
        "Content-Type": "application/json"
    }
    assert (await running.post(path, body, headers))[0] == expected


async def test_a_chosen_secret_must_not_be_trivially_short(start_bot) -> None:
    running: RunningBot = await start_bot()
    refused = await running.command("/hook create tiny preset=generic secret=short")
    assert "at least 8 characters" in refused
    assert "No hooks yet" in await running.command("/hook list")


async def test_the_creator_hears_once_when_a_hooks_channel_refuses_its_posts(
    start_bot, fake_slack: FakeSlack
) -> None:
    fake_slack.add_channel("C0999", "gone")
    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "lost <#C0999|gone> preset=generic")
    assert secret is not None
    del fake_slack.channels["C0999"]  # deleted since the hook was made
    for number in range(3):
        body = json.dumps({"text": f"deploy {number}"}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Signature-256": sign_generic(secret, body),
        }
        assert (await running.post(path, body, headers))[0] == 202

    async def all_failed() -> bool:
        return "channel_not_found" in await running.command("/hook log lost") and (
            (await running.command("/hook log lost")).count("failed") == 3
        )

    def notices() -> list[Call]:
        posts = fake_slack.calls_to("chat.postMessage")
        return [call for call in posts if call.args["channel"] == "U0001" and call.error is None]

    async def noticed() -> bool:
        return bool(notices())

    async def outbox_idle() -> bool:
        async with running.bot.db.sessions() as session:
            pending = await session.execute(
                select(OutboxMessage).where(col(OutboxMessage.status) == "pending")
            )
            return pending.first() is None

    await eventually(all_failed, within=10)
    await eventually(noticed, within=5)
    await eventually(outbox_idle, within=5)
    (notice,) = notices()  # once, not once per failed message
    assert "hook *lost*" in notice.args["text"] and "channel_not_found" in notice.args["text"]
    assert "/hook set lost channel=" in notice.args["text"]


async def test_a_failure_that_is_not_the_channels_fault_sends_no_notice(start_bot) -> None:
    running: RunningBot = await start_bot()
    path, secret = await create_hook(running, "long preset=generic")
    assert secret is not None
    body = b'{"text": "hi"}'
    headers = {"Content-Type": "application/json", "X-Signature-256": sign_generic(secret, body)}
    _, answer = await running.post(path, body, headers)
    now = running.bot.clock.now()
    failed = OutboxMessage(
        channel="C0001",
        text="hi",
        source=f"delivery:{answer['delivery']}",
        created_at=now,
        next_attempt_at=now,
    )
    notices = FailureNotices(running.bot.db, running.bot.clock, wake=lambda *channels: None)
    await notices.message_failed(failed, "msg_too_long")  # the bot's problem, not the channel's
    async with running.bot.db.sessions() as session:
        told = await session.execute(
            select(OutboxMessage).where(col(OutboxMessage.source).startswith("notice:"))
        )
        assert told.first() is None
    await notices.message_failed(failed, "is_archived")  # the channel's: its creator is told
    async with running.bot.db.sessions() as session:
        told = await session.execute(
            select(OutboxMessage).where(col(OutboxMessage.source).startswith("notice:"))
        )
        assert told.scalars().one().channel == "U0001"


@pytest.mark.parametrize("content_type", ["application/json", None])
async def test_a_body_nested_too_deeply_is_a_400_and_no_token_is_logged(
    start_bot, content_type: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    running: RunningBot = await start_bot()
    path, _ = await create_hook(running, "deep preset=generic")
    body = b"[" * 100_000 + b"]" * 100_000
    headers = {"Content-Type": content_type} if content_type else {}
    async with running.http.post(
        f"{running.base_url}{path}", data=body, headers=headers, skip_auto_headers=["Content-Type"]
    ) as response:
        status, answer = response.status, await response.json()
    assert status == 400 and "nested too deeply" in answer["error"]
    token = path.rsplit("/", 1)[1]
    assert token not in caplog.text
