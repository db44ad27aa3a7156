"""Trigger conditions: the words users type, in the one expression language.

``when latency > 500ms``, ``when body contains "maintenance"``, ``when cert expires < 14d``
are shorthands; everything else (``status != 200``, ``json.status.indicator != "none"``,
``data.queue.depth > 100``) is already an expression over what the check saw (see
`bot.triggers.checks.condition_context`). The shorthands are rewritten into that
language, so there is one evaluator. The trigger keeps the condition as the user wrote it
(that is what ``show`` and the edit form display); the rewrite and the compiled code are
made once per distinct text and cached, not on every run.

`check_condition` is what a trigger's definition must pass when it is saved: the
condition compiles, and every name it reads is one its kind's check provides.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from jinja2 import nodes

from bot.expressions import (
    ExpressionError,
    compile_expression,
    evaluate_bool,
    make_environment,
    parse_expression_tree,
)

Condition = Callable[[Mapping[str, Any]], bool]

# What a condition can see, per kind: `bot.triggers.checks.condition_context` (plus
# ``data`` for json). tests/test_condition_names.py keeps the two in step.
_HTTP_NAMES: Final = ("status", "latency_ms", "body", "json", "headers", "cert_days_left")
# An email routing rule sees `bot.mail.message.routing_context` (``category``
# is the AI's label when categorising is on, else empty).
EMAIL_NAMES: Final = (
    "from", "from_domain", "to", "cc", "subject", "text", "has_attachment", "attachments",
    "headers", "size", "category",
)  # fmt: skip
CONDITION_NAMES: Final[Mapping[str, tuple[str, ...]]] = {
    "http": _HTTP_NAMES,
    "json": ("data", *_HTTP_NAMES),
    "email": EMAIL_NAMES,
}
_A_CHECK: Final[Mapping[str, str]] = {
    "http": "an http check",
    "json": "a json check",
    "email": "an email routing rule",
}
# Python functions people reach for, and the filter that does the same.
_FILTER_FOR: Final[Mapping[str, str]] = {
    "len": "length",
    "str": "string",
    "int": "int",
    "float": "float",
    "abs": "abs",
    "round": "round",
    "lower": "lower",
    "upper": "upper",
    "min": "min",
    "max": "max",
    "sum": "sum",
    "list": "list",
}

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


def check_condition(text: str, kind: str) -> None:
    """Raise `ConditionError` unless ``text`` compiles and uses only names a ``kind``
    trigger's condition can see (the error lists them), so a condition that can never
    work is refused when it is added, not reported as an error on every run."""
    compile_condition(text)
    allowed = set(CONDITION_NAMES.get(kind, ())) | _language_names()
    unknown = [name for name in names_used(text) if name not in allowed]
    if unknown:
        raise ConditionError(_unknown_name(text, unknown[0], kind))


def names_used(text: str) -> list[str]:
    """The names a condition reads (``json``, ``latency_ms``, …), in order, each once.

    Raises `ConditionError` when it does not compile."""
    compile_condition(text)  # cached; refuses what the parser below would choke on
    expression = parse_expression_tree(to_expression(text))
    # find_all walks below the root: a condition that is one bare name is its own root.
    candidates = [expression, *expression.find_all(nodes.Name)]
    found = [n.name for n in candidates if isinstance(n, nodes.Name) and n.ctx == "load"]
    return list(dict.fromkeys(found))


@functools.cache
def _language_names() -> frozenset[str]:
    """The globals the expression language itself offers (``range``, ``dict``, …)."""
    return frozenset(make_environment().globals)


def _unknown_name(text: str, name: str, kind: str) -> str:
    names = ", ".join(f"`{known}`" for known in CONDITION_NAMES.get(kind, ()))
    hint = (
        f" Functions are written as filters here: `{name}(json)` is `json|{_FILTER_FOR[name]}`."
        if name in _FILTER_FOR
        else ""
    )
    return (
        f'The condition "{text}" uses `{name}`, which {_A_CHECK.get(kind, kind)} doesn\'t have: '
        f"it can use {names}.{hint}"
    )


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
