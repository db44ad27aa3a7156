"""Times in messages that many people read: Slack shows each reader their own time.

A reply to one person names a time in that person's zone (`bot.triggers.schedule.local_time`).
A channel message has many readers in many zones, so it carries Slack's date token,
``<!date^UNIX^{time}|fallback>``, which each Slack client renders in its reader's zone
and settings. The fallback, for notifications and clients that cannot render the token,
is UTC and says so.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

RECENT: Final = timedelta(hours=12)
"""Within this of now, a time is shown without its date."""


def slack_date(when: datetime, now: datetime) -> str:
    """``when`` as Slack's date token: each reader sees it in their own zone."""
    utc = when.astimezone(UTC)
    if abs(now - when) < RECENT:
        return f"<!date^{int(utc.timestamp())}^{{time}}|{utc:%H:%M} UTC>"
    return f"<!date^{int(utc.timestamp())}^{{date_short_pretty}} {{time}}|{utc:%Y-%m-%d %H:%M} UTC>"
