"""Prometheus metrics, one registry per app (no process-global state).

Counters are bumped through small callbacks the composition root hands to each part;
the outbox's depth and age, and leadership, are read when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from bot.ai.results import AIUse, FailureKind

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Snapshot:
    """Values read from the database just before a scrape."""

    outbox_pending: int = 0
    outbox_oldest_age: float = 0.0
    outbox_failed: int = 0


@dataclass
class Metrics:
    """The bot's metrics and the callbacks that feed them."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    snapshot: Snapshot = field(default_factory=Snapshot)
    leader: Callable[[], bool] = lambda: True

    def __post_init__(self) -> None:
        r = self.registry
        self.webhooks = Counter(
            "chatops_webhooks_total",
            "Webhook requests by hook and outcome (accepted, duplicate, rejected, rate_limited)",
            ["hook", "outcome"],
            registry=r,
        )
        self.slack_calls = Counter(
            "chatops_slack_api_calls_total",
            "Slack Web API calls by method and outcome (ok, ratelimited, retry, error)",
            ["method", "outcome"],
            registry=r,
        )
        self.trigger_runs = Counter(
            "chatops_trigger_runs_total",
            "Trigger runs by kind and outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.trigger_lateness = Histogram(
            "chatops_trigger_lateness_seconds",
            "Start of a run minus its scheduled time",
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300),
            registry=r,
        )
        self.trigger_duration = Histogram(
            "chatops_trigger_duration_seconds",
            "How long a check took",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.action_attempts = Counter(
            "chatops_action_attempts_total",
            "Requests actions sent, by verdict (sent, retry, failed)",
            ["verdict"],
            registry=r,
        )
        self.usercode = Counter(
            "chatops_usercode_events_total",
            "User templates, filters and conditions run in workers, by event "
            "(job_ok, job_failed, job_timed_out, job_crashed, worker_started, worker_killed, "
            "worker_died)",
            ["event"],
            registry=r,
        )
        self.last_webhook = Gauge(
            "chatops_last_webhook_timestamp_seconds",
            "When the last webhook was accepted",
            registry=r,
        )
        self.ai = AICounters(r)
        r.register(_Live(self))

    def webhook(self, hook: str, outcome: str) -> None:
        self.webhooks.labels(hook, outcome).inc()
        if outcome == "accepted":
            self.last_webhook.set_to_current_time()

    def slack_call(self, method: str, outcome: str) -> None:
        self.slack_calls.labels(method, outcome).inc()

    def trigger_run(self, kind: str, outcome: str, lateness: float, duration: float) -> None:
        self.trigger_runs.labels(kind, outcome).inc()
        self.trigger_lateness.observe(max(0.0, lateness))
        self.trigger_duration.observe(max(0.0, duration))

    def action_attempt(self, verdict: str) -> None:
        self.action_attempts.labels(verdict).inc()

    def usercode_event(self, event: str) -> None:
        self.usercode.labels(event).inc()

    async def render(self, refresh: Callable[[], Awaitable[Snapshot]]) -> bytes:
        """The exposition text, after reading the database-backed values."""
        self.snapshot = await refresh()
        return generate_latest(self.registry)


class AICounters:
    """The AI step's four counters, by use; a `bot.ai.metrics.AIMetrics`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "chatops_ai_requests_total",
            "Requests sent to the AI endpoint, by use (categorise, summarise, understand)",
            ["use"],
            registry=registry,
        )
        self.token_counts = Counter(
            "chatops_ai_tokens_total",
            "Tokens the AI endpoint reported (or the bot estimated), by use",
            ["use"],
            registry=registry,
        )
        self.failures = Counter(
            "chatops_ai_failures_total",
            "AI requests whose answer was unusable (timeout, HTTP error, invalid output), "
            "by use and kind",
            ["use", "kind"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "chatops_ai_fallbacks_total",
            "AI steps that fell back to rules while AI is configured (failures and a spent "
            "budget), by use and kind",
            ["use", "kind"],
            registry=registry,
        )

    def request(self, use: AIUse) -> None:
        self.requests.labels(use).inc()

    def tokens(self, use: AIUse, count: int) -> None:
        self.token_counts.labels(use).inc(max(0, count))

    def failure(self, use: AIUse, kind: FailureKind) -> None:
        self.failures.labels(use, kind.value).inc()

    def fallback(self, use: AIUse, kind: FailureKind) -> None:
        self.fallbacks.labels(use, kind.value).inc()


class _Live(Collector):
    """Gauges computed at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self._metrics.snapshot
        yield GaugeMetricFamily(
            "chatops_outbox_pending", "Messages waiting to be sent", value=snap.outbox_pending
        )
        yield GaugeMetricFamily(
            "chatops_outbox_failed", "Messages Slack refused for good", value=snap.outbox_failed
        )
        yield GaugeMetricFamily(
            "chatops_outbox_oldest_age_seconds",
            "Age of the oldest waiting message",
            value=snap.outbox_oldest_age,
        )
        yield GaugeMetricFamily(
            "chatops_scheduler_leader",
            "1 when this process runs the scheduler",
            value=1.0 if self._metrics.leader() else 0.0,
        )


def age_seconds(oldest: datetime | None, now: datetime) -> float:
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
