"""manifest.yml declares exactly the commands and events the code listens to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.app import build
from bot.config import Secret, Settings

MANIFEST = Path(__file__).parent.parent / "manifest.yml"
# Bolt's event name → the subscription that delivers it to a bot.
SUBSCRIPTIONS = {"message": "message.im"}


def manifest() -> dict[str, Any]:
    return dict(yaml.safe_load(MANIFEST.read_text()))


async def registered(tmp_path: Path) -> tuple[set[str], set[str]]:
    settings = Settings(
        slack_bot_token=Secret("xoxb-x"),
        slack_signing_secret=Secret("s"),
        database_url=f"sqlite:///{tmp_path / 'm.db'}",
    )
    bot = build(settings)
    await bot.db.close()  # built, never started: only its listeners are looked at
    commands = set(bot.listeners.commands)
    events = {SUBSCRIPTIONS.get(name, name) for name in bot.listeners.events}
    listeners = bot.listeners
    assert len(bot.bolt._async_listeners) == len(commands) + len(events) + len(
        listeners.actions
    ) + len(listeners.views)
    return commands, events


async def test_commands_and_events_match_the_code(tmp_path: Path) -> None:
    data = manifest()
    declared_commands = {c["command"] for c in data["features"]["slash_commands"]}
    declared_events = set(data["settings"]["event_subscriptions"]["bot_events"])
    commands, events = await registered(tmp_path)
    assert commands == declared_commands
    assert events == declared_events


def test_commands_escape_channels_and_users() -> None:
    for command in manifest()["features"]["slash_commands"]:
        assert command["should_escape"] is True


def test_request_urls_point_at_slack_events() -> None:
    data = manifest()
    urls = [c["url"] for c in data["features"]["slash_commands"]]
    urls += [
        data["settings"]["event_subscriptions"]["request_url"],
        data["settings"]["interactivity"]["request_url"],
    ]
    assert all(url.endswith("/slack/events") for url in urls)


def test_scopes_cover_what_the_bot_calls() -> None:
    scopes = set(manifest()["oauth_config"]["scopes"]["bot"])
    needed = {
        "chat:write",
        "channels:join",
        "channels:read",
        "commands",
        "reactions:write",
        "users:read",
        "app_mentions:read",
        "im:history",
    }
    assert needed <= scopes
