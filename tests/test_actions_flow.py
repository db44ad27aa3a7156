"""Actions end to end: /action over signed Slack requests, signed webhooks in, and real
HTTP out to small target servers on loopback (the CRM, the inventory)."""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.devtools.fake_slack import FakeSlack
from bot.models import ActionRun, OutboxMessage, ThreadRoot, Trigger
from bot.webhooks.verify import sign_generic
from tests.action_target import Target, serving_target
from tests.conftest import RunningBot, eventually, fake_clock, fixture_bytes, until_bots_idle
from tests.test_conversation import click, submission, text_value

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
CRM_TOKEN = "crm-token-value-7f3a9c2e"
INVENTORY_KEY = "inv-key-value-44d0b1aa"


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    async with serving_target() as found:
        yield found


async def create_hook(running: RunningBot, args: str) -> tuple[str, str]:
    reply = await running.command(f"/hook create {args}")
    url = re.search(r"https://bot\.example\.com(/hooks/[\w-]+)", reply)
    secret = re.search(r"\*Secret\* \(shown once — keep it\): `([^`]+)`", reply)
    assert url and secret, reply
    return url.group(1), secret.group(1)


async def deliver(
    running: RunningBot, path: str, secret: str, body: bytes, content_type: str
) -> None:
    headers = {"Content-Type": content_type, "X-Signature-256": sign_generic(secret, body)}
    status, answer = await running.post(path, body, headers)
    assert status == 202, answer


async def ok(running: RunningBot, command: str) -> str:
    reply = await running.command(command)
    assert not re.search(r"can.t|isn.t|doesn.t|may not|no action|not sent|I don.t", reply), reply
    return reply


async def runs_of(running: RunningBot) -> list[ActionRun]:
    async with running.bot.db.sessions() as session:
        rows = await session.execute(select(ActionRun).order_by(ActionRun.id))  # type: ignore[arg-type]
        return list(rows.scalars().all())


async def until_runs_finished(running: RunningBot, count: int) -> list[ActionRun]:
    async def finished() -> bool:
        runs = await runs_of(running)
        return len(runs) == count and all(r.status in ("sent", "failed") for r in runs)

    await eventually(finished)
    return await runs_of(running)


async def run_due(running: RunningBot, clock: FakeClock, name: str) -> None:
    """Move the clock to the trigger's next run and run it, as the scheduler would."""
    async with running.bot.db.sessions() as session:
        rows = await session.execute(select(Trigger).where(col(Trigger.name) == name))
        trigger = rows.scalars().one()
    assert trigger.id is not None and trigger.next_run_at is not None
    clock.set(max(clock.now(), trigger.next_run_at))
    await running.bot.triggers.run(trigger.id, trigger.next_run_at)


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1]


