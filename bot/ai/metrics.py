"""The AI step's metrics as callbacks: requests, tokens, failures and fallbacks, by use."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from bot.ai.results import AIUse, FailureKind


class AIMetrics(Protocol):
    """Callbacks the AI step calls; the composition root feeds them to Prometheus.

    ``fallback`` is called whenever a step gives :class:`AIUnavailable` while AI is
    configured (budget spent included); ``failure`` only when a request was sent and its
    answer was unusable. So fallbacks are at least failures.
    """

    def request(self, use: AIUse) -> None: ...

    def tokens(self, use: AIUse, count: int) -> None: ...

    def failure(self, use: AIUse, kind: FailureKind) -> None: ...

    def fallback(self, use: AIUse, kind: FailureKind) -> None: ...


class NoMetrics:
    """Metrics that go nowhere."""

    def request(self, use: AIUse) -> None:
        pass

    def tokens(self, use: AIUse, count: int) -> None:
        pass

    def failure(self, use: AIUse, kind: FailureKind) -> None:
        pass

    def fallback(self, use: AIUse, kind: FailureKind) -> None:
        pass


@dataclass
class CountingMetrics:
    """Metrics kept in counters: for tests, and a model of what Prometheus should count."""

    requests: Counter[AIUse] = field(default_factory=Counter)
    token_counts: Counter[AIUse] = field(default_factory=Counter)
    failures: Counter[tuple[AIUse, FailureKind]] = field(default_factory=Counter)
    fallbacks: Counter[tuple[AIUse, FailureKind]] = field(default_factory=Counter)

    def request(self, use: AIUse) -> None:
        self.requests[use] += 1

    def tokens(self, use: AIUse, count: int) -> None:
        self.token_counts[use] += count

    def failure(self, use: AIUse, kind: FailureKind) -> None:
        self.failures[(use, kind)] += 1

    def fallback(self, use: AIUse, kind: FailureKind) -> None:
        self.fallbacks[(use, kind)] += 1
