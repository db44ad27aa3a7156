"""Hostile or malformed input gets a clear answer and changes nothing: signed payloads of
shapes Slack never sends, and races between people creating the same thing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlmodel import col, select

from bot.models import Hook, Trigger
from tests.conftest import RunningBot

BOTH = pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "view_submission", "view": {"callback_id": "trigger_modal"}, "user": {"id": "U1"}},
        {"type": "view_submission", "view": "not an object", "user": {"id": "U1"}},
        {"type": "block_actions", "actions": "not a list", "user": {"id": "U1"}},
        {"type": "block_actions", "actions": [1, 2], "user": {"id": "U1"}},
        {"type": "block_actions", "actions": [{"action_id": 7}], "user": {"id": "U1"}},
        {"type": 5},
        {"type": "block_actions", "container": [], "user": {"id": "U1"}},
    ],
)
async def test_a_signed_payload_of_a_shape_slack_never_sends_is_a_400(
    start_bot, payload: dict[str, Any]
) -> None:
    running: RunningBot = await start_bot()
    status, answer = await running.post_interaction(payload)
    assert status == 400, answer
    assert "malformed payload" in answer["error"]


@BOTH
async def test_people_creating_the_same_hook_at_once_get_one_hook_and_clear_answers(
    start_bot,
) -> None:
    running: RunningBot = await start_bot()
    replies = await asyncio.gather(*(running.command("/hook create racey") for _ in range(10)))
    created = [reply for reply in replies if reply.startswith("Created hook *racey*")]
    taken = [reply for reply in replies if "exists already" in reply]
    assert len(created) == 1 and len(taken) == 9, replies
    async with running.bot.db.sessions() as session:
        hooks = (await session.execute(select(Hook).where(col(Hook.name) == "racey"))).all()
    assert len(hooks) == 1


@BOTH
async def test_people_creating_the_same_trigger_at_once_get_one_trigger(start_bot) -> None:
    running: RunningBot = await start_bot()
    command = '/trigger add racey every day at 9:00 message "hi"'
    replies = await asyncio.gather(*(running.command(command) for _ in range(10)))
    assert sum(reply.startswith("Added *racey*") for reply in replies) == 1, replies
    assert sum("exists already" in reply for reply in replies) == 9, replies
    async with running.bot.db.sessions() as session:
        found = (await session.execute(select(Trigger).where(col(Trigger.name) == "racey"))).all()
    assert len(found) == 1
