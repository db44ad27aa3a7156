"""What Slack says about a person: their time zone and whether they administer the workspace.

One ``users.info`` call answers both, and answers are cached for a while. A failed call is
never cached: the next question asks Slack again. Callers that cannot go on without an
answer get `SlackUnavailable` and say so, rather than guessing (a guessed zone would
schedule someone's 9:00 reminder at 9:00 UTC; a guessed "not an admin" would lock an
admin out for the whole cache period).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.errors import UsageError

CACHE_FOR: Final = timedelta(minutes=10)
# A 429 asking for a short wait is worth one retry; a longer one is reported.
RETRY_WAIT_MAX_SECONDS: Final = 2.0
UTC_ZONE: Final = ZoneInfo("UTC")


class SlackUnavailable(UsageError):
    """Slack did not answer a question about a user; the message says so in plain words."""


@dataclass(frozen=True)
class SlackUser:
    """What the bot needs to know about a person."""

    zone: ZoneInfo
    is_admin: bool


# What a definite "no such user" (or a profile without the fields) means.
NOBODY_KNOWN: Final = SlackUser(zone=UTC_ZONE, is_admin=False)


@dataclass
class UserDirectory:
    """Answers about users from ``users.info``, cached for `CACHE_FOR`; failures are not cached."""

    slack: AsyncWebClient
    clock: Clock
    _cache: dict[str, tuple[datetime, SlackUser]] = field(default_factory=dict)

    async def user(self, user_id: str) -> SlackUser:
        """What Slack says about ``user_id``; raises `SlackUnavailable` when it won't say."""
        now = self.clock.now()
        cached = self._cache.get(user_id)
        if cached is not None and now - cached[0] < CACHE_FOR:
            return cached[1]
        answer = await self._ask(user_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[user_id] = (now, answer)
        return answer

    async def zone(self, user_id: str) -> ZoneInfo:
        """The person's Slack time zone (UTC when their profile names none)."""
        return (await self.user(user_id)).zone

    async def _ask(self, user_id: str) -> SlackUser:
        for attempt in range(2):
            try:
                response = await self.slack.users_info(user=user_id)
            except SlackApiError as error:
                if not _is_transient(error):
                    return NOBODY_KNOWN  # Slack answered: it knows no such user
                wait = _retry_after(error)
                if attempt == 0 and wait is not None and wait <= RETRY_WAIT_MAX_SECONDS:
                    await self.clock.sleep(wait)
                    continue
                raise SlackUnavailable(_unavailable(_why(error))) from None
            except (OSError, TimeoutError):
                raise SlackUnavailable(_unavailable("it could not be reached")) from None
            return _user_of(response.get("user") or {})
        raise SlackUnavailable(_unavailable("it is rate-limiting me"))


def _is_transient(error: SlackApiError) -> bool:
    status = int(error.response.status_code)
    return status == 429 or status >= 500


def _retry_after(error: SlackApiError) -> float | None:
    if error.response.status_code != 429:
        return None
    try:
        return float(error.response.headers.get("Retry-After", "1"))
    except (TypeError, ValueError):
        return 1.0


def _why(error: SlackApiError) -> str:
    if error.response.status_code == 429:
        return "it is rate-limiting me"
    return f"it answered HTTP {error.response.status_code}"


def _unavailable(why: str) -> str:
    return (
        f"I couldn't check your Slack profile just now ({why}), and I won't guess your "
        "time zone or permissions. Nothing was changed; please try again in a minute."
    )


def _user_of(user: dict[str, object]) -> SlackUser:
    admin = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
    return SlackUser(zone=_zone(user.get("tz")), is_admin=admin)


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        return UTC_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC_ZONE
