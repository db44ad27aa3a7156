"""The daily token budget per workspace: UTC days, the reset at midnight, the status line."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from bot.ai.budget import (
    InMemoryUsageStore,
    TokenBudget,
    budget_day,
    next_reset,
    status_text,
)
from bot.ai.metrics import CountingMetrics, NoMetrics
from bot.ai.results import FailureKind

NOON = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def budget(limit: int = 1_000) -> TokenBudget:
    return TokenBudget(InMemoryUsageStore(), limit)


async def test_a_fresh_workspace_may_spend() -> None:
    assert await budget().may_spend("T1", NOON)


async def test_spending_up_to_the_limit_stops_further_spending() -> None:
    b = budget(1_000)
    await b.record("T1", 999, NOON)
    assert await b.may_spend("T1", NOON)
    await b.record("T1", 1, NOON)
    assert not await b.may_spend("T1", NOON)


async def test_workspaces_have_separate_budgets() -> None:
    b = budget(100)
    await b.record("T1", 150, NOON)
    assert not await b.may_spend("T1", NOON)
    assert await b.may_spend("T2", NOON)


async def test_the_budget_resets_at_midnight_utc() -> None:
    b = budget(100)
    await b.record("T1", 100, NOON)
    assert not await b.may_spend("T1", datetime(2025, 3, 10, 23, 59, 59, tzinfo=UTC))
    assert await b.may_spend("T1", datetime(2025, 3, 11, 0, 0, tzinfo=UTC))
    assert await b.used("T1", datetime(2025, 3, 11, 0, 0, tzinfo=UTC)) == 0


async def test_the_day_is_the_utc_day_whatever_the_zone_of_now() -> None:
    b = budget(100)
    berlin = timezone(timedelta(hours=1))
    # 00:30 in Berlin on the 11th is still the 10th in UTC.
    await b.record("T1", 100, datetime(2025, 3, 11, 0, 30, tzinfo=berlin))
    assert not await b.may_spend("T1", NOON)


def test_budget_day_and_next_reset() -> None:
    late = datetime(2025, 3, 10, 23, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert budget_day(late) == date(2025, 3, 11)
    assert next_reset(NOON) == datetime(2025, 3, 11, tzinfo=UTC)
    assert next_reset(datetime(2025, 12, 31, 23, 59, tzinfo=UTC)) == datetime(
        2026, 1, 1, tzinfo=UTC
    )


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        budget_day(datetime(2025, 3, 10, 12, 0))


@pytest.mark.parametrize(
    ("used", "limit", "text"),
    [
        (0, 200_000, "AI: 0 of 200,000 tokens used today"),
        (12_340, 200_000, "AI: 12,340 of 200,000 tokens used today"),
        (200_000, 200_000, "AI budget spent; rules until 00:00 UTC"),
        (250_000, 200_000, "AI budget spent; rules until 00:00 UTC"),
    ],
)
def test_status_text(used: int, limit: int, text: str) -> None:
    assert status_text(used, limit) == text


async def test_status_reads_todays_count() -> None:
    b = budget(200_000)
    await b.record("T1", 12_340, NOON)
    assert await b.status("T1", NOON) == "AI: 12,340 of 200,000 tokens used today"
    assert await b.status("T1", NOON + timedelta(days=1)) == "AI: 0 of 200,000 tokens used today"


async def test_a_zero_limit_never_allows_spending() -> None:
    assert not await budget(0).may_spend("T1", NOON)


async def test_negative_values_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        budget(-1)
    with pytest.raises(ValueError, match="negative"):
        await budget().record("T1", -5, NOON)


async def test_recording_zero_tokens_stores_nothing() -> None:
    store = InMemoryUsageStore()
    await TokenBudget(store, 10).record("T1", 0, NOON)
    assert await store.used("T1", NOON.date()) == 0


def test_counting_metrics_count_by_use_and_kind() -> None:
    metrics = CountingMetrics()
    metrics.request("categorise")
    metrics.tokens("categorise", 12)
    metrics.tokens("categorise", 3)
    metrics.failure("summarise", FailureKind.TIMEOUT)
    metrics.fallback("summarise", FailureKind.TIMEOUT)
    metrics.fallback("understand", FailureKind.BUDGET_SPENT)
    assert metrics.requests == {"categorise": 1}
    assert metrics.token_counts == {"categorise": 15}
    assert metrics.failures == {("summarise", FailureKind.TIMEOUT): 1}
    assert metrics.fallbacks[("understand", FailureKind.BUDGET_SPENT)] == 1


def test_no_metrics_accepts_every_callback() -> None:
    metrics = NoMetrics()
    metrics.request("categorise")
    metrics.tokens("categorise", 1)
    metrics.failure("categorise", FailureKind.TIMEOUT)
    metrics.fallback("categorise", FailureKind.TIMEOUT)
