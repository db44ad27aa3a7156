"""Fuzzing ``/action`` on the running bot (see tests/test_fuzz.py for the harness): any text
is answered 200 with a reason or a result, never a traceback or an unexpected error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from bot.devtools.fake_slack import FakeSlack
from tests.conftest import RunningBot
from tests.test_fuzz import (
    FUZZ,
    KEY_VALUES,
    NAMES,
    SLACK_ESCAPES,
    UNICODE_WORD,
    _Bridge,
    command_text,
    fuzz_in_thread,
    new_errors,
    slash,
    spaced,
)
from tests.test_fuzz import INTERNAL_ERRORS as ERRORS

ACTION_VERBS = spaced(
    "add create body reply list show test run log set pause resume delete help ADD frobnicate"
)
ACTION_FRAGMENTS = st.one_of(
    NAMES,
    st.sampled_from(SLACK_ESCAPES),
    KEY_VALUES,
    st.sampled_from(
        spaced(
            "GET POST PATCH put FETCH http://127.0.0.1:9/x <http://127.0.0.1:9/a|a>",
            "http://10.0.0.1/ http://169.254.169.254/ ftp://x/ https:// http://[zz]/",
            "auth=bearer:fz auth=basic: auth=x header.X-Api-Key=secret:fz header.Token=abc",
            "header.Host=x header.X-A=b body=json body=form body=xml confirm=yes confirm=maybe",
            "timeout=10s timeout=0s timeout=2h retries=5 retries=99 allow=everyone",
            "allow=<@U0002> allow=<#C0002|ops> allow=bob {{ }} {% %} payload.x|tojson",
            "params.a response.json.id clear { } [ ] : ,",
        )
    ),
    UNICODE_WORD,
)
ACTION_COMMANDS = command_text(ACTION_VERBS, ACTION_FRAGMENTS)


async def test_action_command_text_never_crashes(
    start_bot: Callable[..., Awaitable[RunningBot]],
    fake_slack: FakeSlack,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_slack.add_user("U0002", tz="UTC")
    running = await start_bot()
    assert "Made action *fz*" in await running.command("/action add fz POST http://127.0.0.1:9/x")
    await running.command("/action add fz-1 POST http://127.0.0.1:9/y", user="U0002")

    @settings(FUZZ, max_examples=200)
    @given(text=ACTION_COMMANDS, user=st.sampled_from(["U0001", "U0001", "U0002"]))
    def check(bridge: _Bridge, text: str, user: str) -> None:
        seen = len(caplog.records)
        reply = bridge.run(slash(running, "/action", text, user=user))
        for marker in ERRORS:
            assert marker not in reply, f"/action {text!r} answered {reply!r}"
        if text.split() not in (["add"], ["create"], ["ADD"]):  # those open a form
            assert reply.strip(), f"/action {text!r} got an empty reply"
        event(reply.split("\n", 1)[0][:40])
        assert new_errors(caplog, seen) == []

    await fuzz_in_thread(check)
