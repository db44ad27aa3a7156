"""One sandboxed language for user templates, webhook filters and trigger conditions.

The language is Jinja2 in its immutable sandbox: templates such as
``{{ payload.pull_request.title }} by {{ payload.sender.login }}`` and boolean expressions
such as ``event == "pull_request" and payload.action in ["opened", "closed"]`` or
``json.status.indicator != "none"``.

Anyone who can configure a hook or a trigger writes this code, so besides the sandbox's
attribute rules every render runs under limits:

* time: a deadline (monotonic clock) checked on every call, attribute or item lookup,
  filter, test called by a filter, intercepted operator and string concatenation, every
  64 loop iterations and every 64 items that a lazy filter (``map``, ``select``,
  ``unique``, ...) reads or yields;
* size: values that templates build (``*``, ``+``, ``%``, ``~``, ``**``, str and bytes
  methods and filters) may not exceed `MAX_VALUE_CHARS` characters, `MAX_ITEMS` items or
  `MAX_INT_BITS` bits, padding widths and counts may not exceed `MAX_WIDTH`, and the
  output is cut off while it streams, at ``max_chars``;
* single steps: a builtin that does Python work per item or per character in one call,
  where no deadline check can run, takes a bounded input: `MAX_SORTED_ITEMS` for
  ``sort``, ``dictsort``, ``groupby``, ``min`` and ``max``, `MAX_TEXT_CHARS` for
  ``wordwrap``, ``title``, ``urlize``, ``striptags`` and the like, `MAX_STRIP_CHARS`
  characters to ``strip``; ``encode``/``decode`` accept only the linear C codecs in
  `TEXT_CODECS` (``punycode`` is quadratic, ``idna`` ran for minutes);
* scope: no loader, so no ``include``/``import``/``extends``; no ``self``; the globals
  ``lipsum``, ``cycler`` and ``joiner`` are removed (``range``, ``dict`` and ``namespace``
  stay; ``range`` is the sandbox's capped one); ``history(path, n)`` reads only what a
  report's render context carries (`HISTORY_KEY`).

Sizes are checked *before* the work where a single step could blow up (repetition,
padding, replacing, joining, formatting, encoding), so a template cannot make the process
allocate much more than a few times `MAX_VALUE_CHARS`. Every builtin filter and every
str, bytes, list and dict method reachable here was timed on its worst input up to
`MAX_VALUE_CHARS` (``bench/builtins.py``); the longest remaining single steps are
linear C over a whole 2 MB value (``|tojson``, ``|string``: 50 to 60 ms of CPU).

The deadline is cooperative and this process is the caller's: code that must not hold
the caller (the bot's event loop) runs through `bot.usercode`, whose worker processes
are killed at a hard deadline.

``value matches "pattern"`` (also ``value is matches "pattern"``, and ``not matches``) is
true when the regular expression finds a match anywhere in ``value`` (in any item of a
list). Patterns are RE2 (`google-re2`): linear time whatever the pattern and the text, so
a user's pattern cannot backtrack catastrophically; a pattern written as a literal is
compiled when the expression is, so a bad one is a compile error.

Missing fields are jinja2's default `Undefined`: printed as "" and falsy, but looking an
attribute up on them (``payload.missing.deeper``) is a `RenderError`.
"""

from __future__ import annotations

import codecs
import dataclasses
import functools
import json
import math
import re
import string
import time
from collections.abc import (
    Callable,
    Collection,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
    Set,
    Sized,
    ValuesView,
)
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from itertools import islice
from types import CodeType
from typing import Any, AnyStr, NoReturn, cast
from zoneinfo import ZoneInfo

import re2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, operators, optimizeconst
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.filters import sync_do_join
from jinja2.nodes import EvalContext
from jinja2.parser import Parser
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, pass_context, pass_eval_context
from markupsafe import Markup

from bot import formatting, glance
from bot.ai.summaries import SummaryRecorder, summarise_filter
from bot.slack.blocks import escape_mrkdwn, link

MAX_TEMPLATE_CHARS = 10_000
MAX_EXPRESSION_CHARS = 1_000
DEFAULT_MAX_CHARS = 20_000
DEFAULT_TIME_LIMIT = 0.5
# Above the largest body a hook or check accepts by default (1 MiB), so whole payloads fit.
MAX_VALUE_CHARS = 2_000_000
MAX_ITEMS = 200_000
MAX_REASON_CHARS = 500
MAX_WIDTH = 1_000
MAX_INT_BITS = 10_000
# Builtins whose one call does Python work per item or per character without a deadline
# check take at most this much input; each bound keeps the worst input near 30 ms (and
# under 100 ms on a busy machine). Measured per filter: see tests/test_expressions.py.
MAX_SORTED_ITEMS = 10_000  # sort, dictsort, groupby, min, max: ~3 µs a key per item
MAX_STRIP_CHARS = 100  # str.strip(chars) looks each character up in ``chars``
MAX_TEXT_CHARS: Mapping[str, int] = {
    "wordwrap": 10_000,  # textwrap: ~3 µs a character at width 1
    "urlize": 50_000,  # several regular expressions per word
    "urlencode": 50_000,  # a Python call per item of a dict
    "xmlattr": 50_000,
    "title": 50_000,  # a Python step per word
    "striptags": 100_000,  # a Python step per tag and per entity
    "unescape": 100_000,
    "wordcount": 500_000,
}
# Codecs implemented in C, linear in their input. Others are refused: ``punycode`` is
# quadratic (150 kB took 44 s) and ``idna`` ran for minutes on one string of short labels.
TEXT_CODECS = frozenset(
    {"utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
     "utf-32-be", "ascii", "iso8859-1", "iso8859-15", "cp1252"}
)  # fmt: skip
# How many characters one character can become with an error handler of str.encode.
_ERROR_HANDLER_GROWTH: Mapping[str, int] = {
    "strict": 1,
    "ignore": 1,
    "replace": 1,
    "surrogateescape": 1,
    "surrogatepass": 1,
    "backslashreplace": 10,  # \U0010ffff
    "xmlcharrefreplace": 10,  # &#1114111;
    "namereplace": 100,  # \N{...} with the longest Unicode name
}

