"""The ``report`` trigger: a digest of what the bot saw since the last report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from bot.models import Delivery, Hook, OutboxMessage, Trigger, TriggerRun
from bot.triggers.schedule import local_time, schedule_from_dict


async def digest(session: Any, trigger: Trigger, now: datetime) -> str:
    """Deliveries per hook, triggers that found problems, and failed posts, since last time."""
    since = trigger.last_run_at or trigger.created_at
    hooks = await _deliveries_per_hook(session, trigger.team_id, since)
    problems = await _problem_runs(session, trigger.team_id, since)
    failed = await _refused_posts(session, trigger.team_id, since)
    since_text = local_time(since, schedule_from_dict(trigger.schedule).tz)
    lines = [f"*Report* — since {since_text}"]
    lines.append(
        "*Webhooks:* "
        + (", ".join(f"{n} × {name} ({p} posted)" for name, n, p in hooks) or "no deliveries")
    )
    lines.append(
        "*Triggers with problems:* "
        + (", ".join(f"{name} ({n} runs)" for name, n in problems) or "none")
    )
    if failed:
        lines.append(f"*Messages Slack refused:* {failed}")
    return "\n".join(lines)


async def _refused_posts(session: Any, team_id: str, since: datetime) -> int:
    """Messages Slack refused for good since ``since``, of this workspace's hooks and
    triggers only (the outbox has no team: a message's source names its trigger or delivery)."""
    failed = (
        sa.select(col(OutboxMessage.source))
        .where(col(OutboxMessage.status) == "failed", col(OutboxMessage.created_at) >= since)
        .subquery()
    )
    of_triggers = sa.select(sa.literal("trigger:") + sa.cast(col(Trigger.id), sa.String)).where(
        col(Trigger.team_id) == team_id
    )
    of_deliveries = (
        sa.select(sa.literal("delivery:") + col(Delivery.id))
        .join(Hook, col(Hook.id) == col(Delivery.hook_id))
        .where(col(Hook.team_id) == team_id, col(Delivery.received_at) >= since)
    )
    count = await session.scalar(
        sa.select(sa.func.count())
        .select_from(failed)
        .where(failed.c.source.in_(of_triggers.union(of_deliveries)))
    )
    return int(count or 0)


async def _deliveries_per_hook(
    session: Any, team_id: str, since: datetime
) -> list[tuple[str, int, int]]:
    posted = sa.func.sum(sa.case((col(Delivery.status) == "posted", 1), else_=0))
    result = await session.execute(
        sa.select(col(Hook.name), sa.func.count(), posted)
        .select_from(Delivery)
        .join(Hook, col(Hook.id) == col(Delivery.hook_id))
        .where(col(Hook.team_id) == team_id, col(Delivery.received_at) >= since)
        .group_by(col(Hook.name))
        .order_by(col(Hook.name))
    )
    return [(name, int(count), int(done or 0)) for name, count, done in result.all()]


async def _problem_runs(session: Any, team_id: str, since: datetime) -> list[tuple[str, int]]:
    result = await session.execute(
        sa.select(col(Trigger.name), sa.func.count())
        .select_from(TriggerRun)
        .join(Trigger, col(Trigger.id) == col(TriggerRun.trigger_id))
        .where(
            col(Trigger.team_id) == team_id,
            col(TriggerRun.outcome) == "problem",
            col(TriggerRun.started_at) >= since,
        )
        .group_by(col(Trigger.name))
        .order_by(col(Trigger.name))
    )
    return [(name, int(count)) for name, count in result.all()]
