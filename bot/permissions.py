"""Who may change what: creators and admins change hooks and triggers; anyone may create.

Admins are the users listed in BOT_ADMINS plus the workspace's admins and owners as
Slack reports them (``users.info``), looked up once per user and cached for a while.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.slack.commands import UsageError

CACHE_FOR = timedelta(minutes=10)


@dataclass
class Permissions:
    """Answers "may this user change that thing?" with a reason when not."""

    slack: AsyncWebClient
    clock: Clock
    admins: frozenset[str]
    _workspace_admins: dict[str, tuple[datetime, bool]] = field(default_factory=dict)

    async def may_change(self, user_id: str, owner_id: str) -> bool:
        """True when ``user_id`` created the thing (``owner_id``) or is an admin."""
        return user_id == owner_id or await self.is_admin(user_id)

    async def refusal(self, user_id: str, owner_id: str, what: str) -> str | None:
        """None when ``user_id`` may change ``what`` (created by ``owner_id``), else why not."""
        if await self.may_change(user_id, owner_id):
            return None
        return (
            f"Only <@{owner_id}> (who created {what}) or an admin can change it. "
            "Ask them, or ask an admin to add you to BOT_ADMINS."
        )

    async def require(self, user_id: str, owner_id: str, what: str) -> None:
        """Raise `UsageError` (a private reply) unless ``user_id`` may change ``what``."""
        refusal = await self.refusal(user_id, owner_id, what)
        if refusal:
            raise UsageError(refusal)

    async def is_admin(self, user_id: str) -> bool:
        if user_id in self.admins:
            return True
        now = self.clock.now()
        cached = self._workspace_admins.get(user_id)
        if cached is not None and now - cached[0] < CACHE_FOR:
            return cached[1]
        verdict = await self._slack_says_admin(user_id)
        self._workspace_admins[user_id] = (now, verdict)
        return verdict

    async def _slack_says_admin(self, user_id: str) -> bool:
        try:
            response = await self.slack.users_info(user=user_id)
        except (SlackApiError, OSError):
            return False
        user = response.get("user") or {}
        return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
