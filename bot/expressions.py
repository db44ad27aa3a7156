"""One sandboxed language for user templates, webhook filters and trigger conditions.

The language is Jinja2 in its immutable sandbox: templates such as
``{{ payload.pull_request.title }} by {{ payload.sender.login }}`` and boolean expressions
such as ``event == "pull_request" and payload.action in ["opened", "closed"]`` or
``json.status.indicator != "none"``.

Anyone who can configure a hook or a trigger writes this code, so besides the sandbox's
attribute rules every render runs under limits:

* time: a deadline (monotonic clock) checked on every call, attribute or item lookup,
  filter, intercepted operator, string concatenation and every 64 loop iterations;
* size: values that templates build (``*``, ``+``, ``%``, ``~``, ``**``, str methods and
  filters) may not exceed `MAX_VALUE_CHARS` characters, `MAX_ITEMS` items or
  `MAX_INT_BITS` bits, padding widths and counts may not exceed `MAX_WIDTH`, and the
  output is cut off while it streams, at ``max_chars``;
* scope: no loader, so no ``include``/``import``/``extends``; no ``self``; the globals
  ``lipsum``, ``cycler`` and ``joiner`` are removed (``range``, ``dict`` and ``namespace``
  stay; ``range`` is the sandbox's capped one).

Sizes are checked *before* the work where a single step could blow up (repetition,
padding, replacing, joining, formatting), so a template cannot make the process allocate
much more than a few times `MAX_VALUE_CHARS`. A single builtin step on a value that is
already large (sorting a long list) can run past the deadline by its own duration.

Missing fields are jinja2's default `Undefined`: printed as "" and falsy, but looking an
attribute up on them (``payload.missing.deeper``) is a `RenderError`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import re
import string
import time
import types
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Set, ValuesView
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from types import CodeType
from typing import Any, NoReturn, cast

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.filters import sync_do_join
from jinja2.nodes import EvalContext
from jinja2.parser import Parser
from jinja2.runtime import Context, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, pass_eval_context
from markupsafe import Markup

from bot.slack.blocks import escape_mrkdwn, link

MAX_TEMPLATE_CHARS = 10_000
MAX_EXPRESSION_CHARS = 1_000
DEFAULT_MAX_CHARS = 20_000
DEFAULT_TIME_LIMIT = 0.5
# Above the largest body a hook or check accepts by default (1 MiB), so whole payloads fit.
MAX_VALUE_CHARS = 2_000_000
MAX_URLIZE_CHARS = 50_000
MAX_ITEMS = 200_000
MAX_WIDTH = 1_000
MAX_INT_BITS = 10_000

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


class _LimitExceeded(SecurityError):
    """A template went over one of the time or size limits."""


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


def _too_big(what: str) -> NoReturn:
    raise _LimitExceeded(what)


def _own_size(item: Any, pending: list[Any]) -> int:
    """Characters ``item`` adds by itself (at least 4), queueing what it contains."""
    kind = type(item)
    # Exact types first: this runs for every argument of every filter call.
    if kind is str or kind is bytes:
        return len(item) + 4
    if kind is list or kind is tuple:
        pending.extend(item)
        return 4
    if kind is dict:
        pending.extend(item.keys())
        pending.extend(item.values())
        return 4
    return _other_size(item, pending)


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


def _text_size(value: Any, limit: int = MAX_VALUE_CHARS) -> int:
    """About how many characters ``str(value)`` takes; raises once past ``limit``.

    Containers are walked, so a list holding the same long string a thousand times
    counts it a thousand times: that is exactly the blow-up to refuse. Every element
    counts at least 4, so the walk itself stops after ``limit / 4`` steps.
    """
    if isinstance(value, str | bytes):
        total = len(value)
        pending = []
    else:
        total = 0
        pending = [value]
    while pending:
        total += _own_size(pending.pop(), pending)
        if total > limit:
            _too_big(f"a value would be longer than {MAX_VALUE_CHARS} characters")
    return total


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
    return value


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


def _check_replace(text: str, old: str, new: str, count: int | None) -> None:
    hits = len(text) + 1 if not old else text.count(old)
    if count is not None and count >= 0:
        hits = min(hits, count)
    _check_chars(len(text) + hits * max(0, len(new) - len(old)))


def _check_join(separator: str, items: list[Any]) -> None:
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


_BINOP_CHECKS: Mapping[str, Callable[[Any, Any], None]] = {
    "+": _check_add,
    "*": _check_multiply,
    "**": _check_power,
    "%": _check_modulo,
}


# -- str methods called from templates ---------------------------------------------------


def _padding_args(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    _check_width(args[0] if args else 0)
    return args


def _expandtabs_args(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    size = args[0] if args else kwargs.get("tabsize", 8)
    _check_width(size)
    if _is_int(size):
        _check_chars(len(text) + text.count("\t") * size)
    return args


def _replace_args(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = args[2] if len(args) > 2 and _is_int(args[2]) else kwargs.get("count")
        _check_replace(text, args[0], args[1], count)
    return args


def _join_args(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
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


_StrCheck = Callable[[str, tuple[Any, ...], dict[str, Any]], tuple[Any, ...]]
_STR_METHOD_CHECKS: Mapping[str, _StrCheck] = {
    "center": _padding_args,
    "ljust": _padding_args,
    "rjust": _padding_args,
    "zfill": _padding_args,
    "expandtabs": _expandtabs_args,
    "replace": _replace_args,
    "join": _join_args,
    "format": _format_args,
    "format_map": _format_args,
    "translate": _translate_args,
}


def _checked_str_call(obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Check a call of a str method that could build a huge string; may rebuild ``args``."""
    # The sandbox hands out str.format wrapped; the wrapper keeps the bound method.
    method = getattr(obj, "__wrapped__", obj)
    if not isinstance(method, types.BuiltinMethodType) or not isinstance(method.__self__, str):
        return args
    check = _STR_METHOD_CHECKS.get(method.__name__)
    return args if check is None else check(method.__self__, args, kwargs)


