"""The AI step as the bot's flows use it: one per app, every use with its rule-based fallback.

`AIClient` answers a value or `AIUnavailable`; this layer turns that into what a flow
needs, so no flow handles a failure itself:

* `categorise_item` / `categorise_all`: the label, or None (rules alone decide);
* `summary_of` / `summaries_of` (``summary=on``): a summary of long text, or None (the
  content is posted as it is);
* `write_summaries` (a template's ``|summarise``): Slack text for each request, the
  model's marked as AI-written, or the first words and "…";
* `read_request` (a plain-language request the rules did not understand).

At most ``concurrency`` requests are in flight per app, and a batch (a processor's
deliveries, a template's summaries) gets at most ``step_seconds``: what is not answered
by then falls back, so a slow endpoint delays a batch by that much at most, whatever its
size.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from bot.ai.client import AIClient
from bot.ai.labels import MIN_LABELS, Label
from bot.ai.notes import marked_summary
from bot.ai.results import AIUnavailable, Category, CommandProposal, Question, Summary
from bot.ai.summaries import SummaryRequest, slack_fallback

CONCURRENCY: Final = 4
STEP_SECONDS: Final = 45.0
# ``summary=on`` summarises content longer than this; shorter content speaks for itself.
LONG_TEXT_CHARS: Final = 600
SUMMARY_WORDS: Final = 40

T = TypeVar("T")
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToCategorise:
    """One item to label: its workspace (whose budget pays), its text and the labels."""

    team: str
    text: str
    labels: Sequence[Label]


@dataclass(frozen=True)
class ToSummarise:
    """One piece of content that ``summary=on`` asks to summarise."""

    team: str
    text: str


_ON: Final = (
    "AI is *on*: `categorise=` labels, `summary=on`, `|summarise` in templates, and "
    "requests the rules do not understand are read by the model (you confirm what it read)."
)
_OFF: Final = (
    "AI is *off*: `categorise=` and `summary=on` are kept but rules alone decide, and "
    "`|summarise` prints the first words (AI_BASE_URL and AI_MODEL turn it on)."
)


def help_line(ai: AISteps | None) -> str:
    """The line ``/trigger help`` and ``/hook help`` end with: whether AI is on."""
    return _ON if ai is not None and ai.enabled else _OFF


class AISteps:
    """The AI uses with their fallbacks, bounded in concurrency and time."""

    def __init__(
        self,
        client: AIClient,
        *,
        concurrency: int = CONCURRENCY,
        step_seconds: float = STEP_SECONDS,
    ) -> None:
        self.client = client
        self._limit = asyncio.Semaphore(concurrency)
        self._step_seconds = step_seconds

    @property
    def enabled(self) -> bool:
        """True when an endpoint and a model are configured."""
        return self.client.enabled

    async def close(self) -> None:
        """Release the client's connections."""
        await self.client.close()

    async def status(self, team: str) -> str:
        """The AI line of ``/trigger status``: off, tokens used today, or budget spent."""
        return await self.client.status(team)

    # ----- categorise -------------------------------------------------------------------

    async def categorise_item(self, team: str, text: str, labels: Sequence[Label]) -> Label | None:
        """The label the model picks for ``text`` from ``labels``; None when AI is off, the
        budget is spent, or the answer is unusable (the rules decide then)."""
        (label,) = await self.categorise_all([ToCategorise(team, text, labels)])
        return label

    async def categorise_all(self, items: Sequence[ToCategorise]) -> list[Label | None]:
        """`categorise_item` for each item, concurrently (bounded), in order."""
        if not self.enabled or not items:
            return [None] * len(items)
        return await self._all([self._categorise(item) for item in items], None)

    async def _categorise(self, item: ToCategorise) -> Label | None:
        if len(item.labels) < MIN_LABELS or not item.text.strip():
            return None
        result = await self._bounded(
            lambda: self.client.categorise(item.text, item.labels, team=item.team)
        )
        return result.label if isinstance(result, Category) else None

    # ----- summarise --------------------------------------------------------------------

    async def summary_of(self, team: str, text: str) -> str | None:
        """A one-to-two-sentence summary of ``text`` when it is long; None otherwise, and
        when AI is off or fails (the content is posted as it is)."""
        (summary,) = await self.summaries_of([ToSummarise(team, text)])
        return summary

    async def summaries_of(self, items: Sequence[ToSummarise]) -> list[str | None]:
        """`summary_of` for each item, concurrently (bounded), in order."""
        if not self.enabled or not items:
            return [None] * len(items)
        return await self._all([self._summary(item) for item in items], None)

    async def _summary(self, item: ToSummarise) -> str | None:
        if len(item.text.strip()) <= LONG_TEXT_CHARS:
            return None
        result = await self._bounded(
            lambda: self.client.summarise(item.text, team=item.team, words=SUMMARY_WORDS)
        )
        return result.text if isinstance(result, Summary) else None

    async def write_summaries(
        self, team: str | None, requests: Sequence[SummaryRequest]
    ) -> list[str]:
        """Slack text for each ``|summarise`` request of a template: the model's summary,
        escaped and marked as AI-written, or the rule-based fallback."""
        if team is None or not self.enabled:
            return [slack_fallback(request) for request in requests]
        written = await self._all([self._written(team, request) for request in requests], None)
        return [
            text if text is not None else slack_fallback(request)
            for text, request in zip(written, requests, strict=True)
        ]

    async def _written(self, team: str, request: SummaryRequest) -> str | None:
        result = await self._bounded(
            lambda: self.client.summarise(
                request.text, team=team, words=request.words, instruction=request.instruction
            )
        )
        return marked_summary(result.text) if isinstance(result, Summary) else None

    # ----- understand -------------------------------------------------------------------

    async def read_request(
        self, team: str, text: str, grammar: str
    ) -> CommandProposal | Question | AIUnavailable:
        """One command that ``text`` asks for, a question back, or AIUnavailable."""
        return await self._bounded(lambda: self.client.read_request(text, grammar, team=team))

    # ----- bounds -----------------------------------------------------------------------

    async def _bounded(self, request: Callable[[], Awaitable[T]]) -> T:
        """``request()`` once a slot is free (made only then: a request cancelled while it
        waits for a slot leaves nothing half-started)."""
        async with self._limit:
            return await request()

    async def _all(self, requests: Sequence[Awaitable[T]], default: T) -> list[T]:
        """Every request's answer, in order; those unanswered after ``step_seconds`` (or
        failing unexpectedly, which is logged) give ``default``."""
        tasks = [asyncio.ensure_future(request) for request in requests]
        if not tasks:
            return []
        try:
            await asyncio.wait(tasks, timeout=self._step_seconds)
        finally:  # also when the caller is cancelled: no request outlives its step
            late = {task for task in tasks if not task.done()}
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
        if late:
            _log.warning("AI step: %d of %d answers came too late", len(late), len(tasks))
        return [self._answer(task, default) for task in tasks]

    @staticmethod
    def _answer(task: asyncio.Future[T], default: T) -> T:
        if task.cancelled():
            return default
        error = task.exception()
        if error is not None:
            _log.error("AI step failed unexpectedly", exc_info=error)
            return default
        return task.result()
