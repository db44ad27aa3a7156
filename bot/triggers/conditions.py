"""Trigger conditions: the words users type, in the one expression language.

``when latency > 500ms``, ``when body contains "maintenance"``, ``when cert expires < 14d``
are shorthands; everything else (``status != 200``, ``json.status.indicator != "none"``,
``data.queue.depth > 100``) is already an expression over what the check saw (see
`bot.triggers.checks.condition_context`). The shorthands are rewritten into that
language, so there is one evaluator. The trigger keeps the condition as the user wrote it
(that is what ``show`` and the edit form display); the rewrite and the compiled code are
made once per distinct text and cached, not on every run.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

from bot.expressions import ExpressionError, compile_expression, evaluate_bool

Condition = Callable[[Mapping[str, Any]], bool]

_LATENCY = re.compile(r"\blatency\s*(<=|>=|<|>|==|!=)\s*(\d+(?:\.\d+)?)\s*(ms|s)\b", re.I)
_CONTAINS = re.compile(r"\bbody\s+(not\s+)?contains\s+(\"[^\"]*\"|'[^']*')", re.I)
_CERT = re.compile(r"\bcert(?:ificate)?\s+expires\s*(<=|>=|<|>)\s*(\d+)\s*d(?:ays?)?\b", re.I)


class ConditionError(ValueError):
    """A condition that cannot be understood; the message names the part and an example."""


@functools.lru_cache(maxsize=4096)
def to_expression(text: str) -> str:
    """Rewrite the shorthands into the expression language."""
    expression = _LATENCY.sub(_latency, text)
    expression = _CONTAINS.sub(_contains, expression)
    return _CERT.sub(_cert, expression)


@functools.lru_cache(maxsize=4096)
def compile_condition(text: str) -> Condition:
    """Compile a user's condition (cached by its text), or raise `ConditionError`."""
    try:
        expression = compile_expression(to_expression(text))
    except ExpressionError as error:
        raise ConditionError(
            f'I couldn\'t understand the condition "{text}" ({error}). '
            'Examples: `when latency > 500ms`, `when body contains "maintenance"`, '
            '`when status != 200`, `when json.status.indicator != "none"`'
        ) from None

    def holds(context: Mapping[str, Any]) -> bool:
        return evaluate_bool(expression, context)

    return holds


def _latency(match: re.Match[str]) -> str:
    operator, number, unit = match.groups()
    milliseconds = float(number) * (1000 if unit.lower() == "s" else 1)
    return f"latency_ms {operator} {milliseconds:g}"


def _contains(match: re.Match[str]) -> str:
    negated, literal = match.groups()
    return f"{literal} {'not in' if negated else 'in'} body"


def _cert(match: re.Match[str]) -> str:
    operator, days = match.groups()
    return f"(cert_days_left is not none and cert_days_left {operator} {days})"
