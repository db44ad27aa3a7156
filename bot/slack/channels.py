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

Who may have the bot post where (`ChannelDirectory.require_member`): anyone, in a public
channel (they could join it and post themselves); in a private channel, only its members,
so nobody can make the bot speak (or ``<!channel>``) where they cannot; in a direct message,
only the person it is with. Answers are cached for `MEMBERSHIP_CACHE_FOR`; a Slack error
is never taken as an answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.errors import SpecError, UsageError
from bot.slack.blocks import channel_mention

log = logging.getLogger(__name__)

CACHE_FOR: Final = timedelta(minutes=10)
RELIST_AFTER: Final = timedelta(seconds=30)
PAGE_SIZE: Final = 200  # what Slack recommends for conversations.list
MAX_PAGES: Final = 100  # 20,000 channels; a larger workspace is looked up partly
CHANNEL_TYPES: Final = "public_channel,private_channel"
MEMBERSHIP_CACHE_FOR: Final = timedelta(seconds=60)
MEMBERS_PAGE_SIZE: Final = 500
MAX_MEMBER_PAGES: Final = 40  # 20,000 members; a larger private channel is refused


@dataclass(frozen=True)
class _Room:
    """What matters about a channel for who may post in it."""

    private: bool
    dm_with: str | None  # the user of a direct message
    members: frozenset[str] | None  # of a private channel; None for a public one


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
    _rooms: dict[str, tuple[datetime, _Room]] = field(default_factory=dict, init=False)

    async def require_member(self, channel: str, user_id: str) -> None:
        """Raise `SpecError` (field ``channel``) unless ``user_id`` may have the bot post in
        ``channel``: anyone in a public channel, members in a private one, the person
        themself in a direct message. A ``#name`` Slack does not know passes (nothing can
        be posted there until it exists and the bot is in it)."""
        if channel.startswith("#"):
            return
        room = await self._room(channel)
        allowed = not room.private or (
            room.dm_with == user_id if room.dm_with else user_id in (room.members or ())
        )
        if not allowed:
            raise SpecError(
                f"{channel_mention(channel)} is a private conversation you are not in, so I "
                "won't post there for you. Pick a channel you are a member of.",
                field="channel",
                part=channel,
            )

    async def _room(self, channel: str) -> _Room:
        now = self.clock.now()
        cached = self._rooms.get(channel)
        if cached is not None and now - cached[0] < MEMBERSHIP_CACHE_FOR:
            return cached[1]
        try:
            info = (await self.slack.conversations_info(channel=channel)).get("channel") or {}
            room = await self._room_of(channel, info)
        except SlackApiError as error:
            if error.response.get("error") in ("channel_not_found", "not_in_channel"):
                raise SpecError(
                    f"I can't see {channel_mention(channel)}: if it is a private channel, "
                    "invite me there first (`/invite @bot`).",
                    field="channel",
                    part=channel,
                ) from None
            raise _unavailable(error) from None
        except (OSError, TimeoutError) as error:
            raise _unavailable(error) from None
        if len(self._rooms) > 10_000:
            self._rooms.clear()
        self._rooms[channel] = (now, room)
        return room

    async def _room_of(self, channel: str, info: dict[str, Any]) -> _Room:
        if info.get("is_im"):
            return _Room(private=True, dm_with=str(info.get("user") or ""), members=None)
        if not info.get("is_private"):
            return _Room(private=False, dm_with=None, members=None)
        return _Room(private=True, dm_with=None, members=await self._members(channel))

    async def _members(self, channel: str) -> frozenset[str]:
        members: set[str] = set()
        cursor = ""
        for _ in range(MAX_MEMBER_PAGES):
            page = await self.slack.conversations_members(
                channel=channel, limit=MEMBERS_PAGE_SIZE, cursor=cursor
            )
            members.update(str(member) for member in page.get("members") or [])
            cursor = str((page.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        return frozenset(members)

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


def _unavailable(error: Exception) -> UsageError:
    return UsageError(
        f"I couldn't check with Slack who may post in that channel ({_why(error)}); "
        "nothing was changed. Please try again in a minute."
    )


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