_TEMPLATE_FILE = "<template>"
_EXPRESSION_FILE = "<expression>"
_REMOVED_GLOBALS = ("lipsum", "cycler", "joiner")
# pprint's output grows with the square of nesting depth, and nobody needs it in Slack.
_REMOVED_FILTERS = ("pprint",)
_FORBIDDEN_TAGS: Mapping[type[nodes.Node], str] = {
    nodes.Extends: "'extends' is not available: templates cannot load other templates",
    nodes.Include: "'include' is not available: templates cannot load other templates",
    nodes.Import: "'import' is not available: templates cannot load other templates",
    nodes.FromImport: "'import' is not available: templates cannot load other templates",
    nodes.EvalContextModifier: "'autoescape' is not available: output is Slack text, not HTML",
}
_TICK_EVERY = 64  # loop iterations between deadline checks
# --- the ``matches`` test ---------------- -------------------------------------------------------
MAX_PATTERN_CHARS = 1_000
# RE2 compiles a pattern into an automaton within this much memory, else refuses it.
_PATTERN_MAX_MEM = 8 << 20


class ExpressionError(ValueError):
    """A template or expression that cannot be compiled: ``str()`` reads ``line 2: reason``."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason, line)
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        return self.reason if self.line is None else f"line {self.line}: {self.reason}"


class RenderError(ExpressionError):
    """Rendering or evaluating failed: a runtime error, a sandbox refusal or a limit."""


class TimeLimitError(RenderError):
    """Rendering or evaluating went past its deadline."""


def time_limit_reason(time_limit: float) -> str:
    """What a `TimeLimitError` says."""
    return f"took longer than the limit of {time_limit:g} s"


class _LimitExceeded(SecurityError):
    """A template went over one of the time or size limits."""


class _DeadlinePassed(_LimitExceeded):
    """A template went over its time limit."""


@dataclass(frozen=True)
class Template:
    """A compiled user template; render it with `render_template`."""

    source: str
    code: CodeType = field(repr=False, compare=False)


@dataclass(frozen=True)
class Expression:
    """A compiled user expression; evaluate it with `evaluate` or `evaluate_bool`."""

    source: str
    code: CodeType = field(repr=False, compare=False)


# -- size accounting ----------------------------------------------------------------------


def _refuse(why: str) -> NoReturn:
    raise _LimitExceeded(why)


def _too_big(what: str) -> NoReturn:
    _refuse(what)


def _own_size(item: Any, pending: list[Any], limit: int) -> int:
    """Characters ``item`` adds by itself (at least 4), queueing the containers it holds."""
    kind = type(item)
    # Exact types first: this runs for every argument of every filter call.
    if kind is str or kind is bytes:
        return len(item) + 4
    if kind is list or kind is tuple:
        return 4 + _elements_size(item, pending, limit)
    if kind is dict:
        return (
            4
            + _elements_size(item.keys(), pending, limit)
            + _elements_size(item.values(), pending, limit)
        )
    return _other_size(item, pending)


def _elements_size(items: Collection[Any], pending: list[Any], limit: int) -> int:
    """What the elements of a list or dict add, at least 4 each: strings and numbers are
    counted here in one tight loop (a 1 MB payload holds half a million of them), other
    elements are queued for the walk."""
    total = 4 * len(items)
    if total > limit:
        return total
    for item in items:
        kind = type(item)
        if kind is str:
            total += len(item)
        elif kind is int:
            total += item.bit_length() // 3
        elif kind is not float and kind is not bool and item is not None:
            total -= 4  # counted when the walk gets to it
            pending.append(item)
    return total


def _other_size(item: Any, pending: list[Any]) -> int:
    if isinstance(item, str | bytes):
        return len(item) + 4
    if isinstance(item, int):
        return item.bit_length() // 3 + 4
    if isinstance(item, Mapping):
        pending.extend(item.keys())
        pending.extend(item.values())
    elif isinstance(item, list | tuple | Set | ValuesView):
        pending.extend(item)
    elif isinstance(item, Namespace):
        # Its repr shows every attribute; this name is how jinja stores them.
        pending.append(object.__getattribute__(item, "_Namespace__attrs"))
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        pending.extend(getattr(item, f.name) for f in dataclasses.fields(item))
    return 4


def _measure(value: Any, limit: int) -> int | None:
    """About how many characters ``str(value)`` takes, or None once that is over ``limit``.

    Containers are walked, so a list holding the same long string a thousand times
    counts it a thousand times: that is exactly the blow-up to refuse. Every element
    counts at least 4, so the walk itself stops after ``limit / 4`` steps.
    """
    if isinstance(value, str | bytes):
        return len(value) if len(value) <= limit else None
    total = 0
    pending = [value]
    while pending:
        total += _own_size(pending.pop(), pending, limit - total)
        if total > limit:
            return None
    return total


def _text_size(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """About how many characters ``str(value)`` takes; raises once past ``limit``."""
    size = _measure(value, limit)
    if size is None:
        _too_big(f"a value would be longer than {MAX_VALUE_CHARS} characters")
    return size


_SCALARS = frozenset({str, int, float, bool, type(None)})


def _check_arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse containers that would print huge; plain scalars need no walk (the fast path)."""
    if any(type(value) not in _SCALARS for value in (*args, *kwargs.values())):
        _text_size((args, kwargs))


def _check_chars(count: int) -> None:
    if count > MAX_VALUE_CHARS:
        _too_big(f"a value would be longer than {MAX_VALUE_CHARS} characters")


def _check_width(width: Any) -> None:
    """Padding widths, repeat counts and indent strings stay small."""
    size = len(width) if isinstance(width, str) else width
    if isinstance(size, int) and size > MAX_WIDTH:
        _too_big(f"a width or count of {size} is over the limit of {MAX_WIDTH}")


