"""Conditions as people say them: "if it's down", "if it takes longer than 2 seconds",
"if it returns 500", "if the page no longer says X", "if the json field total is above
100", "if the certificate expires within 14 days", or an expression such as
``status != 200``.

`read_condition` finds the condition after ``if``/``when`` and rewrites it in the
condition language (`bot.triggers.conditions`); one it cannot read is refused, naming it,
never dropped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from bot.conversation.reading import (
    ACTION_WORDS,
    BOUNDARIES,
    CHECK_WORDS,
    CONDITION_WORDS,
    QUOTE_CHARS,
    SCHEDULE_SYNONYMS,
    STRAIGHT_QUOTES,
    Unclear,
    Word,
    fully_quoted,
)
from bot.slack.text import unescape
from bot.triggers.conditions import ConditionError, compile_condition

_SLOW_MS: Final = 2000
_GLUE_WORDS: Final = frozenset({"and", "then", "to", "in", "into", "please", "so", ""})


@dataclass(frozen=True)
class Condition:
    """What follows ``when`` (None: no condition needed), the words used, and as said."""

    text: str | None
    is_json: bool
    span: frozenset[int]
    said: str


NO_CONDITION: Final = Condition(None, False, frozenset(), "")


def read_condition(words: Sequence[Word]) -> Condition:
    start = next(
        (i for i, word in enumerate(words) if word.low in CONDITION_WORDS and not word.quoted),
        None,
    )
    if start is None:
        return NO_CONDITION
    # "if https://… is slower than 500ms": the checked address is the condition's subject.
    first = start + 2 if start + 1 < len(words) and words[start + 1].link else start + 1
    end = _condition_end(words, first)
    last = end
    while last > first and words[last - 1].low in _GLUE_WORDS:
        last -= 1
    span = frozenset(range(start, end))
    chosen = list(words[first:last])
    if not chosen:
        # Never drop a part of a request silently: "if" with nothing after it is a question.
        said = " ".join(word.raw for word in words[start:end])
        raise Unclear(unescape(said), condition_help(unescape(said)))
    return _rewrite(chosen, span)


def _condition_end(words: Sequence[Word], first: int) -> int:
    """Where the condition stops: at a reference, a schedule, an action, or a full stop."""
    for index in range(first, len(words)):
        word = words[index]
        if _ends_condition_before(words, index):
            return index
        if word.stop and word.stop[0] in BOUNDARIES:
            return index + 1
        if word.stop == "," and index + 1 < len(words) and _ends_condition_before(words, index + 1):
            return index + 1
    return len(words)


def _ends_condition_before(words: Sequence[Word], index: int) -> bool:
    word = words[index]
    if word.is_reference or word.low in ACTION_WORDS or _is_recurring_word(word.low):
        return True
    if word.low in CHECK_WORDS and not word.quoted and index > 0 and words[index - 1].stop:
        return True  # "… slower than 500ms, check every 2 minutes"
    following = words[index + 1] if index + 1 < len(words) else None
    return (
        word.low in ("and", "then")
        and following is not None
        and (following.low in ACTION_WORDS | CHECK_WORDS or following.is_reference)
    )


def _is_recurring_word(low: str) -> bool:
    return low in ("every", "cron") or low in SCHEDULE_SYNONYMS


def _rewrite(words: list[Word], span: frozenset[int]) -> Condition:
    said = _normalized(words)
    for rewriter in _REWRITERS:
        rewritten = rewriter(said, words)
        if rewritten is not None:
            text, is_json = rewritten
            return Condition(text, is_json, span, _plain(words))
    raise Unclear(_plain(words), condition_help(_plain(words)))


def _plain(words: list[Word]) -> str:
    return unescape(" ".join(word.raw for word in words)).translate(STRAIGHT_QUOTES)


def _normalized(words: list[Word]) -> str:
    said = " ".join(word.low for word in words)
    for short, long in (("it's", "it is"), ("isn't", "is not"), ("doesn't", "does not")):
        said = said.replace(short, long)
    return " ".join(said.split())


def condition_help(part: str) -> str:
    return (
        f'I couldn\'t understand the condition "{part}": try "if it\'s down", '
        '"if it\'s slow", "if it takes more than 2s", "if the page says maintenance", '
        '"if the certificate expires within 14 days" or "when status != 200"'
    )


_SUBJECT: Final = (
    r"(?:(?:it|its|(?:the )?(?:response|request|page load)|"
    r"the (?:site|page|website|service|server|api|endpoint|url|check|status page))"
    r"\s+)?"
)
_DOWN: Final = re.compile(
    rf"^{_SUBJECT}(?:is |goes |went |gets |seems )?(?:down|offline|unreachable|unavailable|"
    r"failing|fails|broken|erroring|not up|not responding|not reachable)$"
)
_SLOW: Final = re.compile(
    rf"^{_SUBJECT}(?:is |gets |goes |seems |becomes )?(?:down or )?(?:too |very |really )?slow"
    r"(?: or down)?$"
)
_LATENCY: Final = re.compile(
    rf"^{_SUBJECT}(?:takes|is slower than|responds slower than|loads slower than|"
    r"(?:the )?latency is|(?:the )?response time is)\s*(?:more than|longer than|over|above|>)?\s*"
    r"(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|secs?|seconds?)(?: to (?:load|respond|answer))?$"
)
_CERT: Final = re.compile(
    r"^(?:the |its |the site's )?(?:ssl |tls |https )?cert(?:ificate)? "
    r"(?:expires|will expire|runs out) (?:within|in less than|in under|in|before|"
    r"within the next|in the next) (\d+|an?|one) ?(days?|d|weeks?|w|months?)$"
)
_CONTAINS_VERBS: Final = frozenset(
    {"say", "says", "contain", "contains", "mention", "mentions", "show", "shows"}
    | {"include", "includes", "display", "displays"}
)
_CONTAINS_SUBJECT: Final = frozenset(
    {"it", "it's", "its", "the", "page", "site", "website", "body", "response", "text"}
    | {"does", "doesn't", "not", "no", "longer", "still", "homepage"}
)
_NEGATIONS: Final = frozenset({"not", "doesn't", "no"})
_EXPRESSION: Final = re.compile(r"==|!=|<=|>=|<|>|&lt;|&gt;|\bin\b|\bis\b|\bnot\b")
_JSON_NAMES: Final = re.compile(r"\b(?:data|json)\s*[.\[]")


def _when_down(said: str, words: list[Word]) -> tuple[str | None, bool] | None:
    # A check that fails already alerts, so "if it's down" needs no condition.
    return (None, False) if _DOWN.match(said) else None


def _when_slow(said: str, words: list[Word]) -> tuple[str | None, bool] | None:
    return (f"latency &gt; {_SLOW_MS}ms", False) if _SLOW.match(said) else None


def _when_latency(said: str, words: list[Word]) -> tuple[str | None, bool] | None:
    found = _LATENCY.match(said)
    if found is None:
        return None
    number = float(found[1])
    milliseconds = number if found[2].startswith("m") else number * 1000
    if milliseconds <= 0 or not milliseconds.is_integer():
        return None
    return f"latency &gt; {int(milliseconds)}ms", False


def _when_cert(said: str, words: list[Word]) -> tuple[str | None, bool] | None:
    found = _CERT.match(said)
    if found is None:
        return None
    count = int(found[1]) if found[1].isdigit() else 1
    days = count * {"w": 7, "m": 30}.get(found[2][0], 1)
    return f"cert expires &lt; {days}d", False


def _when_contains(said: str, words: list[Word]) -> tuple[str | None, bool] | None:
    verb_at = next((i for i, word in enumerate(words) if word.low in _CONTAINS_VERBS), None)
    if verb_at is None or verb_at + 1 >= len(words):
        return None
    if not all(word.low in _CONTAINS_SUBJECT for word in words[:verb_at]):
        return None
    phrase = _quoted_phrase(words[verb_at + 1 :])
    if any(char in QUOTE_CHARS for char in phrase):
        raise Unclear(phrase, "I can't look for text that has double quotes in it")
    negated = any(word.low in _NEGATIONS for word in words[:verb_at])
    return f'body {"not contains" if negated else "contains"} "{phrase}"', False


def _quoted_phrase(words: list[Word]) -> str:
    """The words to look for, as Slack sent them, without surrounding quotes."""
    if len(words) == 1 and fully_quoted(words[0]):
        return words[0].raw[1:-1]
    return " ".join(word.raw for word in words)


def _when_expression(said: str, words: list[Word]) -> tuple[str | None, bool] | None:
    text = " ".join(word.raw for word in words).translate(STRAIGHT_QUOTES)
    if not _EXPRESSION.search(text):
        return None
    try:
        compile_condition(unescape(text))
    except ConditionError:
        return None
    return text, _JSON_NAMES.search(text) is not None


_STATUS: Final = re.compile(
    rf"^{_SUBJECT}(?:returns?|gives?|responds? with|answers? with|answers?|throws?|"
    r"sends? back|comes back with|gets?|is|shows?)\s+(?:an? |the |http |status |code |error )*"
    r"(\d{3}|[1-5]xx)(?: errors?| status| code| response)?$"
)
_NOT_STATUS: Final = re.compile(
    rf"^{_SUBJECT}(?:does not return|returns anything but|returns anything other than|"
    r"is not|is not returning|not returning|stops returning|no longer returns)\s+"
    r"(?:an? |http |status |code )*(\d{3})$"
)
_FAILS: Final = re.compile(
    rf"^{_SUBJECT}(?:returns?|gives?|throws?|responds? with) (?:an? )?"
    r"(?:errors?|server errors?|bad status|error status|error code)$"
)
_FIELD: Final = re.compile(
    r"^(?:the |its )?(?:json |api |response )?(?:field|value|key|number|property) "
    r"([A-Za-z_][\w.\[\]]*) (?:is |goes |gets |rises |climbs |drops |falls )?"
    r"(above|over|greater than|more than|higher than|exceeds|below|under|less than|"
    r"lower than|equals|equal to|is|at least|at most) (-?\d+(?:\.\d+)?)$",
    re.IGNORECASE,
)
_FIELD_OPERATORS: Final[Mapping[str, str]] = {
    **dict.fromkeys(("above", "over", "greater than", "more than", "higher than"), "&gt;"),
    **dict.fromkeys(("exceeds",), "&gt;"),
    **dict.fromkeys(("below", "under", "less than", "lower than"), "&lt;"),
    **dict.fromkeys(("equals", "equal to", "is"), "=="),
    "at least": "&gt;=",
    "at most": "&lt;=",
}


def _when_status(said: str, words: list[Word]) -> tuple[str | None, bool] | None:
    if _FAILS.match(said):
        return None, False  # a status that is not 2xx already alerts
    found = _STATUS.match(said)
    if found is not None:
        code = found[1]
        if code.endswith("xx"):
            low = int(code[0]) * 100
            return f"status &gt;= {low} and status &lt; {low + 100}", False
        return f"status == {code}", False
    found = _NOT_STATUS.match(said)
    return None if found is None else (f"status != {found[1]}", False)


def _when_field(said: str, words: list[Word]) -> tuple[str | None, bool] | None:
    found = _FIELD.match(" ".join(word.text for word in words))
    if found is None:
        return None
    path = found[1]
    if not path.lower().startswith(("json.", "data.")):
        path = f"json.{path}"
    return f"{path} {_FIELD_OPERATORS[found[2].lower()]} {found[3]}", True


_REWRITERS: Final[tuple[Callable[[str, list[Word]], tuple[str | None, bool] | None], ...]] = (
    _when_down,
    _when_status,
    _when_field,
    _when_slow,
    _when_latency,
    _when_cert,
    _when_contains,
    _when_expression,
)
