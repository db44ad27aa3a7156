"""``{{ text|summarise }}`` in user templates: recorded where templates run, written afterwards.

Templates run in user-code worker processes (`bot.usercode`), which cannot call a model
and must not wait for one. So the filter only records what is to be summarised and
prints a marker in its place; the bot then asks the model for each recorded request and
puts each answer (or the rule-based fallback) where its marker is::

    worker:  recorder = SummaryRecorder()
             text = render_template(template, context, summaries=recorder)
             → "Sales: … \\ue000583920174411.0\\ue001"   and  recorder.requests
    bot:     fill_markers(text, recorder.nonce, ["<the summary> _(AI summary)_"])

A marker is two private-use characters around a random number and the request's
index: nothing Slack escaping, ``|upper`` or ``|trim`` changes. A marker that is not the
render's own (text from a payload that imitates one, or one cut in half) is removed.

Rendering without a recorder (a template checked or rendered in the bot's own process)
prints the rule-based fallback at once: the first words of the text and "…".
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from jinja2.runtime import Undefined
from jinja2.utils import pass_environment

from bot.slack.blocks import escape_mrkdwn

DEFAULT_WORDS: Final = 40
DEFAULT_INSTRUCTED_WORDS: Final = 80
MAX_WORDS: Final = 400
MAX_INSTRUCTION_CHARS: Final = 500
# What one request keeps of its text; the model is sent less (AISettings.max_input_chars),
# redacted before it is cut, so a secret straddling this cut is not sent either.
MAX_SOURCE_CHARS: Final = 50_000
# Model requests one render may make; later calls print the rule-based fallback.
MAX_REQUESTS_PER_RENDER: Final = 5
ELLIPSIS: Final = "…"

_OPEN: Final = "\ue000"
_CLOSE: Final = "\ue001"
_MARKER: Final = re.compile(f"{_OPEN}([0-9]+)\\.([0-9]+){_CLOSE}")
_STRAY: Final = re.compile(f"[{_OPEN}{_CLOSE}]")


@dataclass(frozen=True)
class SummaryRequest:
    """One ``|summarise`` call: the text, the length asked for and the author's instruction."""

    text: str
    words: int = DEFAULT_WORDS
    instruction: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (the worker sends it to the bot)."""
        return {"text": self.text, "words": self.words, "instruction": self.instruction}

    @classmethod
    def from_json(cls, data: Any) -> SummaryRequest:
        """Read back `to_json`; ValueError for anything else (the worker runs user code)."""
        if not isinstance(data, Mapping):
            raise ValueError("a summary request is not an object")
        text, words, instruction = data.get("text"), data.get("words"), data.get("instruction")
        if not isinstance(text, str) or len(text) > MAX_SOURCE_CHARS:
            raise ValueError("a summary request's text is missing or too long")
        if not isinstance(words, int) or isinstance(words, bool) or not 1 <= words <= MAX_WORDS:
            raise ValueError("a summary request's length is out of range")
        if instruction is not None and (
            not isinstance(instruction, str) or len(instruction) > MAX_INSTRUCTION_CHARS
        ):
            raise ValueError("a summary request's instruction is not text or too long")
        return cls(text, words, instruction)


@dataclass
class SummaryRecorder:
    """The summaries one render asked for, and the nonce that makes its markers its own."""

    nonce: str = field(default_factory=lambda: str(secrets.randbelow(10**12)).zfill(12))
    requests: list[SummaryRequest] = field(default_factory=list)

    @property
    def full(self) -> bool:
        """True once the render has made as many requests as it may."""
        return len(self.requests) >= MAX_REQUESTS_PER_RENDER

    def record(self, request: SummaryRequest) -> str:
        """Keep ``request``; returns the marker to print in its place."""
        self.requests.append(request)
        return f"{_OPEN}{self.nonce}.{len(self.requests) - 1}{_CLOSE}"

    def to_json(self) -> dict[str, Any]:
        """``{"nonce": …, "requests": […]}``: what the worker sends besides the text."""
        return {"nonce": self.nonce, "requests": [r.to_json() for r in self.requests]}


@dataclass(frozen=True)
class RecordedSummaries:
    """What a worker sent about a render's summaries, checked."""

    nonce: str
    requests: tuple[SummaryRequest, ...]

    @classmethod
    def from_json(cls, data: Any) -> RecordedSummaries:
        """Read back `SummaryRecorder.to_json`; ValueError for anything else."""
        if not isinstance(data, Mapping):
            raise ValueError("the summaries are not an object")
        nonce, requests = data.get("nonce"), data.get("requests")
        if not isinstance(nonce, str) or not nonce.isdigit() or not isinstance(requests, list):
            raise ValueError("the summaries have no nonce or no list of requests")
        if len(requests) > MAX_REQUESTS_PER_RENDER:
            raise ValueError("more summary requests than one render may make")
        return cls(nonce, tuple(SummaryRequest.from_json(item) for item in requests))


def fallback_summary(text: str, words: int) -> str:
    """The rule-based stand-in for a summary: the first ``words`` words, and "…" if cut."""
    all_words = text.split()
    if len(all_words) <= words:
        return " ".join(all_words)
    return " ".join(all_words[:words]) + ELLIPSIS


def slack_fallback(request: SummaryRequest) -> str:
    """The fallback for ``request`` as Slack text (what the template would have printed)."""
    return escape_mrkdwn(fallback_summary(request.text, request.words))


def fill_markers(text: str, nonce: str, replacements: Sequence[str]) -> str:
    """``text`` with each of its render's markers replaced (by index), others removed."""

    def replace(match: re.Match[str]) -> str:
        index = int(match.group(2))
        if match.group(1) != nonce or index >= len(replacements):
            return ""
        return replacements[index]

    return _STRAY.sub("", _MARKER.sub(replace, text))


@pass_environment
def summarise_filter(
    environment: Any, value: Any, instruction: Any = None, words: Any = None
) -> str:
    """``{{ text|summarise }}``, ``{{ text|summarise(words=40) }}``,
    ``{{ json|summarise('Write a three-line summary of yesterday's sales') }}``.

    Prints a marker for the bot to fill when the environment records summaries (in a
    user-code worker), else the rule-based fallback. Non-text values are summarised as
    their JSON. Raises ValueError for a length or instruction out of range (the render
    fails and says so).
    """
    asked = _instruction(instruction)
    length = _words(words, DEFAULT_WORDS if asked is None else DEFAULT_INSTRUCTED_WORDS)
    text = _as_text(value)[:MAX_SOURCE_CHARS]
    recorder = getattr(environment, "summaries", None)
    if not text.strip() or not isinstance(recorder, SummaryRecorder) or recorder.full:
        return fallback_summary(text, length)
    return recorder.record(SummaryRequest(text, length, asked))


def _instruction(value: Any) -> str | None:
    if value is None or isinstance(value, Undefined):
        return None
    if not isinstance(value, str):
        raise ValueError("summarise: the instruction must be text, e.g. summarise('In one line')")
    text = " ".join(value.split())
    if len(text) > MAX_INSTRUCTION_CHARS:
        raise ValueError(f"summarise: the instruction is over {MAX_INSTRUCTION_CHARS} characters")
    return text or None


def _words(value: Any, default: int) -> int:
    if value is None or isinstance(value, Undefined):
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_WORDS:
        raise ValueError(f"summarise: words must be a whole number from 1 to {MAX_WORDS}")
    return value


def _as_text(value: Any) -> str:
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):  # a key that is not text, a cycle: its text will do
        return str(value)