def _check_result(value: Any) -> Any:
    """Refuse a value that came out too big (the last line of defence after the checks)."""
    if isinstance(value, str | bytes):
        _check_chars(len(value))
    elif isinstance(value, list | tuple | dict | set | frozenset) and len(value) > MAX_ITEMS:
        _too_big(f"a collection would have more than {MAX_ITEMS} items")
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        # |int(base=2) makes one from 2 MB of digits; dividing two of those is quadratic.
        _too_big(f"a number would have more than {MAX_INT_BITS} bits")
    return value


def _check_text_input(name: str, value: Any) -> None:
    """Builtins that take Python steps per character take at most `MAX_TEXT_CHARS`."""
    limit = MAX_TEXT_CHARS[name]
    if _measure(value, limit) is None:
        _too_big(f"{name} takes at most {limit} characters")


def _bounded_items(name: str, value: Any) -> Any:
    """The items to sort: a generator is listed (under the deadline, see `guarded_iter`),
    and more than `MAX_SORTED_ITEMS` are refused before any key is computed."""
    items = value if isinstance(value, Sized) else list(islice(value, MAX_SORTED_ITEMS + 1))
    if len(items) > MAX_SORTED_ITEMS:
        _too_big(f"{name} takes at most {MAX_SORTED_ITEMS} items")
    return items


def _check_codec(encoding: Any, errors: Any) -> None:
    """Only C codecs that are linear in their input, and error handlers that cannot make
    the output more than `_ERROR_HANDLER_GROWTH` times longer."""
    if isinstance(encoding, str) and codecs.lookup(encoding).name not in TEXT_CODECS:
        _refuse(f"the {encoding!r} encoding is not available (use utf-8, latin-1 or ascii)")
    if isinstance(errors, str) and errors not in _ERROR_HANDLER_GROWTH:
        _refuse(f"the {errors!r} error handler is not available")


def _check_number(number: str | None) -> None:
    if number == "*":
        _too_big("'*' widths are not supported")
    if number is not None and (len(number) > len(str(MAX_WIDTH)) or int(number) > MAX_WIDTH):
        _too_big(f"a width or precision of {number} is over the limit of {MAX_WIDTH}")