@BOTH
async def test_a_form_submission_becomes_a_lead_in_the_crm_and_nothing_in_slack(
    start_bot, fake_slack: FakeSlack, target: Target, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    running: RunningBot = await start_bot()
    host = f"127.0.0.1:{port_of(target.url)}"
    await ok(running, f"/secret set crm-token for {host} {CRM_TOKEN}")
    await ok(
        running,
        f"/action add crm POST {target.url}/api/leads auth=bearer:crm-token body=json",
    )
    await ok(
        running,
        '/action body crm {"email": {{ payload.email|tojson }}, '
        '"name": {{ (payload.first ~ " " ~ payload.last)|tojson }}, "source": "website"}',
    )
    path, secret = await create_hook(running, "signup preset=generic")
    await ok(running, "/hook set signup then=crm post=off")
    form = {"email": "ada@example.com", "first": "Ada", "last": "Lovelace & Co <ltd>"}
    await deliver(
        running,
        path,
        secret,
        urllib.parse.urlencode(form).encode(),
        "application/x-www-form-urlencoded",
    )
    (lead,) = await target.wait_for(1)
    assert (lead.method, lead.path) == ("POST", "/api/leads")
    assert lead.json() == {
        "email": "ada@example.com",
        "name": "Ada Lovelace & Co <ltd>",
        "source": "website",
    }
    assert lead.headers["Authorization"] == f"Bearer {CRM_TOKEN}"
    assert lead.headers["Content-Type"] == "application/json"
    (run,) = await until_runs_finished(running, 1)
    assert run.status == "sent" and run.response_status == 201
    assert lead.headers["Idempotency-Key"] == run.idempotency_key
    await until_bots_idle(running)
    assert fake_slack.messages() == []  # post=off: the hook acts without speaking
    log = await running.command("/action log crm")
    assert "hook signup" in log and "201 Created" in log and "1 attempt" in log
    hook_log = await running.command("/hook log signup")
    assert "acted" in hook_log
    # The secret's value is nowhere people can see: not in show, log, Slack or the run row.
    show = await running.command("/action show crm")
    assert "••••(crm-token)" in show and "*Run by:* hook signup" in show
    assert "used by hook signup" in await running.command("/action delete crm")
    seen = show + log + json.dumps([c.args for c in fake_slack.calls]) + repr(run)
    assert CRM_TOKEN not in seen
    assert CRM_TOKEN not in caplog.text
    kept = await running.command("/secret delete crm-token")
    assert "is used by action crm" in kept  # a secret an action sends is kept


async def test_a_purchase_patches_the_inventory_and_says_so_in_the_thread(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    running: RunningBot = await start_bot()
    host = f"127.0.0.1:{port_of(target.url)}"
    await ok(running, f"/secret set inv-key for {host} {INVENTORY_KEY}")
    await ok(
        running,
        f"/action add inventory PATCH {target.url}/stock header.X-Api-Key=secret:inv-key "
        "header.X-Source=chatops",
    )
    await ok(
        running,
        '/action body inventory {"sku": {{ payload.sku|tojson }}, "delta": {{ -payload.quantity }}}',
    )
    await ok(
        running,
        "/action reply inventory Stock of {{ response.json.sku }} is now {{ response.json.left }}",
    )
    target.default = (200, {"Content-Type": "application/json"}, '{"sku": "A-1", "left": 7}')
    path, secret = await create_hook(running, "shop <#C0002|ops> preset=generic")
    await ok(running, "/hook set shop then=inventory")
    body = json.dumps({"sku": "A-1", "quantity": 3}).encode()
    await deliver(running, path, secret, body, "application/json")
    (patch,) = await target.wait_for(1)
    assert (patch.method, patch.path, patch.json()) == (
        "PATCH",
        "/stock",
        {"sku": "A-1", "delta": -3},
    )
    assert patch.headers["X-Api-Key"] == INVENTORY_KEY
    assert patch.headers["X-Source"] == "chatops"
    await until_runs_finished(running, 1)
    await until_bots_idle(running)
    root, line = fake_slack.messages("C0002")
    assert not root.get("thread_ts") and "A-1" in json.dumps(root)
    async with running.bot.db.sessions() as session:
        (thread,) = (await session.execute(select(ThreadRoot))).scalars().all()
    assert line["thread_ts"] == thread.ts  # a reply under the delivery's own message
    assert fake_slack.message_by_ts("C0002", thread.ts) is not None
    assert re.fullmatch(r"→ inventory: 200 OK, \d+ ms\nStock of A-1 is now 7", line["text"])
    assert INVENTORY_KEY not in json.dumps(fake_slack.messages())


async def test_a_503_storm_is_retried_with_backoff_then_one_line_in_the_thread(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await ok(running, f"/action add crm POST {target.url}/leads retries=5")
    await ok(running, '/action body crm {"email": {{ payload.email|tojson }}}')
    path, secret = await create_hook(running, "signup <#C0002|ops> preset=generic")
    await ok(running, "/hook set signup then=crm")
    target.answers = [(503, {}, "busy"), (429, {"Retry-After": "7"}, "slow down"), (502, {}, "")]
    await deliver(running, path, secret, b'{"email": "a@example.com"}', "application/json")
    await target.wait_for(1)

    async def waiting_for(attempts: int) -> ActionRun:
        async def pending() -> bool:
            (run,) = await runs_of(running)
            return run.status == "pending" and run.attempts == attempts

        await eventually(pending)
        return (await runs_of(running))[0]

    first = await waiting_for(1)
    assert first.detail == "503 Service Unavailable"
    assert first.next_attempt_at - clock.now() == timedelta(seconds=60)  # the backoff
    clock.advance(60)
    await target.wait_for(2)
    second = await waiting_for(2)
    assert second.next_attempt_at - clock.now() == timedelta(seconds=7)  # Retry-After
    clock.advance(7)
    await target.wait_for(3)
    third = await waiting_for(3)
    assert third.next_attempt_at - clock.now() == timedelta(seconds=240)  # 60 s × 2²
    clock.advance(240)
    (run,) = await until_runs_finished(running, 1)
    assert (run.status, run.attempts, run.response_status) == ("sent", 4, 201)
    keys = {r.headers["Idempotency-Key"] for r in await target.wait_for(4)}
    assert keys == {run.idempotency_key}  # the same key on every attempt
    await until_bots_idle(running)
    lines = [m["text"] for m in fake_slack.messages("C0002") if m.get("thread_ts")]
    assert len(lines) == 1 and lines[0].startswith("→ crm: 201 Created, ")


async def test_a_400_fails_once_without_retrying(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    running: RunningBot = await start_bot()
    await ok(running, f"/action add crm POST {target.url}/leads")
    path, secret = await create_hook(running, "signup <#C0002|ops> preset=generic")
    await ok(running, "/hook set signup then=crm")
    target.default = (400, {}, '{"error": "email is required"}')
    await deliver(running, path, secret, b"{}", "application/json")
    (run,) = await until_runs_finished(running, 1)
    assert (run.status, run.attempts, run.detail) == ("failed", 1, "400 Bad Request")
    await until_bots_idle(running)
    assert len(target.received) == 1
    lines = [m["text"] for m in fake_slack.messages("C0002") if m.get("thread_ts")]
    assert lines == ["→ crm: failed: 400 Bad Request"]


async def test_a_body_that_fails_to_render_fails_the_run_visibly_and_sends_nothing(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    running: RunningBot = await start_bot()
    await ok(running, f"/action add crm POST {target.url}/leads")
    await ok(running, '/action body crm {"n": {{ payload.missing.deeper|tojson }}}')
    path, secret = await create_hook(running, "signup <#C0002|ops> preset=generic")
    await ok(running, "/hook set signup then=crm")
    await deliver(running, path, secret, b'{"email": "a@example.com"}', "application/json")
    (run,) = await until_runs_finished(running, 1)
    assert run.status == "failed" and run.attempts == 0
    assert run.detail and run.detail.startswith("not sent: the body template failed")
    await until_bots_idle(running)
    lines = [m["text"] for m in fake_slack.messages("C0002") if m.get("thread_ts")]
    assert len(lines) == 1 and lines[0].startswith("→ crm: not sent: the body template failed")
    assert target.received == []


async def test_internal_addresses_and_unbound_secrets_are_refused(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    running: RunningBot = await start_bot()
    for url in ("http://169.254.169.254/latest", "http://10.0.0.5/restart", "file:///etc/passwd"):
        reply = await running.command(f"/action add evil POST {url}")
        assert "can't be used" in reply or "isn't an http(s) URL" in reply, reply
    await ok(running, f"/secret set crm-token for crm.example.com {CRM_TOKEN}")
    reply = await running.command(f"/action add crm POST {target.url}/x auth=bearer:crm-token")
    assert "may not be sent" in reply and CRM_TOKEN not in reply
    assert "There is no action" in await running.command("/action show evil")
    # A POST answered by a redirect is not followed: the redirect is the (final) answer.
    await ok(running, f"/action add hop POST {target.url}/moved")
    target.default = (302, {"Location": "http://10.0.0.5/"}, "")
    await ok(running, "/action run hop")
    (run,) = await until_runs_finished(running, 1)
    assert run.status == "failed" and run.detail is not None and "302 Found" in run.detail
    assert len(target.received) == 1


async def test_show_test_and_bad_input(start_bot, target: Target) -> None:
    running: RunningBot = await start_bot()
    assert "needs a name, a method and a URL" in await running.command("/action add crm POST")
    assert "isn't an HTTP method" in await running.command(f"/action add crm FETCH {target.url}")
    assert "`retries=99`" in await running.command(f"/action add crm POST {target.url} retries=99")
    assert "`colour=`" in await running.command(f"/action add crm POST {target.url} colour=red")
    await ok(running, f"/action add crm POST {target.url}/leads timeout=5s")
    assert "exists already" in await running.command(f"/action add crm POST {target.url}")
    assert "doesn't compile" in await running.command("/action body crm {{ oops")
    await ok(running, '/action body crm {"email": {{ params.email|tojson }}}')
    tested = await running.command("/action test crm email=a@example.com")
    assert f"POST {target.url}/leads" in tested and '{"email": "a@example.com"}' in tested
    assert "nothing was sent" in tested and target.received == []
    await ok(running, '/action body crm {"email": {{ params.email }}}')  # no |tojson
    assert "not JSON" in await running.command("/action test crm email=a@example.com")
    listed = await running.command("/action list")
    assert "*crm*" in listed
    await create_hook(running, "signup preset=generic")
    assert "no action named `nope`" in await running.command("/hook set signup then=crm,nope")
    assert "no action named `nope`" in await running.command("/hook set signup buttons=nope")
    assert "Actions:* none" in await running.command("/hook show signup")


async def test_only_allowed_people_run_an_action_by_hand(start_bot, target: Target) -> None:
    running: RunningBot = await start_bot()
    await ok(running, f"/action add restart POST {target.url}/restart confirm=yes")
    refused = await running.command("/action run restart confirm=yes", user="U0002")
    assert "You may not run *restart*" in refused
    assert "asks first" in await running.command("/action run restart")
    await ok(running, "/action set restart allow=<@U0002> timeout=5s retries=2")
    assert "timeout=5s retries=2" in await running.command("/action show restart")
    assert "`retries=x`" in await running.command("/action set restart retries=x")
    assert "Running *restart*" in await running.command(
        "/action run restart service=api confirm=yes", user="U0002"
    )
    (call,) = await target.wait_for(1)
    assert (call.method, call.path, call.body) == ("POST", "/restart", b"")
    (run,) = await until_runs_finished(running, 1)
    assert run.cause == "<@U0002> ran it by hand with service=api"
    assert "<@U0002> ran it by hand with service=api" in await running.command(
        "/action log restart"
    )
    assert "Only <@U0001>" in await running.command("/action delete restart", user="U0002")


async def test_a_health_check_that_fails_calls_the_restart_endpoint_once(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await ok(running, f"/action add restart-api POST {target.url}/restart")
    await ok(
        running,
        '/action body restart-api {"service": {{ trigger.name|tojson }}, '
        '"why": {{ result.summary|tojson }}}',
    )
    async with serving_target() as health:
        health.default = (503, {}, "down")
        await ok(running, f"/trigger add site every 1m http {health.url}/health <#C0002|ops>")
        assert "no action named `nope`" in await running.command("/trigger set site then=nope")
        assert "use one of problem" in await running.command("/trigger set site on=sometimes")
        await ok(running, "/trigger set site then=restart-api on=problem buttons=restart-api")
        for _ in range(4):  # down after three failures, then still down: one restart
            await run_due(running, clock, "site")
        (run,) = await until_runs_finished(running, 1)
    (restart,) = target.received
    assert restart.json()["service"] == "site" and "503" in restart.json()["why"]
    assert run.cause == "trigger site: problem" and run.status == "sent"
    await until_bots_idle(running)
    down, line = fake_slack.messages("C0002")[:2]
    assert "down" in down["text"] and line["text"].startswith("→ restart-api: 201 Created")
    buttons = [e for b in down["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["text"]["text"] for b in buttons][-1] == "Restart api"  # under Run now, Snooze…
    assert line["thread_ts"] and fake_slack.message_by_ts("C0002", line["thread_ts"]) is not None


async def test_a_button_under_a_hook_message_runs_the_action_for_allowed_people_only(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    running: RunningBot = await start_bot()
    await ok(running, f"/action add restart-api POST {target.url}/restart confirm=yes")
    await ok(running, '/action body restart-api {"service": {{ payload.service|tojson }}}')
    path, secret = await create_hook(running, "alerts <#C0002|ops> preset=generic")
    await ok(running, "/hook set alerts buttons=restart-api")
    await deliver(running, path, secret, b'{"service": "api", "state": "down"}', "application/json")
    (posted,) = await fake_slack.wait_for("chat.postMessage")
    (row,) = [b for b in posted.args["blocks"] if b["type"] == "actions"]
    (button,) = row["elements"]
    assert button["text"]["text"] == "Restart api"
    assert button["confirm"]["confirm"]["text"] == "Run it"  # confirm=yes: Slack asks first
    root_ts = await _root_ts(running)  # the posted message's ts, as Slack sends it in a click
    payload = click(button["action_id"], button["value"], user="U0002", channel="C0002", ts=root_ts)
    await running.interact(payload)
    (refusal,) = await fake_slack.wait_for("chat.postEphemeral")
    assert "You may not run *restart-api*" in refusal.args["text"]
    assert refusal.args["user"] == "U0002" and target.received == []
    await ok(running, "/action set restart-api allow=<#C0002|ops>")  # anyone in #ops
    await running.interact(payload)
    (restart,) = await target.wait_for(1)
    assert restart.json() == {"service": "api"}
    (run,) = await until_runs_finished(running, 1)
    assert re.fullmatch(r"<@U0002> clicked Restart api under delivery [\w-]+", run.cause)
    await until_bots_idle(running)
    (line,) = [m for m in fake_slack.messages("C0002") if m.get("thread_ts")]
    assert line["thread_ts"] == root_ts and line["text"].startswith("→ restart-api: 201 Created")
    assert "<@U0002> clicked Restart api" in await running.command("/action log restart-api")


async def _root_ts(running: RunningBot) -> str:
    async with running.bot.db.sessions() as session:
        rows = await session.execute(
            select(OutboxMessage.ts).where(col(OutboxMessage.status) == "sent")
        )
        return str(rows.scalars().first())


def form_values(name: str, method: str, url: str, options: str = "", body: str = "") -> Any:
    return {
        "name": {"name": text_value(name)},
        "method": {"method": {"type": "static_select", "selected_option": {"value": method}}},
        "url": {"url": text_value(url)},
        "options": {"options": text_value(options or None)},
        "body": {"body": text_value(body or None)},
    }


async def test_action_add_alone_opens_a_form_that_shows_errors_on_their_fields(
    start_bot, fake_slack: FakeSlack, target: Target
) -> None:
    running: RunningBot = await start_bot()
    assert await running.command_raw("/action add") == ""
    (opened,) = await fake_slack.wait_for("views.open")
    view = opened.args["view"]
    answer = await running.interact(
        submission(view, form_values("crm", "POST", "http://10.1.2.3/leads"))
    )
    assert set(answer["errors"]) == {"url"} and "can't be used" in answer["errors"]["url"]
    answer = await running.interact(
        submission(view, form_values("crm", "POST", f"{target.url}/x", "retries=lots"))
    )
    assert set(answer["errors"]) == {"options"}
    answer = await running.interact(
        submission(view, form_values("crm", "POST", f"{target.url}/x", body="{{ oops"))
    )
    assert set(answer["errors"]) == {"body"}
    assert "There is no action" in await running.command("/action show crm")  # nothing saved
    good = form_values(
        "crm", "POST", f"{target.url}/leads", "body=json retries=2", '{"a": {{ params.a|tojson }}}'
    )
    assert await running.interact(submission(view, good)) in ("", None, {})
    shown = await running.command("/action show crm")
    assert f"POST {target.url}/leads" in shown and "retries=2" in shown and "params.a" in shown
    (told,) = await fake_slack.wait_for("chat.postEphemeral")
    assert "Made action *crm*" in told.args["text"]


async def test_retention_forgets_old_finished_runs_but_never_unsent_ones(
    start_bot, target: Target
) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    await ok(running, f"/action add crm POST {target.url}/leads")
    await ok(running, "/action run crm")
    await until_runs_finished(running, 1)
    target.default = (503, {}, "")
    await ok(running, "/action run crm")
    await target.wait_for(2)

    async def retrying() -> bool:
        return [r.status for r in await runs_of(running)] == ["sent", "pending"]

    await eventually(retrying)
    clock.advance(timedelta(days=running.bot.settings.retention_days + 1))
    report = await running.bot.retention.run_once()
    assert report.deleted["action_runs"] == 1
    assert [r.status for r in await runs_of(running)] in (["pending"], ["sending"])


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_replicas_send_each_run_once(start_bot, target: Target) -> None:
    first: RunningBot = await start_bot()
    second: RunningBot = await start_bot()
    await ok(first, f"/action add crm POST {target.url}/leads")
    for n in range(40):
        await ok(first if n % 2 else second, f"/action run crm n={n}")
    await until_runs_finished(first, 40)
    keys = [r.headers["Idempotency-Key"] for r in target.received]
    assert len(keys) == 40 and len(set(keys)) == 40  # every run sent, none twice


async def test_a_name_that_resolves_to_an_internal_address_is_refused_when_sent(
    start_bot, target: Target
) -> None:
    running: RunningBot = await start_bot(check_allowlist=())
    port = port_of(target.url)
    refused = await running.command(f"/action add crm POST http://127.0.0.1:{port}/leads")
    assert "can't be used" in refused  # a literal internal address: refused when added
    await ok(
        running, f"/action add crm POST http://localhost:{port}/leads"
    )  # a name: judged when sent
    await ok(running, "/action run crm")
    (run,) = await until_runs_finished(running, 1)
    assert run.status == "failed" and run.attempts == 1
    assert run.detail is not None and run.detail.startswith("not sent: refused")
    assert target.received == []


async def test_metrics_count_action_attempts(start_bot, target: Target) -> None:
    running: RunningBot = await start_bot()
    await ok(running, f"/action add crm POST {target.url}/leads")
    await ok(running, "/action run crm")
    await until_runs_finished(running, 1)
    async with running.http.get(f"{running.base_url}/metrics") as response:
        text = await response.text()
    assert 'chatops_action_attempts_total{verdict="sent"} 1.0' in text


async def test_a_hook_that_does_not_post_still_runs_its_trigger(
    start_bot, fake_slack: FakeSlack
) -> None:
    running: RunningBot = await start_bot()
    await ok(running, '/trigger add ping every 1h message "pong from the trigger" <#C0002|ops>')
    path, secret = await create_hook(running, "quiet preset=generic")
    await ok(running, "/hook set quiet run=ping post=off")
    await deliver(running, path, secret, b'{"a": 1}', "application/json")
    (posted,) = await fake_slack.wait_for("chat.postMessage")
    assert "pong from the trigger" in posted.args["text"]
    await until_bots_idle(running)
    assert len(fake_slack.messages()) == 1  # the trigger's post only: the hook said nothing


async def test_a_slow_target_holds_up_only_its_own_runs(start_bot, target: Target) -> None:
    running: RunningBot = await start_bot()
    async with serving_target() as slow:
        slow.hang = 1  # no answer until released
        await ok(running, f"/action add slow POST {slow.url}/x timeout=30s")
        await ok(running, f"/action add fast POST {target.url}/y")
        await ok(running, "/action run slow")
        await slow.wait_for(1)
        await ok(running, "/action run fast")
        await target.wait_for(1)  # sent while the slow one still waits for its answer

        async def fast_sent() -> bool:
            return [r.status for r in await runs_of(running)] == ["sending", "sent"]

        await eventually(fast_sent)
        slow.release.set()
        await until_runs_finished(running, 2)


async def test_each_new_blog_post_is_sent_to_another_system(start_bot, target: Target) -> None:
    clock = fake_clock()
    running: RunningBot = await start_bot(clock=clock)
    feed = fixture_bytes("feeds/rss2sample.xml").decode()
    first = feed.index("<item>")
    one_hidden = feed[:first] + feed[feed.index("</item>", first) + 7 :]
    await ok(running, f"/action add publish POST {target.url}/posts")
    await ok(
        running,
        '/action body publish {"title": {{ item.title|tojson }}, "from": {{ trigger.name|tojson }}}',
    )
    async with serving_target() as blog:
        rss = {"Content-Type": "application/rss+xml"}
        blog.default = (200, rss, one_hidden)
        await ok(running, f"/trigger add news every 30m rss {blog.url}/feed")
        await ok(running, "/trigger set news then=publish on=item")
        await run_due(running, clock, "news")  # the first run records what is there
        blog.default = (200, rss, feed)
        await run_due(running, clock, "news")
        (run,) = await until_runs_finished(running, 1)
        await run_due(running, clock, "news")  # nothing new: nothing sent
    (post,) = target.received
    assert "Star City" in post.json()["title"] and post.json()["from"] == "news"
    assert run.cause == "trigger news: new item" and run.status == "sent"
    assert len(await runs_of(running)) == 1
