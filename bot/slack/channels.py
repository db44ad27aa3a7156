"""Channel names people type (``#ops``), turned into the channel ids Slack posts by.

A channel picked in Slack's UI or escaped by Slack (``<#C0002|ops>``) already carries its
id. A name typed by hand (in a DM, in the fake workspace, in a form's text) does not; a
message posted "to #ops" by name works, but a link to it, its thread, an edit or a
reaction needs the id. So a typed name is looked up once, with ``conversations.list``,
when a hook or trigger is created or moved, and the id is what is stored.

The names Slack knows are cached for a while (one paginated listing answers every name);
a name that is not in a listing older than `RELIST_AFTER` is looked up again, so a
channel made a minute ago is found. When Slack does not know the name, or cannot be
asked, the ``#name`` is kept and the caller says so: the message will go to that name.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.slack.blocks import channel_mention

log = logging.getLogger(__name__)

CACHE_FOR: Final = timedelta(minutes=10)
RELIST_AFTER: Final = timedelta(seconds=30)
PAGE_SIZE: Final = 200  # what Slack recommends for conversations.list
MAX_PAGES: Final = 100  # 20,000 channels; a larger workspace is looked up partly
CHANNEL_TYPES: Final = "public_channel,private_channel"


@dataclass(frozen=True)
class Listing:
    """The channel names Slack listed (lower-case, without ``#``) and their ids."""

    ids: dict[str, str]
    at: datetime


@dataclass
class ChannelDirectory:
    """Resolves typed channel names to ids through ``conversations.list`` (cached)."""

    slack: AsyncWebClient
    clock: Clock
    _listing: Listing | None = field(default=None, init=False)

    async def resolve(self, channel: str) -> str:
        """The id of ``channel`` when it is a ``#name`` Slack knows; otherwise ``channel``
        unchanged (an id already, or a name Slack does not know)."""
        if not channel.startswith("#"):
            return channel
        name = channel[1:].lower()
        listing = await self._listing_for(name)
        return listing.ids.get(name, channel) if listing is not None else channel

    async def _listing_for(self, name: str) -> Listing | None:
        now = self.clock.now()
        listing = self._listing
        fresh = listing is not None and now - listing.at < CACHE_FOR
        if (
            listing is not None
            and fresh
            and (name in listing.ids or now - listing.at < RELIST_AFTER)
        ):
            return listing
        relisted = await self._list(now)
        if relisted is None:  # Slack did not answer: what we knew, while it is fresh
            return listing if fresh else None
        self._listing = relisted
        return relisted

    async def _list(self, now: datetime) -> Listing | None:
        """Every channel the bot can see, page by page; None when Slack could not answer."""
        ids: dict[str, str] = {}
        cursor = ""
        try:
            for _ in range(MAX_PAGES):
                page = await self.slack.conversations_list(
                    types=CHANNEL_TYPES, exclude_archived=True, limit=PAGE_SIZE, cursor=cursor
                )
                ids |= _names_of(page.get("channels") or [])
                cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
                if not cursor:
                    break
        except (SlackApiError, OSError, TimeoutError) as error:
            log.warning(
                "conversations.list failed; typed channel names stay names: %s", _why(error)
            )
            return None
        return Listing(ids, now)


def _names_of(channels: list[Any]) -> dict[str, str]:
    return {
        str(channel["name"]).lower(): str(channel["id"])
        for channel in channels
        if isinstance(channel, dict) and channel.get("name") and channel.get("id")
    }


def _why(error: Exception) -> str:
    if isinstance(error, SlackApiError):
        return str(error.response.get("error") or error.response.status_code)
    return type(error).__name__


def unknown_channel_note(channel: str) -> str:
    """What a reply adds when a typed ``#name`` stayed a name: Slack did not know it."""
    if not channel.startswith("#"):
        return ""
    return (
        f" (Slack doesn't know a channel called {channel_mention(channel)} that I can see,"
        " so I'll post to it"
        " by name: that works once it exists and I'm in it.)"
    )