_PRINTF_SPEC = re.compile(r"%%|%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_printf(template: str, arguments: Any) -> None:
    """``template % arguments``: small widths, and every spec may print all the arguments."""
    specs = 0
    for match in _PRINTF_SPEC.finditer(template):
        specs += 1
        _check_number(match.group(1))
        _check_number(match.group(2))
    _check_chars(len(template) + specs * (_text_size(arguments) + MAX_WIDTH))


def _check_format(template: str, arguments: Any) -> None:
    """``template.format(...)``: no nested fields, small widths, bounded total."""
    fields = 0
    for _text, name, spec, _conversion in string.Formatter().parse(template):
        fields += name is not None
        if spec and "{" in spec:
            _too_big("nested replacement fields are not supported")
        for number in re.findall(r"\d+", spec or ""):
            _check_number(number)
    _check_chars(len(template) + fields * (_text_size(arguments) + MAX_WIDTH))


def _check_replace(text: AnyStr, old: AnyStr, new: AnyStr, count: int | None) -> None:
    hits = len(text) + 1 if not old else text.count(old)
    if count is not None and count >= 0:
        hits = min(hits, count)
    _check_chars(len(text) + hits * max(0, len(new) - len(old)))


def _check_join(separator: Sized, items: list[Any]) -> None:
    _check_chars(_text_size(items) + len(separator) * len(items))


# -- binary operators ---------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int)


def _check_add(left: Any, right: Any) -> None:
    if not (_is_int(left) and _is_int(right)):
        _text_size((left, right))


def _check_multiply(left: Any, right: Any) -> None:
    if _is_int(left) and _is_int(right):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            _too_big(f"a number would have more than {MAX_INT_BITS} bits")
        return
    times, sequence = (left, right) if _is_int(left) else (right, left)
    if _is_int(times) and times > 0 and isinstance(sequence, str | bytes):
        _check_chars(len(sequence) * times)
    elif _is_int(times) and times > 0 and isinstance(sequence, list | tuple):
        _text_size(sequence, MAX_VALUE_CHARS // times)


def _check_power(base: Any, exponent: Any) -> None:
    if not (_is_int(base) and _is_int(exponent) and exponent > 0 and abs(base) > 1):
        return
    if exponent > MAX_INT_BITS // abs(base).bit_length():
        _too_big(f"a number would have more than {MAX_INT_BITS} bits")


def _check_modulo(left: Any, right: Any) -> None:
    if isinstance(left, str):
        _check_printf(left, right)
    elif isinstance(left, bytes):
        _check_printf(left.decode("latin-1"), right)


_BINOP_CHECKS: Mapping[str, Callable[[Any, Any], None]] = {
    "+": _check_add,
    "*": _check_multiply,
    "**": _check_power,
    "%": _check_modulo,
}


# -- str and bytes methods called from templates -------------------------------------------

_Text = str | bytes  # bytes come from str.encode


def _padding_args(text: _Text, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    _check_width(args[0] if args else 0)
    return args


def _expandtabs_args(text: _Text, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    size = args[0] if args else kwargs.get("tabsize", 8)
    _check_width(size)
    if _is_int(size):
        tabs = text.count("\t") if isinstance(text, str) else text.count(b"\t")
        _check_chars(len(text) + tabs * size)
    return args


def _replace_args(text: AnyStr, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if len(args) >= 2 and isinstance(args[0], type(text)) and isinstance(args[1], type(text)):
        count = args[2] if len(args) > 2 and _is_int(args[2]) else kwargs.get("count")
        _check_replace(text, args[0], args[1], count)
    return args


def _strip_args(text: _Text, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    # CPython searches ``chars`` once per stripped character: with a million characters
    # to strip and a million in ``chars``, one call ran for minutes.
    if args and isinstance(args[0], str | bytes) and len(args[0]) > MAX_STRIP_CHARS:
        _too_big(f"strip takes at most {MAX_STRIP_CHARS} characters to strip")
    return args


def _codec_args(text: _Text, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """str.encode and bytes.decode: ``(encoding, errors)``, positional or by name."""
    encoding = args[0] if args else kwargs.get("encoding", "utf-8")
    errors = args[1] if len(args) > 1 else kwargs.get("errors", "strict")
    _check_codec(encoding, errors)
    _check_chars(len(text) * _ERROR_HANDLER_GROWTH.get(errors, 1))
    return args


def _text_input_args(
    text: _Text, args: tuple[Any, ...], kwargs: dict[str, Any], *, name: str
) -> tuple[Any, ...]:
    _check_text_input(name, text)
    return args


def _join_args(text: _Text, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if not args:
        return args
    items = list(args[0])  # a generator must be counted before the join, so keep it
    _check_join(text, items)
    return (items, *args[1:])


def _format_args(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    _check_format(text, (args, kwargs))
    return args


def _translate_args(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    _check_chars(len(text) * _text_size(args))
    return args


_TextCheck = Callable[[Any, tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]
_BYTES_METHOD_CHECKS: Mapping[str, _TextCheck] = {
    "center": _padding_args,
    "ljust": _padding_args,
    "rjust": _padding_args,
    "zfill": _padding_args,
    "expandtabs": _expandtabs_args,
    "replace": _replace_args,
    "join": _join_args,
    "strip": _strip_args,
    "lstrip": _strip_args,
    "rstrip": _strip_args,
    "decode": _codec_args,
}
# Markup (from |e and |safe) is a str whose methods are Python wrappers: the same names.
_STR_METHOD_CHECKS: Mapping[str, _TextCheck] = {
    **_BYTES_METHOD_CHECKS,
    "format": _format_args,
    "format_map": _format_args,
    "translate": _translate_args,
    "encode": _codec_args,
    "striptags": functools.partial(_text_input_args, name="striptags"),
    "unescape": functools.partial(_text_input_args, name="unescape"),
}


def _checked_text_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a call of a str or bytes method that could build a huge value or take long;
    may rebuild ``args``."""
    # The sandbox hands out str.format wrapped; the wrapper keeps the bound method.
    method = getattr(obj, "__wrapped__", obj)
    owner = getattr(method, "__self__", None)
    if isinstance(owner, str):
        check = _STR_METHOD_CHECKS.get(method.__name__)
    elif isinstance(owner, bytes):
        check = _BYTES_METHOD_CHECKS.get(method.__name__)
    else:
        return args
    return args if check is None else check(owner, args, kwargs)


# -- filters -------------------------------------------------------------------------------


def _json_filter(value: Any) -> str:
    """Compact JSON with non-ASCII kept; unknown objects (and Undefined) become strings."""
    return json.dumps(value, ensure_ascii=False, default=str)


@pass_eval_context
def _join_filter(
    eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None
) -> str:
    """Jinja's ``join``, counting the items (a generator included) before joining them,
    and checking the deadline while it converts them (half a million numbers: 90 ms)."""
    items = list(value)
    _check_join(str(d), items)
    environment = eval_ctx.environment
    if isinstance(environment, GuardedEnvironment):
        return sync_do_join(eval_ctx, environment.guarded_iter(items), d, attribute)
    return sync_do_join(eval_ctx, items, d, attribute)


def _check_center(value: Any, width: Any = 80) -> None:
    _check_width(width)


def _check_indent(text: Any, width: Any = 4, *_args: Any, **_kwargs: Any) -> None:
    _check_width(width)
    pad = len(width) if isinstance(width, str) else width
    if _is_int(pad):
        text = str(text)
        _check_chars(len(text) + (text.count("\n") + 1) * pad)


def _check_batch(value: Any, linecount: Any, *_args: Any, **_kwargs: Any) -> None:
    _check_width(linecount)


def _check_slice(value: Any, slices: Any, *_args: Any, **_kwargs: Any) -> None:
    _check_width(slices)


def _check_format_filter(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_printf(str(value), (args, kwargs))


def _check_replace_filter(
    text: Any, old: Any, new: Any, count: int | None = None, *_args: Any, **_kwargs: Any
) -> None:
    _check_replace(str(text), str(old), str(new), count)


def _check_wordwrap(
    text: Any, width: Any = 79, _long: Any = True, wrapstring: Any = None, *_a: Any, **_k: Any
) -> None:
    _check_text_input("wordwrap", text)
    wrap = wrapstring or "\n"
    if _is_int(width) and width > 0:
        length = len(str(text))
        _check_chars(length + (length // width + 1) * len(str(wrap)))


def _check_trim(value: Any, chars: Any = None, *_a: Any, **_k: Any) -> None:
    _strip_args(str(value), (chars,) if chars is not None else (), {})


def _text_input_check(name: str) -> Callable[..., None]:
    """The check of a filter whose first argument takes at most `MAX_TEXT_CHARS[name]`."""

    def check(value: Any, *_args: Any, **_kwargs: Any) -> None:
        _check_text_input(name, value)

    return check


class _Raw(str):
    """Text the template author marked with ``|raw``: printed without escaping."""

    __slots__ = ()


def _raw_filter(value: Any) -> _Raw:
    return _Raw("" if value is None else value)


def _link_filter(url: Any, label: Any = "") -> _Raw:
    """``{{ url|link(label) }}``: a Slack link, safe with values from the payload (only
    http(s) URLs link, and the label is escaped)."""
    return _Raw(link("" if url is None else str(url), "" if label is None else str(label)))


_FILTER_CHECKS: Mapping[str, Callable[..., None]] = {
    **{
        name: _text_input_check(name)
        for name in ("urlize", "urlencode", "xmlattr", "title", "striptags", "wordcount")
    },
    "trim": _check_trim,
    "center": _check_center,
    "indent": _check_indent,
    "batch": _check_batch,
    "slice": _check_slice,
    "format": _check_format_filter,
    "replace": _check_replace_filter,
    "wordwrap": _check_wordwrap,
}
# -- report filters (bot.formatting): numbers, money, changes, dates and tables --------------

MAX_TABLE_ROWS = 200
_STRFTIME_WIDTH = re.compile(r"%[-_0^#]*(\d+)")


@pass_context
def _date_filter(context: Context, value: Any, fmt: Any = None, tz: Any = None) -> str:
    """``{{ json.date|date('%a %d %b') }}``, in ``tz`` or the context's ``zone`` (a report
    sets it to its trigger's zone), else UTC."""
    if fmt is not None:
        for width in _STRFTIME_WIDTH.findall(str(fmt)):
            _check_width(int(width))
    zone = _zone_named(tz if tz is not None else context.get("zone"))
    return formatting.date_text(value, None if fmt is None else str(fmt), zone)


def _zone_named(name: Any) -> tzinfo:
    if not isinstance(name, str) or not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        return UTC


def _table_filter(rows: Any, columns: Any = None, max_rows: Any = 20) -> _Raw:
    """``{{ rows|table('name, total') }}``: aligned columns in a code block, within one
    Slack section once escaped, "and N more rows" below when not all fit."""
    if isinstance(max_rows, int) and not isinstance(max_rows, bool):
        max_rows = min(max_rows, MAX_TABLE_ROWS)
    shown = formatting.table(rows, columns, max_rows, measure=lambda text: len(escape_mrkdwn(text)))
    return _Raw(escape_mrkdwn(shown))


MAX_SPARKLINE_WIDTH = 100  # bars; more values are averaged into this many


def _sparkline_filter(values: Any, width: Any = None, low: Any = None, high: Any = None) -> str:
    """``{{ history('json.total', 14)|sparkline }}`` → ``▁▂▃▅▇``: one bar per number,
    from the lowest to the highest (or ``low``/``high``); a missing value is a gap. More
    than `MAX_SPARKLINE_WIDTH` values (or than ``width``) are averaged into that many bars."""
    if width is not None and not (isinstance(width, int) and 1 <= width <= MAX_SPARKLINE_WIDTH):
        raise ValueError(
            f"sparkline width is a whole number from 1 to {MAX_SPARKLINE_WIDTH}, not {width!r}"
        )
    bounds = [formatting.parse_number(bound) for bound in (low, high)]
    for given, parsed in zip((low, high), bounds, strict=True):
        if given is not None and parsed is None:
            raise ValueError(f"sparkline low and high are numbers, not {given!r}")
    return glance.sparkline(
        values,
        width or MAX_SPARKLINE_WIDTH,
        low=None if bounds[0] is None else float(bounds[0]),
        high=None if bounds[1] is None else float(bounds[1]),
    )


# The name under which a report's render context carries its values over the last runs
# (`bot.triggers.reporting.history_context`), for `history`.
HISTORY_KEY = "_history"
MAX_HISTORY = 100  # runs a report remembers per path
HISTORY_EXAMPLE = "{{ history('json.total', 14)|sparkline }}"


@pass_context
def _history(context: Context, path: Any, count: Any = 14) -> list[Any]:
    """``history('json.total', 14)``: the value at ``json.total`` in each of the report's
    last 14 runs, oldest first, this run's last (None where a run had no such value)."""
    series = context.get(HISTORY_KEY)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_HISTORY:
        raise ValueError(
            f"history counts from 1 to {MAX_HISTORY} runs, not {count!r}: {HISTORY_EXAMPLE}"
        )
    if not isinstance(series, Mapping) or not isinstance(path, str) or path not in series:
        raise ValueError(
            "history() works in a report's template, with the path written out in quotes: "
            + HISTORY_EXAMPLE
        )
    return list(series[path])[-count:]


@functools.lru_cache(maxsize=256)
def history_paths(source: str) -> tuple[str, ...]:
    """The paths a template asks the history of (``history('json.total', …)``), in order,
    each once; none for a template that does not parse (rendering it says why)."""
    try:
        tree = make_environment().parse(source)
    except (TemplateSyntaxError, RecursionError):
        return ()
    found: list[str] = []
    for call in tree.find_all(nodes.Call):
        named = isinstance(call.node, nodes.Name) and call.node.name == "history"
        first = call.args[0] if call.args else None
        if not named or not isinstance(first, nodes.Const):
            continue
        if isinstance(first.value, str) and first.value not in found:
            found.append(first.value)
    return tuple(found)


_EXTRA_FILTERS: Mapping[str, Callable[..., Any]] = {
    "raw": _raw_filter,
    "link": _link_filter,
    "json": _json_filter,
    "tojson": _json_filter,  # Slack text is not HTML, so no HTML-safe escaping
    "join": _join_filter,
    # A marker for the bot to fill with an AI summary (see bot.ai.summaries).
    "summarise": summarise_filter,
    "summarize": summarise_filter,
    # Reports from data (bot.formatting)
    "number": formatting.number,
    "money": formatting.money,
    "percent": formatting.percent,
    "change": formatting.change,
    "date": _date_filter,
    "table": _table_filter,
    "sparkline": _sparkline_filter,
}


def _finalize(value: Any) -> Any:
    """What ``{{ … }}`` prints: None as "", nothing that would print huge, and text with
    Slack's control characters escaped.

    Values come from whoever sends the webhook: a pull-request title of ``<!channel>``
    must not ping the channel, nor ``<https://evil|https://github.com>`` pose as a link.
    The template's own text is not touched, and ``{{ value|raw }}`` opts out.
    """
    if value is None:
        return ""
    if isinstance(value, _Raw | Markup):  # |raw, |link; Jinja's |safe and |e are escaped
        return str(value)
    if not isinstance(value, str):
        _text_size(value)
        value = str(value)
    return escape_mrkdwn(value)


# -- ``value matches "pattern"`` (RE2) ---------------------------------------------


class PatternError(ValueError):
    """A regular expression RE2 cannot compile (or one too long or too large)."""


@functools.lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Any:
    """``pattern`` compiled by RE2 within `_PATTERN_MAX_MEM`; `PatternError` saying why not."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN_CHARS} characters")
    options = re2.Options()
    options.max_mem = _PATTERN_MAX_MEM
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        said = error.args[0] if error.args else error
        reason = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        raise PatternError(f"the pattern {pattern!r} is not valid: {reason}") from None


class _MatchesTest:
    """``value is matches pattern``: a search anywhere in the text, or in any item of a
    list; a missing value matches nothing. The deadline is checked between items."""

    def __init__(self, environment: GuardedEnvironment) -> None:
        self._environment = environment

    def __call__(self, value: Any, pattern: Any) -> bool:
        self._environment.tick()
        if not isinstance(pattern, str):
            raise TypeError(f"matches takes a text pattern, not {type(pattern).__name__}")
        regex = compile_pattern(pattern)
        if value is None or isinstance(value, Undefined):
            return False
        items = value if isinstance(value, list | tuple) else [value]
        for item in self._environment.guarded_iter(items):
            if item is not None and regex.search(item if isinstance(item, str) else str(item)):
                return True
        return False


class _Parser(Parser):
    """Jinja's parser, plus ``value matches "pattern"`` and ``value not matches "pattern"``
    (the ``matches`` test written like a comparison, at the same precedence)."""

    def parse_compare(self) -> nodes.Expr:
        expr = super().parse_compare()
        while True:
            lineno = self.stream.current.lineno
            if self.stream.skip_if("name:matches"):
                expr = self._matches(expr, lineno)
            elif self.stream.current.test("name:not") and self.stream.look().test("name:matches"):
                self.stream.skip(2)
                expr = nodes.Not(self._matches(expr, lineno), lineno=lineno)
            else:
                return expr

    def _matches(self, expr: nodes.Expr, lineno: int) -> nodes.Expr:
        return nodes.Test(expr, "matches", [self.parse_math1()], [], None, None, lineno=lineno)


def _check_patterns(tree: nodes.Node) -> None:
    """Compile every literal pattern of a ``matches`` test now: a bad one is a compile error."""
    for test in tree.find_all(nodes.Test):
        if test.name != "matches":
            continue
        if len(test.args) != 1:
            raise ExpressionError("matches takes one pattern", test.lineno)
        pattern = test.args[0]
        if isinstance(pattern, nodes.Const) and isinstance(pattern.value, str):
            try:
                compile_pattern(pattern.value)
            except PatternError as error:
                raise ExpressionError(str(error), test.lineno) from None


def parse_expression_tree(source: str) -> nodes.Expr:
    """The syntax tree of an expression in this language (``matches`` included), for
    tools that read it (the names a condition uses); raises Jinja's syntax errors."""
    return _Parser(make_environment(), source, state="variable").parse_expression()


# -- the environment ----------------------------------------------------------------------


class _GuardedCodeGenerator(CodeGenerator):
    """Jinja's code generator with deadline and size checks where the sandbox has no hook.

    A for-loop over a value the template already holds, a ``~`` concatenation, a
    comparison or a dict literal calls none of the sandbox's hooks, so the generated code
    is changed to call the environment's ``guarded_iter``, ``guarded_concat`` and
    ``comparable`` there.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop_iterables: set[int] = set()  # ids of nodes that are some loop's iterable

    def buffer(self, frame: Frame) -> None:
        # Output captured by {% set %}...{% endset %}, macros, {% filter %} and {% call %}
        # is buffered and joined at once, outside the streaming cap; so count it here.
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.output_buffer()")

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        self._loop_iterables.add(id(node.iter))
        super().visit_For(node, frame)

    def visit(self, node: nodes.Node, *args: Any, **kwargs: Any) -> Any:
        if id(node) not in self._loop_iterables:
            return super().visit(node, *args, **kwargs)
        self.write("environment.guarded_iter(")
        super().visit(node, *args, **kwargs)
        self.write(")")
        return None

    def _output_child_to_const(self, node: nodes.Expr, frame: Frame, finalize: Any) -> str:
        # Jinja computes constant {{ ... }} output while compiling, outside the deadline: a
        # 3 kB template of |urlize over a literal took 15 s to compile, blocking the bot.
        # Only plain template text stays constant; everything else is computed at render.
        if not isinstance(node, nodes.TemplateData):
            raise nodes.Impossible()
        return super()._output_child_to_const(node, frame, finalize)

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.guarded_concat((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")

    def _comparable(self, node: nodes.Expr, frame: Frame) -> None:
        self.write("environment.comparable(")
        self.visit(node, frame)
        self.write(")")

    @optimizeconst
    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        self.write("(")
        self._comparable(node.expr, frame)
        for operand in node.ops:
            self.write(f" {operators[operand.op]} ")
            self._comparable(operand.expr, frame)
        self.write(")")

    def visit_Dict(self, node: nodes.Dict, frame: Frame) -> None:
        self.write("{")
        for item in node.items:
            self._comparable(item.key, frame)  # keys are hashed
            self.write(": ")
            self.visit(item.value, frame)
            self.write(", ")
        self.write("}")


class _OutputBuffer(list[Any]):
    """A list that generated code appends output to, refusing more than the size limit."""

    def __init__(self, environment: GuardedEnvironment) -> None:
        super().__init__()
        self._environment = environment
        self._chars = 0

    def _count(self, item: Any) -> None:
        self._chars += len(item) if isinstance(item, str) else _text_size(item)
        _check_chars(self._chars)

    def append(self, item: Any) -> None:
        self._environment.tick()
        self._count(item)
        super().append(item)

    def extend(self, items: Iterable[Any]) -> None:
        self._environment.tick()
        items = list(items)
        for item in items:
            self._count(item)
        super().extend(items)


# Filters that sort: a key call per item and an n·log n sort, in one step.
# (sparkline, too, reads every item in one call)
_SORTING_FILTERS = frozenset({"sort", "dictsort", "groupby", "min", "max", "sparkline"})
# Filters that loop over their input inside one call: the loop goes through guarded_iter.
_LOOPING_FILTERS = frozenset({"map", "select", "reject", "selectattr", "rejectattr", "unique"})


class _GuardedFilter:
    """A filter run under the deadline, with its arguments and result size-checked.

    Lazy results (map, select, batch, ...) are iterated through `guarded_iter`, so the
    filter that consumes them (``|list``, ``|join``) checks the deadline as it goes.

    A small class rather than a closure with functools.wraps: every render builds a
    fresh environment, so wrapping some fifty filters has to be cheap.
    """

    def __init__(
        self, environment: GuardedEnvironment, name: str, function: Callable[..., Any]
    ) -> None:
        self._environment = environment
        self._name = name
        self._function = function
        self._check = _FILTER_CHECKS.get(name)
        self._sorting = name in _SORTING_FILTERS
        self._looping = name in _LOOPING_FILTERS
        pass_arg = getattr(function, "jinja_pass_arg", None)
        if pass_arg is not None:
            # Jinja reads this to pass the context, eval context or environment first.
            self.jinja_pass_arg = pass_arg
        self._skip = 0 if pass_arg is None else 1

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._environment.tick()
        own = args[self._skip :]
        _check_arguments(own, kwargs)
        if own and (self._sorting or self._looping):
            own = (self._prepared_input(own[0]), *own[1:])
            args = (*args[: self._skip], *own)
        if self._check is not None:
            self._check(*own, **kwargs)
        result = _check_result(self._function(*args, **kwargs))
        if isinstance(result, Iterator):
            return self._environment.guarded_iter(result)
        return result

    def _prepared_input(self, value: Any) -> Any:
        if self._sorting:
            items = _bounded_items(self._name, value)
            if items is not value:  # the items of a generator, which the check could not see
                _text_size(items)
            return items
        # unique over a million equal items yields once: check the deadline as it reads.
        return self._environment.guarded_iter(value) if value else value


# Tests that compare or hash their arguments (``x is eq y``, ``x is in y``).
_COMPARING_TESTS = frozenset(
    {"eq", "equalto", "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt",
     "greaterthan", ">", "ge", ">=", "in"}
)  # fmt: skip


class _ComparingTest:
    """A test whose arguments go through `GuardedEnvironment.comparable` first."""

    def __init__(self, environment: GuardedEnvironment, function: Callable[..., bool]) -> None:
        self._environment = environment
        self._function = function

    def __call__(self, *args: Any) -> bool:
        return self._function(*map(self._environment.comparable, args))


class GuardedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus a deadline and size limits; one per render.

    ``time_limit`` is measured on ``clock`` from the moment the environment is made.
    """

    code_generator_class = _GuardedCodeGenerator
    intercepted_binops = frozenset(_BINOP_CHECKS)

    @staticmethod
    def concat(parts: Iterable[str]) -> str:
        """Joins captured output ({% set %} blocks, macros, calls): it was escaped when it
        was printed into the capture, so it is marked not to be escaped again."""
        return _Raw("".join(parts))

    def __init__(
        self, *, time_limit: float = math.inf, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(
            autoescape=False,
            loader=None,
            undefined=Undefined,
            finalize=_finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            # Jinja's optimizer, too, runs filters on constants while compiling.
            optimized=False,
        )
        self._clock = clock
        self._time_limit = time_limit
        # Where ``|summarise`` records its requests (None: it prints the fallback).
        self.summaries: SummaryRecorder | None = None
        self._deadline = clock() + time_limit
        for name in _REMOVED_GLOBALS:
            self.globals.pop(name, None)
        self.globals["history"] = _history
        merged = {**self.filters, **_EXTRA_FILTERS}
        self.filters = {
            name: self._guarded_filter(name, function)
            for name, function in merged.items()
            if name not in _REMOVED_FILTERS
        }
        # Jinja's own annotation of ``tests`` is narrower than what it accepts.
        tests = cast("dict[str, Callable[..., bool]]", dict(self.tests))
        for name in _COMPARING_TESTS:
            tests[name] = _ComparingTest(self, tests[name])
        tests["matches"] = _MatchesTest(self)
        self.tests = cast("dict[str, Any]", tests)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        # Templates read ``matches`` as expressions do.
        return _Parser(self, source, name, filename).parse()

    def tick(self) -> None:
        """Raise once the deadline has passed."""
        if self._clock() > self._deadline:
            raise _DeadlinePassed(time_limit_reason(self._time_limit))

    def _guarded_filter(self, name: str, function: Callable[..., Any]) -> _GuardedFilter:
        return _GuardedFilter(self, name, function)

    def call_test(
        self,
        name: str,
        value: Any,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        context: Context | None = None,
        eval_ctx: EvalContext | None = None,
    ) -> Any:
        """A test called by a filter (``select("odd")``): once per item, so check the time."""
        self.tick()
        return super().call_test(name, value, args, kwargs, context, eval_ctx)

    def guarded_iter(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """What a for-loop iterates over: the same items, with the deadline checked."""
        for index, item in enumerate(iterable):
            if index % _TICK_EVERY == 0:
                self.tick()
            yield item

    def output_buffer(self) -> list[Any]:
        """Where generated code collects buffered output (see `_GuardedCodeGenerator`)."""
        return _OutputBuffer(self)

    def guarded_concat(self, parts: tuple[Any, ...]) -> str:
        """The ``~`` operator, refusing results over the size limit."""
        self.tick()
        _text_size(parts)
        return "".join(map(str, parts))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.tick()
        # Jinja passes loop and block variables along; they are not arguments.
        own = {k: v for k, v in kwargs.items() if k not in ("_loop_vars", "_block_vars")}
        _check_arguments(args, own)
        args = _checked_text_call(obj, args, own)
        return _check_result(super().call(context, obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.tick()
        return super().getitem(obj, self.comparable(argument))

    def comparable(self, value: Any) -> Any:
        """``value``, about to be compared or hashed: ``==``, ``in`` and ``hash`` walk nested
        lists and tuples with no memory of the parts they saw, so two values built as
        ``[a, a]`` forty levels deep take 2**40 steps to compare (depth 28 took 6 s).
        Such a value would print huge, so the size walk refuses it; plain scalars pass."""
        self.tick()
        if type(value) not in _SCALARS:
            _text_size(value)
        return value

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        self.tick()
        _BINOP_CHECKS[operator](left, right)
        return _check_result(self.binop_table[operator](left, right))

    def unsafe_undefined(self, obj: Any, attribute: str) -> NoReturn:
        # Fail loudly instead of printing "": the author learns why nothing shows.
        raise SecurityError(
            f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
        )


def make_environment(
    *, time_limit: float = math.inf, clock: Callable[[], float] = time.monotonic
) -> GuardedEnvironment:
    """A fresh sandboxed environment whose deadline is ``time_limit`` seconds from now."""
    return GuardedEnvironment(time_limit=time_limit, clock=clock)


# -- compiling ------------------------------------------------------------------------------


@contextmanager
def _syntax_errors() -> Iterator[None]:
    """Turn everything compiling can raise into an ExpressionError with the line."""
    try:
        yield
    except TemplateSyntaxError as exc:
        raise ExpressionError(exc.message or "syntax error", exc.lineno) from None
    except (RecursionError, SyntaxError, MemoryError):
        raise ExpressionError("nested too deeply") from None
    except ExpressionError:
        raise
    except Exception as exc:  # jinja folds constants while compiling: {[]: 1} is a TypeError
        raise ExpressionError(f"{type(exc).__name__}: {exc}") from None


def _refuse_forbidden(tree: nodes.Template) -> None:
    kinds: tuple[type[nodes.Node], ...] = (*_FORBIDDEN_TAGS, nodes.Name)
    for node in tree.find_all(kinds):
        if isinstance(node, nodes.Name):
            if node.name == "self":
                raise ExpressionError("'self' is not available", node.lineno)
            continue
        reason = next(r for kind, r in _FORBIDDEN_TAGS.items() if isinstance(node, kind))
        raise ExpressionError(reason, node.lineno)


@functools.lru_cache(maxsize=256)
def _template_code(source: str) -> CodeType:
    environment = make_environment()
    with _syntax_errors():
        tree = environment.parse(source)
        _refuse_forbidden(tree)
        _check_patterns(tree)
        return environment.compile(tree, filename=_TEMPLATE_FILE)


@functools.lru_cache(maxsize=256)
def _expression_code(source: str) -> CodeType:
    environment = make_environment()
    with _syntax_errors():
        # What Environment.compile_expression(source, undefined_to_none=False) builds,
        # kept as code so that every evaluation binds it to a fresh environment.
        parser = _Parser(environment, source, state="variable")
        expression = parser.parse_expression()
        if not parser.stream.eos:
            line = parser.stream.current.lineno
            raise TemplateSyntaxError("unexpected text after the expression", line)
        expression.set_environment(environment)
        assign = nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)
        tree = nodes.Template([assign], lineno=1)
        _refuse_forbidden(tree)
        _check_patterns(tree)
        return environment.compile(tree, filename=_EXPRESSION_FILE)


def compile_template(source: str) -> Template:
    """Compile a user template; ExpressionError (with the line) if it is not valid."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise ExpressionError(f"the template is longer than {MAX_TEMPLATE_CHARS} characters")
    return Template(source, _template_code(source))


def compile_expression(source: str) -> Expression:
    """Compile a user expression; ExpressionError (with the line) if it is not valid."""
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ExpressionError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    return Expression(source, _expression_code(source))


# -- running --------------------------------------------------------------------------------


def _failure_line(error: BaseException, filename: str) -> int | None:
    """The line of the last traceback frame inside the template (jinja maps the lines)."""
    line = None
    frame = error.__traceback__
    while frame is not None:
        if frame.tb_frame.f_code.co_filename == filename:
            line = frame.tb_lineno
        frame = frame.tb_next
    return line


def _render_error(error: Exception, line: int | None) -> RenderError:
    reason = str(error) or type(error).__name__
    if isinstance(error, TypeError | ValueError | ArithmeticError | LookupError):
        reason = f"{type(error).__name__}: {reason}"
    if len(reason) > MAX_REASON_CHARS:  # Python quotes the value: float() of 2 MB of text
        reason = reason[: MAX_REASON_CHARS - 1] + "…"
    if isinstance(error, _DeadlinePassed):
        return TimeLimitError(reason, line)
    return RenderError(reason, line)


def _collect(
    chunks: Generator[str, None, None], environment: GuardedEnvironment, max_chars: int
) -> str:
    """Join the streamed output, stopping as soon as it is longer than ``max_chars``."""
    parts: list[str] = []
    total = 0
    with closing(chunks):
        for chunk in chunks:
            total += len(chunk)
            if total > max_chars:
                raise _LimitExceeded(f"the output is longer than {max_chars} characters")
            environment.tick()
            parts.append(chunk)
    return "".join(parts)


def render_template(
    template: Template,
    context: Mapping[str, Any],
    *,
    max_chars: int = DEFAULT_MAX_CHARS,
    time_limit: float = DEFAULT_TIME_LIMIT,
    summaries: SummaryRecorder | None = None,
) -> str:
    """Render ``template`` with ``context``; RenderError on any failure or limit.

    With ``summaries``, ``|summarise`` records its requests there and prints markers
    (`bot.ai.summaries`); without, it prints the rule-based fallback.
    """
    environment = make_environment(time_limit=time_limit)
    environment.summaries = summaries
    bound = environment.template_class.from_code(
        environment, template.code, environment.make_globals(None)
    )
    try:
        chunks = cast("Generator[str, None, None]", bound.generate(dict(context)))
        return _collect(chunks, environment, max_chars)
    except Exception as error:  # user code may fail in any way; all of it is a RenderError
        raise _render_error(error, _failure_line(error, _TEMPLATE_FILE)) from error


def evaluate(
    expression: Expression, context: Mapping[str, Any], *, time_limit: float = DEFAULT_TIME_LIMIT
) -> Any:
    """The value of ``expression`` in ``context`` (missing names give `Undefined`)."""
    environment = make_environment(time_limit=time_limit)
    bound = environment.template_class.from_code(
        environment, expression.code, environment.make_globals(None)
    )
    try:
        return TemplateExpression(bound, undefined_to_none=False)(dict(context))
    except Exception as error:  # user code may fail in any way; all of it is a RenderError
        line = _failure_line(error, _EXPRESSION_FILE)
        mapped = None if line is None else bound.get_corresponding_lineno(line)
        raise _render_error(error, mapped) from error


def evaluate_bool(
    expression: Expression, context: Mapping[str, Any], *, time_limit: float = DEFAULT_TIME_LIMIT
) -> bool:
    """The truth of ``expression`` in ``context``; a missing field is false."""
    return bool(evaluate(expression, context, time_limit=time_limit))
