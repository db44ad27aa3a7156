"""Who may change what: creators and admins change hooks and triggers; anyone may create.

Admins are the users listed in BOT_ADMINS plus the workspace's admins and owners as
Slack reports them (``users.info``, through `bot.slack.users.UserDirectory`).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import UsageError
from bot.slack.users import UserDirectory


@dataclass
class Permissions:
    """Answers "may this user change that thing?" with a reason when not."""

    users: UserDirectory
    admins: frozenset[str]

    async def may_change(self, user_id: str, owner_id: str) -> bool:
        """True when ``user_id`` created the thing (``owner_id``) or is an admin.

        Raises `bot.slack.users.SlackUnavailable` when only Slack could tell.
        """
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
        return (await self.users.user(user_id)).is_admin