# -- filters -------------------------------------------------------------------------------


def _json_filter(value: Any) -> str:
    """Compact JSON with non-ASCII kept; unknown objects (and Undefined) become strings."""
    return json.dumps(value, ensure_ascii=False, default=str)


@pass_eval_context
def _join_filter(
    eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: str | int | None = None
) -> str:
    """Jinja's ``join``, counting the items (a generator included) before joining them."""
    items = list(value)
    _check_join(str(d), items)
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
    wrap = wrapstring or "\n"
    if _is_int(width) and width > 0:
        length = len(str(text))
        _check_chars(length + (length // width + 1) * len(str(wrap)))


def _check_urlize(text: Any, *_a: Any, **_k: Any) -> None:
    # urlize runs several regular expressions per word: one call on a 2 MB string took
    # over a second, far past the deadline, which is only checked between steps.
    if len(str(text)) > MAX_URLIZE_CHARS:
        _too_big(f"urlize takes at most {MAX_URLIZE_CHARS} characters")


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
    "urlize": _check_urlize,
    "center": _check_center,
    "indent": _check_indent,
    "batch": _check_batch,
    "slice": _check_slice,
    "format": _check_format_filter,
    "replace": _check_replace_filter,
    "wordwrap": _check_wordwrap,
}
_EXTRA_FILTERS: Mapping[str, Callable[..., Any]] = {
    "raw": _raw_filter,
    "link": _link_filter,
    "json": _json_filter,
    "tojson": _json_filter,  # Slack text is not HTML, so no HTML-safe escaping
    "join": _join_filter,
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


# -- the environment ----------------------------------------------------------------------


class _GuardedCodeGenerator(CodeGenerator):
    """Jinja's code generator with deadline and size checks where the sandbox has no hook.

    A for-loop over a value the template already holds, or a ``~`` concatenation, calls
    none of the sandbox's hooks, so the generated code is changed to call the
    environment's ``guarded_iter`` and ``guarded_concat`` there.
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


class _GuardedFilter:
    """A filter run under the deadline, with its arguments and result size-checked.

    A small class rather than a closure with functools.wraps: every render builds a
    fresh environment, so wrapping some fifty filters has to be cheap.
    """

    def __init__(
        self,
        environment: GuardedEnvironment,
        function: Callable[..., Any],
        check: Callable[..., None] | None,
    ) -> None:
        self._environment = environment
        self._function = function
        self._check = check
        pass_arg = getattr(function, "jinja_pass_arg", None)
        if pass_arg is not None:
            # Jinja reads this to pass the context, eval context or environment first.
            self.jinja_pass_arg = pass_arg
        self._skip = 0 if pass_arg is None else 1

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self._environment.tick()
        own = args[self._skip :]
        _check_arguments(own, kwargs)
        if self._check is not None:
            self._check(*own, **kwargs)
        return _check_result(self._function(*args, **kwargs))


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
        self._deadline = clock() + time_limit
        for name in _REMOVED_GLOBALS:
            self.globals.pop(name, None)
        merged = {**self.filters, **_EXTRA_FILTERS}
        self.filters = {
            name: self._guarded_filter(name, function)
            for name, function in merged.items()
            if name not in _REMOVED_FILTERS
        }

    def tick(self) -> None:
        """Raise once the deadline has passed."""
        if self._clock() > self._deadline:
            raise _LimitExceeded(f"took longer than the limit of {self._time_limit:g} s")

    def _guarded_filter(self, name: str, function: Callable[..., Any]) -> _GuardedFilter:
        return _GuardedFilter(self, function, _FILTER_CHECKS.get(name))

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
        args = _checked_str_call(obj, args, own)
        return _check_result(super().call(context, obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.tick()
        return super().getitem(obj, argument)

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
        return environment.compile(tree, filename=_TEMPLATE_FILE)


@functools.lru_cache(maxsize=256)
def _expression_code(source: str) -> CodeType:
    environment = make_environment()
    with _syntax_errors():
        # What Environment.compile_expression(source, undefined_to_none=False) builds,
        # kept as code so that every evaluation binds it to a fresh environment.
        parser = Parser(environment, source, state="variable")
        expression = parser.parse_expression()
        if not parser.stream.eos:
            line = parser.stream.current.lineno
            raise TemplateSyntaxError("unexpected text after the expression", line)
        expression.set_environment(environment)
        assign = nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)
        tree = nodes.Template([assign], lineno=1)
        _refuse_forbidden(tree)
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
) -> str:
    """Render ``template`` with ``context``; RenderError on any failure or limit."""
    environment = make_environment(time_limit=time_limit)
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
