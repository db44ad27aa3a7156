"""Typed channel names (``#ops``) become channel ids, as in a real workspace.

The fake Slack pages ``conversations.list`` as Slack does; `ChannelDirectory` reads every
page, caches the listing, and keeps a name Slack does not know (the reply says so).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.devtools.fake_slack import FakeSlack
from bot.slack.channels import RELIST_AFTER, ChannelDirectory
from tests.conftest import RunningBot, fake_clock
from tests.test_new_user_flows import stored_hook
from tests.test_triggers_flow import trigger_named


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server


@pytest.fixture
def client(fake: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-fake", base_url=fake.url, retry_handlers=[])


# ----- the fake's conversations.list -----------------------------------------------------


async def test_conversations_list_pages_with_an_opaque_cursor(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    for number in range(250):
        fake.add_channel(f"C9{number:04d}", f"team-{number}")
    names: list[str] = []
    cursor = ""
    pages = 0
    while True:
        page = await client.conversations_list(limit=100, cursor=cursor)
        pages += 1
        names += [channel["name"] for channel in page["channels"]]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
        assert "offset" not in cursor  # opaque, like Slack's base64 cursors
    assert pages == 3
    assert len(names) == len(set(names)) == 252  # general, ops and the 250


async def test_conversations_list_shows_what_the_bot_may_see(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    fake.add_channel("G0001", "secret-in", is_private=True, is_member=True)
    fake.add_channel("G0002", "secret-out", is_private=True, is_member=False)
    public = await client.conversations_list()
    both = await client.conversations_list(types="public_channel,private_channel")
    assert {c["name"] for c in public["channels"]} == {"general", "ops"}
    assert {c["name"] for c in both["channels"]} == {"general", "ops", "secret-in"}


async def test_conversations_list_refuses_a_bad_cursor_and_types(client: AsyncWebClient) -> None:
    with pytest.raises(SlackApiError) as bad_cursor:
        await client.conversations_list(cursor="not-a-cursor")
    assert bad_cursor.value.response["error"] == "invalid_cursor"
    with pytest.raises(SlackApiError) as bad_types:
        await client.conversations_list(types="channels")
    assert bad_types.value.response["error"] == "invalid_types"


# ----- ChannelDirectory ------------------------------------------------------------------


async def test_a_typed_name_resolves_to_its_id_once(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    directory = ChannelDirectory(client, fake_clock())
    assert await directory.resolve("#ops") == "C0002"
    assert await directory.resolve("#OPS") == "C0002"  # Slack's names are lower-case
    assert await directory.resolve("C0001") == "C0001"  # an id is left alone
    assert len(fake.calls_to("conversations.list")) == 1  # one listing answered both


async def test_many_pages_are_read(fake: FakeSlack, client: AsyncWebClient) -> None:
    for number in range(450):
        fake.add_channel(f"C9{number:04d}", f"team-{number}")
    directory = ChannelDirectory(client, fake_clock())
    assert await directory.resolve("#team-449") == "C90449"
    assert len(fake.calls_to("conversations.list")) == 3


async def test_an_unknown_name_is_kept_and_looked_up_again_later(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    clock = fake_clock()
    directory = ChannelDirectory(client, clock)
    assert await directory.resolve("#launch") == "#launch"
    assert await directory.resolve("#launch") == "#launch"  # not asked again at once
    assert len(fake.calls_to("conversations.list")) == 1
    fake.add_channel("C0100", "launch")
    clock.advance(RELIST_AFTER + timedelta(seconds=1))
    assert await directory.resolve("#launch") == "C0100"


async def test_slack_failing_keeps_the_name_and_is_not_cached(
    fake: FakeSlack, client: AsyncWebClient
) -> None:
    directory = ChannelDirectory(client, fake_clock())
    fake.fail_next(1, error="missing_scope", method="conversations.list")
    assert await directory.resolve("#ops") == "#ops"
    assert await directory.resolve("#ops") == "C0002"


# ----- through the front doors -------------------------------------------------------------


async def test_trigger_and_hook_channels_typed_by_name_are_stored_as_ids(start_bot) -> None:
    running: RunningBot = await start_bot(clock=fake_clock())
    added = await running.command('/trigger add standup every day at 9am message "hi" #ops')
    assert "<#C0002>" in added and "doesn't know" not in added
    assert (await trigger_named(running, "standup")).channel_id == "C0002"

    created = await running.command("/hook create deploys #ops preset=github")
    assert "→ <#C0002>" in created
    await running.command("/hook create builds preset=github")
    moved = await running.command("/hook set builds channel=#ops")
    assert "doesn't know" not in moved
    hook = await stored_hook(running, "builds")
    assert hook is not None and hook.channel_id == "C0002"


async def test_a_name_slack_does_not_know_is_kept_and_the_reply_says_so(start_bot) -> None:
    running: RunningBot = await start_bot(clock=fake_clock())
    added = await running.command('/trigger add standup every day at 9am message "hi" #nowhere')
    assert "Added" in added and "Slack doesn't know a channel called #nowhere" in added
    assert (await trigger_named(running, "standup")).channel_id == "#nowhere"
    created = await running.command("/hook create deploys #nowhere")
    assert "Slack doesn't know a channel called #nowhere" in created
