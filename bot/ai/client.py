"""The AI step's client: categorise, summarise and read a request through one endpoint.

Any OpenAI-compatible endpoint works (OpenAI, Azure OpenAI's v1 API, a local Ollama or
vLLM) through the ``openai`` library. The step is optional and never acts alone: every
method returns a checked value or :class:`AIUnavailable` (not configured, budget spent,
timeout, HTTP error, malformed or invalid answer), never an exception, and the caller
falls back to rules. Only the item's text is sent, redacted and cut (``bot.ai.prompts``);
answers are checked before they become values (``bot.ai.answers``). Neither the API key
nor the item's text is ever logged or put in a failure reason.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Self, TypeVar

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletion, ChatCompletionMessage

from bot.ai.answers import Answer, ToolCallAnswer, read_category, read_proposal, read_summary
from bot.ai.budget import DEFAULT_DAILY_TOKENS, InMemoryUsageStore, TokenBudget
from bot.ai.labels import MIN_LABELS, Label
from bot.ai.metrics import AIMetrics, NoMetrics
from bot.ai.prompts import (
    Fence,
    Prompt,
    categorise_prompt,
    prepare,
    summarise_prompt,
    understand_prompt,
)
from bot.ai.results import (
    AIUnavailable,
    AIUse,
    Category,
    CommandProposal,
    FailureKind,
    Question,
    Summary,
)

MAX_INSTRUCTION_CHARS: Final = 500
MAX_SUMMARY_WORDS: Final = 400
# Some endpoints (a local Ollama) need no key, but the library insists on one.
_NO_KEY: Final = "unused"
_CHARS_PER_TOKEN: Final = 4
_log = logging.getLogger(__name__)

T = TypeVar("T")
TokenLimitField = Literal["max_tokens", "max_completion_tokens"]


@dataclass(frozen=True)
class AISettings:
    """How to reach the model. AI is on only when ``base_url`` and ``model`` are both set.

    ``api_key`` is kept out of ``repr``. ``timeout`` bounds each request end to end, in
    seconds, retries included; ``max_input_chars`` cuts the item; ``max_answer_tokens``
    caps what a model may write, sent as ``token_limit_field``: ``max_tokens`` is what
    Ollama, vLLM and most models read, while OpenAI's reasoning models (o-series, GPT-5)
    accept only ``max_completion_tokens``. ``temperature`` is sent only when set (those
    models refuse any value but the default).
    """

    base_url: str | None = None
    model: str | None = None
    api_key: str = field(default="", repr=False)
    timeout: float = 20.0
    daily_tokens: int = DEFAULT_DAILY_TOKENS
    max_input_chars: int = 8_000
    max_answer_tokens: int = 600
    max_retries: int = 0
    temperature: float | None = None
    token_limit_field: TokenLimitField = "max_tokens"

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError(f"AI timeout must be positive, got {self.timeout}")
        if self.daily_tokens < 0:
            raise ValueError(f"AI daily tokens must not be negative, got {self.daily_tokens}")
        if self.max_input_chars < 100:
            raise ValueError(f"AI input limit must be at least 100, got {self.max_input_chars}")
        if self.max_answer_tokens < 16:
            raise ValueError(f"AI answer limit must be at least 16, got {self.max_answer_tokens}")
        if self.max_retries < 0:
            raise ValueError(f"AI retries must not be negative, got {self.max_retries}")

    @property
    def enabled(self) -> bool:
        """True when an endpoint and a model are configured."""
        return bool(self.base_url and self.model)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class AIClient:
    """The three AI uses over one OpenAI-compatible endpoint, with budget and metrics.

    ``redact`` replaces stored secret values in any text before it is sent. ``budget``
    defaults to an in-memory one with ``settings.daily_tokens``; ``clock`` gives aware
    UTC datetimes for the budget day; ``fence`` makes the data markers (random nonces).
    Close it (``await client.close()`` or ``async with``) to release connections.
    """

    def __init__(
        self,
        settings: AISettings,
        *,
        redact: Callable[[str], str],
        budget: TokenBudget | None = None,
        metrics: AIMetrics | None = None,
        clock: Callable[[], datetime] = _utc_now,
        fence: Callable[[], Fence] = Fence.new,
    ) -> None:
        self._settings = settings
        self._redact = redact
        self._budget = budget or TokenBudget(InMemoryUsageStore(), settings.daily_tokens)
        self._metrics: AIMetrics = metrics or NoMetrics()
        self._clock = clock
        self._fence = fence
        self._openai = _openai_client(settings) if settings.enabled else None

    def __repr__(self) -> str:
        return f"AIClient(base_url={self._settings.base_url!r}, model={self._settings.model!r})"

    @property
    def enabled(self) -> bool:
        """True when AI is configured (a call may still fall back, e.g. on budget)."""
        return self._openai is not None

    async def close(self) -> None:
        """Release the HTTP connections."""
        if self._openai is not None:
            await self._openai.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ----- the three uses ----------------------------------------------------------------

    async def categorise(
        self, text: str, labels: Sequence[Label], *, team: str
    ) -> Category | AIUnavailable:
        """The one label of ``labels`` that fits ``text`` (e.g. an email), or AIUnavailable.

        Raises ValueError only for a caller's mistake: fewer than two labels.
        """
        if len(labels) < MIN_LABELS:
            raise ValueError(f"categorise needs at least {MIN_LABELS} labels, got {len(labels)}")
        safe_labels = [Label(label.name, self._redact(label.description)) for label in labels]
        prompt = categorise_prompt(self._prepare(text), safe_labels, self._fence())
        return await self._ask("categorise", team, prompt, lambda a: read_category(a, labels))

    async def summarise(
        self, text: str, *, team: str, words: int = 40, instruction: str | None = None
    ) -> Summary | AIUnavailable:
        """A summary of ``text`` in at most about ``words`` words, or AIUnavailable.

        With ``instruction`` (the template author's, e.g. "Write a three-line summary of
        yesterday's sales") the model does that with ``text`` as its data, and line breaks
        are kept. Raises ValueError only for ``words`` outside 1..400.
        """
        if not 1 <= words <= MAX_SUMMARY_WORDS:
            raise ValueError(f"words must be between 1 and {MAX_SUMMARY_WORDS}, got {words}")
        asked = None if instruction is None else self._prepare_instruction(instruction)
        prompt = summarise_prompt(self._prepare(text), words, self._fence(), asked)
        keep_lines = asked is not None
        return await self._ask(
            "summarise", team, prompt, lambda a: read_summary(a, words, keep_lines=keep_lines)
        )

    async def read_request(
        self, text: str, grammar: str, *, team: str
    ) -> CommandProposal | Question | AIUnavailable:
        """One command the plain-language ``text`` asks for, a question back, or AIUnavailable.

        ``grammar`` describes the bot's commands. A proposal is only text for the normal
        parser; a person confirms it before anything happens.
        """
        prompt = understand_prompt(self._prepare(text), grammar, self._fence())
        return await self._ask("understand", team, prompt, read_proposal)

    async def status(self, team: str) -> str:
        """The AI line for ``/trigger status``."""
        if not self.enabled:
            return "AI: off (rules only)"
        return await self._budget.status(team, self._clock())

    # ----- one request, start to end ------------------------------------------------------

    def _prepare(self, text: str) -> str:
        return prepare(text, self._redact, self._settings.max_input_chars)

    def _prepare_instruction(self, instruction: str) -> str:
        return prepare(instruction, self._redact, MAX_INSTRUCTION_CHARS)

    async def _ask(
        self, use: AIUse, team: str, prompt: Prompt, read: Callable[[Answer], T | AIUnavailable]
    ) -> T | AIUnavailable:
        if self._openai is None:
            return AIUnavailable(FailureKind.NOT_CONFIGURED)
        if not await self._budget.may_spend(team, self._clock()):
            return self._fell_back(
                use, AIUnavailable(FailureKind.BUDGET_SPENT, "rules until 00:00 UTC")
            )
        self._metrics.request(use)
        answer = await self._complete(self._openai, prompt)
        if isinstance(answer, Answer):
            await self._spend(use, team, answer.tokens)
            result = read(answer)
        else:
            result = answer
        if isinstance(result, AIUnavailable):
            self._metrics.failure(use, result.kind)
            return self._fell_back(use, result)
        return result

    async def _complete(self, client: openai.AsyncOpenAI, prompt: Prompt) -> Answer | AIUnavailable:
        import openai  # see _openai_client

        try:
            async with asyncio.timeout(self._settings.timeout):
                completion = await client.chat.completions.create(**self._request_arguments(prompt))
        except (TimeoutError, openai.APITimeoutError):
            return AIUnavailable(
                FailureKind.TIMEOUT, f"no answer within {self._settings.timeout:g} s"
            )
        except openai.APIError as exc:
            return _api_failure(exc)
        except ValueError as exc:
            # The library raises JSONDecodeError when a 200 answer's body is not JSON.
            return AIUnavailable(FailureKind.MALFORMED_RESPONSE, type(exc).__name__)
        return _answer_of(completion, prompt)

    def _request_arguments(self, prompt: Prompt) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "model": self._settings.model,
            "messages": list(prompt.messages),
            self._settings.token_limit_field: self._settings.max_answer_tokens,
        }
        if prompt.response_format is not None:
            arguments["response_format"] = prompt.response_format
        if prompt.tools:
            arguments["tools"] = list(prompt.tools)
            arguments["tool_choice"] = "required"
        if self._settings.temperature is not None:
            arguments["temperature"] = self._settings.temperature
        return arguments

    async def _spend(self, use: AIUse, team: str, tokens: int) -> None:
        self._metrics.tokens(use, tokens)
        await self._budget.record(team, tokens, self._clock())

    def _fell_back(self, use: AIUse, result: AIUnavailable) -> AIUnavailable:
        self._metrics.fallback(use, result.kind)
        # The reason is built from status codes and fixed text: no key, no item text.
        _log.warning("AI %s fell back to rules (%s)", use, result.reason)
        return result


def _openai_client(settings: AISettings) -> openai.AsyncOpenAI:
    # Imported only when the AI step is enabled: the library's types take ~50 MB of
    # memory, a third of a bot's, and most bots run without it.
    import openai

    return openai.AsyncOpenAI(
        base_url=settings.base_url,
        api_key=settings.api_key or _NO_KEY,
        timeout=settings.timeout,
        max_retries=settings.max_retries,
    )


def _api_failure(exc: openai.APIError) -> AIUnavailable:
    """A failure reason from the error's class and status only: bodies may echo the key."""
    import openai  # see _openai_client

    if isinstance(exc, openai.APIConnectionError):
        return AIUnavailable(FailureKind.CONNECTION, "could not reach the endpoint")
    if isinstance(exc, openai.RateLimitError):
        return AIUnavailable(FailureKind.RATE_LIMITED, _retry_after(exc))
    if isinstance(exc, openai.APIStatusError):
        return AIUnavailable(FailureKind.HTTP_ERROR, f"HTTP {exc.status_code}")
    return AIUnavailable(FailureKind.MALFORMED_RESPONSE, type(exc).__name__)


def _retry_after(exc: openai.RateLimitError) -> str:
    wait = exc.response.headers.get("retry-after", "")
    return f"HTTP 429, retry after {wait} s" if wait.isdigit() else "HTTP 429"


def _answer_of(completion: object, prompt: Prompt) -> Answer | AIUnavailable:
    """The answer's parts, checking the shape (the library does not validate strictly)."""
    from openai.types.chat import ChatCompletion, ChatCompletionMessage

    choices = getattr(completion, "choices", None)
    if not isinstance(completion, ChatCompletion) or not isinstance(choices, list) or not choices:
        return AIUnavailable(FailureKind.MALFORMED_RESPONSE, "no choices in the answer")
    message = getattr(choices[0], "message", None)
    if not isinstance(message, ChatCompletionMessage) or not _is_text(message.content):
        return AIUnavailable(FailureKind.MALFORMED_RESPONSE, "no message in the answer")
    tool_calls = _tool_calls(message)
    if tool_calls is None:
        return AIUnavailable(FailureKind.MALFORMED_RESPONSE, "malformed tool calls")
    return Answer(
        content=message.content,
        refusal=message.refusal if isinstance(message.refusal, str) else None,
        tool_calls=tool_calls,
        finish_reason=str(getattr(choices[0], "finish_reason", "") or ""),
        tokens=_tokens(completion, prompt, message),
    )


def _tool_calls(message: ChatCompletionMessage) -> tuple[ToolCallAnswer, ...] | None:
    from openai.types.chat.chat_completion_message_function_tool_call import (
        ChatCompletionMessageFunctionToolCall,
    )

    calls = message.tool_calls or []
    if not isinstance(calls, list):
        return None
    answers = []
    for call in calls:
        if not isinstance(call, ChatCompletionMessageFunctionToolCall):
            return None
        name, arguments = call.function.name, call.function.arguments
        if not (isinstance(name, str) and isinstance(arguments, str)):
            return None
        answers.append(ToolCallAnswer(name, arguments))
    return tuple(answers)


def _tokens(completion: ChatCompletion, prompt: Prompt, message: ChatCompletionMessage) -> int:
    """Tokens the endpoint reported; an estimate from the text when it reported none."""
    total = getattr(completion.usage, "total_tokens", None)
    if isinstance(total, int) and total >= 0:
        return total
    written = (message.content or "") + "".join(
        call.arguments for call in _tool_calls(message) or ()
    )
    return math.ceil((len(prompt.text()) + len(written)) / _CHARS_PER_TOKEN)


def _is_text(value: object) -> bool:
    return value is None or isinstance(value, str)
