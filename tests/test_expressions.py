"""The sandboxed template and expression language, over real payloads and real attacks."""

from __future__ import annotations

import json
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2.exceptions import SecurityError

from bot import expressions
from bot.expressions import (
    MAX_EXPRESSION_CHARS,
    MAX_TEMPLATE_CHARS,
    ExpressionError,
    RenderError,
    compile_expression,
    compile_template,
    evaluate,
    evaluate_bool,
    make_environment,
    render_template,
)

FIXTURES = Path(__file__).parent / "fixtures"


@cache
def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def fixture(name: str) -> Any:
    """A fresh copy, so a test may change it."""
    return json.loads(json.dumps(_load(name)))


def github(name: str, event: str) -> dict[str, Any]:
    return {"event": event, "payload": fixture(f"github/{name}"), "sender": "github"}


def render(source: str, context: dict[str, Any] | None = None, **limits: Any) -> str:
    return render_template(compile_template(source), context or {}, **limits)


def value(source: str, context: dict[str, Any] | None = None) -> Any:
    return evaluate(compile_expression(source), context or {})


# -- real payloads ------------------------------------------------------------------------

PR_FILTER = 'event == "pull_request" and payload.action in ["opened", "closed"]'


@pytest.mark.parametrize(
    ("name", "event", "expected"),
    [
        ("pull_request.opened.json", "pull_request", True),
        ("pull_request.closed.json", "pull_request", True),
        ("pull_request.closed.merged.json", "pull_request", True),
        ("issues.opened.json", "issues", False),
        ("push.json", "push", False),
        ("workflow_run.completed.json", "workflow_run", False),
    ],
)
def test_webhook_filter_over_github_fixtures(name: str, event: str, expected: bool) -> None:
    assert evaluate_bool(compile_expression(PR_FILTER), github(name, event)) is expected


def test_template_renders_the_fixture_values() -> None:
    context = github("pull_request.opened.json", "pull_request")
    text = render("{{ payload.pull_request.title }} by {{ payload.sender.login }}", context)
    assert text == "Update the README with new information. by Codertocat"


def test_merged_flag_distinguishes_the_two_closed_fixtures() -> None:
    expression = compile_expression("payload.pull_request.merged")
    merged = github("pull_request.closed.merged.json", "pull_request")
    closed = github("pull_request.closed.json", "pull_request")
    assert evaluate_bool(expression, merged) is True
    assert evaluate_bool(expression, closed) is False


def test_statuspage_condition() -> None:
    condition = compile_expression('json.status.indicator != "none"')
    status = fixture("json/statuspage.status.json")
    assert evaluate_bool(condition, {"json": status}) is False
    status["status"]["indicator"] = "major"
    assert evaluate_bool(condition, {"json": status}) is True


def test_loop_over_alertmanager_alerts_with_trimmed_blocks() -> None:
    source = (
        "{{ payload.status|upper }}: {{ payload.alerts|length }} alerts\n"
        "{% for alert in payload.alerts %}\n"
        "- {{ alert.labels.alertname }} on {{ alert.labels.host }}"
        "{{ ' (' ~ alert.labels.severity ~ ')' if alert.labels.severity }}\n"
        "{% endfor %}"
    )
    text = render(source, {"payload": fixture("alertmanager/firing.multiple.json")})
    assert text == (
        "FIRING: 2 alerts\n"
        "- High CPU Temperature on andromeda (critical)\n"
        "- High CPU Temperature on andromeda (critical)\n"
    )


def test_missing_fields_are_empty_and_falsy() -> None:
    context = github("pull_request.opened.json", "pull_request")
    assert render("[{{ payload.no_such_field }}]", context) == "[]"
    assert evaluate_bool(compile_expression("payload.no_such_field"), context) is False
    assert evaluate_bool(compile_expression("not payload.no_such_field"), context) is True
    assert render("{{ payload.no_such_field|default('n/a') }}", context) == "n/a"
    assert evaluate_bool(compile_expression("unknown_name"), context) is False


def test_a_field_of_a_missing_field_is_an_error() -> None:
    # jinja2's default Undefined: one missing level is empty, looking inside it fails.
    context = github("pull_request.opened.json", "pull_request")
    with pytest.raises(RenderError, match="has no attribute 'no_such_field'"):
        evaluate(compile_expression("payload.no_such_field.deeper"), context)


def test_none_prints_as_empty() -> None:
    context = github("pull_request.opened.json", "pull_request")
    assert context["payload"]["pull_request"]["merged_at"] is None
    assert render("<{{ payload.pull_request.merged_at }}>", context) == "<>"


def test_json_filter_keeps_text_readable() -> None:
    context = github("pull_request.opened.json", "pull_request")
    assert render("{{ payload.sender.login|json }}", context) == '"Codertocat"'
    labels = "{{ payload.pull_request.labels|map(attribute='name')|list|json }}"
    assert render(labels, context) == '["bug"]'
    # Printed values are escaped for Slack's mrkdwn, which shows &lt;b&gt; as <b>.
    assert render('{{ {"a": "é <b>"}|tojson }}', context) == '{"a": "é &lt;b&gt;"}'
    assert render("{{ missing|json }}", context) == '""'


def test_evaluate_returns_values() -> None:
    context = github("push.json", "push")
    assert value("payload.commits|length", context) == len(context["payload"]["commits"])
    assert value("payload.ref.split('/')[-1]", context) == context["payload"]["ref"].split("/")[-1]
    assert value("[1, 2, 3]|select('odd')|list") == [1, 3]


# -- ordinary template features keep working under the guards ---------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('{{ "%.2f"|format(3.14159) }}', "3.14"),
        ('{{ "%5s|%-3d|" % ("ab", 7) }}', "   ab|7  |"),
        ('{{ "{:>5}|{}".format("a", 2) }}', "    a|2"),
        ('{{ "{x}-{x}".format_map({"x": 1}) }}', "1-1"),
        ('{{ "x".center(5) }}|{{ "7".zfill(3) }}|{{ "a".ljust(3, ".") }}', "  x  |007|a.."),
        ('{{ "ab"|replace("a", "cc") }}|{{ "ab".replace("b", "dd") }}', "ccb|add"),
        ('{{ [1, 2]|join(", ") }}|{{ "-".join(["a", "b"]) }}', "1, 2|a-b"),
        ("{{ range(3)|map('string')|join }}", "012"),
        ('{{ "a" ~ 1 ~ none }}', "a1None"),
        (
            '{{ "ab" * 3 }}|{{ [0] * 2 }}|{{ 2 ** 10 }}|{{ 7 % 3 }}|{{ 1 + 2 }}',
            "ababab|[0, 0]|1024|1|3",
        ),
        ("{{ 'line one\nline two'|indent(2) }}", "line one\n  line two"),
        ("{{ 'a b c d'|wordwrap(3) }}", "a b\nc d"),
        ("{{ [1, 2, 3, 4, 5]|batch(2)|list }}", "[[1, 2], [3, 4], [5]]"),
        ("{{ 'long words here'|truncate(9, end='…', leeway=0) }}", "long…"),
        (
            "{% set ns = namespace(n=0) %}{% for x in [3, 4] %}{% set ns.n = ns.n + x %}"
            "{% endfor %}{{ ns.n }}",
            "7",
        ),
        ("{% macro b(t) %}*{{ t }}*{% endmacro %}{{ b('hi') }}", "*hi*"),
        ("{% macro m() %}[{{ caller() }}]{% endmacro %}{% call m() %}in{% endcall %}", "[in]"),
        ("{% set x %}v={{ 1 + 1 }}{% endset %}{{ x }}", "v=2"),
        ("{% filter upper %}quiet{% endfilter %}", "QUIET"),
        ("{% for x in [1, 2, 3] %}{{ x }}{{ ',' if not loop.last }}{% endfor %}", "1,2,3"),
        ("{% for x in [] %}{% else %}none{% endfor %}", "none"),
        ("{% for x in range(10) if x is odd %}{{ x }}{% endfor %}", "13579"),
        (
            '{% for n in [{"c": [{"c": []}]}] recursive %}({{ loop(n.c) }}){% endfor %}',
            "(())",
        ),
        ("{{ dict(a=1)|dictsort }}", "[('a', 1)]"),
        ("{{ 10 ** 100 > 10 ** 99 }}", "True"),
    ],
)
def test_ordinary_templates(source: str, expected: str) -> None:
    assert render(source) == expected


# -- compile errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        ("hello\n{{ } }}", 2, "unexpected '}'"),
        ("{% if %}x{% endif %}", 1, "Expected an expression, got 'end of statement block'"),
        ("one\ntwo\nthree {% for x in %}{% endfor %}", 3, "Expected an expression"),
        ("a\n{{ x|no_such_filter }}", 2, "No filter named 'no_such_filter'."),
        ("{% for x in y %}\nnever closed", 2, "Unexpected end of template"),
        ("a\nb\n{% include '/etc/passwd' %}", 3, "'include' is not available"),
        ("{% extends 'base.html' %}", 1, "'extends' is not available"),
        ("{% import 'macros' as m %}", 1, "'import' is not available"),
        ("\n{% from 'macros' import m %}", 2, "'import' is not available"),
        ("{% autoescape true %}<b>{% endautoescape %}", 1, "'autoescape' is not available"),
        ("x\n{{ self }}", 2, "'self' is not available"),
    ],
)
def test_template_compile_errors_name_the_line(source: str, line: int, reason: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template(source)
    assert caught.value.line == line
    assert caught.value.reason.startswith(reason)
    assert str(caught.value).startswith(f"line {line}: {reason}")
    assert not isinstance(caught.value, RenderError)


def test_error_text_format() -> None:
    assert str(ExpressionError("unexpected '}'", 2)) == "line 2: unexpected '}'"
    assert str(ExpressionError("too long")) == "too long"
    assert issubclass(RenderError, ExpressionError)
    assert issubclass(ExpressionError, ValueError)


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("1 +", "unexpected 'end of template'"),
        ("", "unexpected 'end of template'"),
        ("status 200", "unexpected text after the expression"),
        ("a ==\n== b", "unexpected '=='"),
        ("x|no_such_filter", "No filter named 'no_such_filter'."),
        ("self", "'self' is not available"),
    ],
)
def test_expression_compile_errors(source: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(source)
    assert caught.value.reason == reason


def test_multiline_expression_error_line() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_expression("a ==\n== b")
    assert caught.value.line == 2


def test_length_limits() -> None:
    assert compile_template("x" * MAX_TEMPLATE_CHARS).source == "x" * MAX_TEMPLATE_CHARS
    with pytest.raises(ExpressionError, match="longer than 10000 characters") as caught:
        compile_template("x" * (MAX_TEMPLATE_CHARS + 1))
    assert caught.value.line is None
    assert compile_expression("1" * MAX_EXPRESSION_CHARS).source == "1" * MAX_EXPRESSION_CHARS
    with pytest.raises(ExpressionError, match="longer than 1000 characters"):
        compile_expression("1" * (MAX_EXPRESSION_CHARS + 1))


def test_deep_nesting_is_a_compile_error() -> None:
    with pytest.raises(ExpressionError, match="nested too deeply"):
        compile_template("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}")


def test_compiling_the_same_source_reuses_the_code() -> None:
    first = compile_template("{{ payload.x }} cached")
    second = compile_template("{{ payload.x }} cached")
    assert first == second and first.code is second.code
    assert compile_expression("a > 1").code is compile_expression("a > 1").code


# -- runtime errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "line", "reason"),
    [
        ("one\ntwo\n{{ 1 / 0 }}", 3, "ZeroDivisionError: division by zero"),
        ("a\n{% for x in 5 %}{% endfor %}", 2, "TypeError: 'int' object is not iterable"),
        ("a\nb\n{{ missing.attr }}", 3, "'missing' is undefined"),
        ("{{ range(10 ** 9) }}", 1, "OverflowError: Range too big."),
    ],
)
def test_render_errors_name_the_line(source: str, line: int, reason: str) -> None:
    with pytest.raises(RenderError) as caught:
        render(source)
    assert caught.value.line == line
    assert caught.value.reason.startswith(reason)


def test_condition_over_a_missing_number_is_a_render_error() -> None:
    with pytest.raises(RenderError, match="has no attribute 'queue'"):
        evaluate_bool(compile_expression("data.queue.depth > 100"), {"data": {}})
    assert evaluate_bool(
        compile_expression("data.queue.depth > 100"), {"data": {"queue": {"depth": 101}}}
    )


# -- sandbox escapes ------------------------------------------------------------------------------

GLOBALS_KEPT = {"range", "dict", "namespace", "history"}  # history: a report's own values


def test_only_harmless_globals_remain() -> None:
    assert set(make_environment().globals) == GLOBALS_KEPT
    assert render("[{{ lipsum }}{{ cycler }}{{ joiner }}]") == "[]"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "access to attribute '__class__'"),
        ("{{ payload.__class__ }}", "access to attribute '__class__' of 'dict'"),
        ("{{ cycler.__init__.__globals__ }}", "access to attribute '__init__'"),
        ("{{ lipsum.__globals__ }}", "'lipsum' is undefined"),
        ('{{ "{0.__class__}".format(1) }}', "access to attribute '__class__' of 'int'"),
        ('{{ "{x.__class__}".format_map({"x": 1}) }}', "access to attribute '__class__'"),
        ("{{ payload|attr('__class__') }}", "access to attribute '__class__'"),
        ("{{ payload['__class__'] }}", "access to attribute '__class__'"),
        ("{{ [payload]|map(attribute='__class__')|list }}", "access to attribute '__class__'"),
        ("{{ namespace.__init__ }}", "access to attribute '__init__'"),
        ("{{ range.__globals__ }}", "access to attribute '__globals__'"),
        ("{{ payload.clear() }}", "access to attribute 'clear' of 'dict'"),
        ("{{ [1].append(2) }}", "access to attribute 'append' of 'list'"),
    ],
)
def test_sandbox_escapes_are_refused(source: str, reason: str) -> None:
    context = github("ping.json", "ping")
    with pytest.raises(RenderError) as caught:
        render(source, context)
    assert reason in caught.value.reason
    assert context["payload"] == _load("github/ping.json")


def test_config_is_not_there() -> None:
    # The classic Flask escape goes through `config`; here it is simply an undefined name.
    assert render("[{{ config }}]") == "[]"


def test_self_is_refused() -> None:
    with pytest.raises(ExpressionError, match="'self' is not available"):
        compile_template("{{ self }}")


def test_include_is_refused() -> None:
    with pytest.raises(ExpressionError, match="'include' is not available"):
        compile_template('{% include "/etc/passwd" %}')


def test_nested_ranges_are_stopped_by_the_time_limit() -> None:
    template = compile_template(
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    )
    started = time.monotonic()
    with pytest.raises(RenderError, match=r"took longer than the limit of 0\.5 s"):
        render_template(template, {})
    assert time.monotonic() - started < 3.0  # stopped at the limit, not run to the end


def test_loops_over_a_held_value_are_stopped_too() -> None:
    # No call, attribute or filter inside: only the loop guard can see these iterations.
    source = '{% set a = "x" * 1000000 %}{% for x in a %}{% for y in a %}{% endfor %}{% endfor %}'
    started = time.monotonic()
    with pytest.raises(RenderError, match="took longer"):
        render(source, time_limit=0.1)
    assert time.monotonic() - started < 2.5  # refused, not run: unrefused takes 5 s or more


def test_time_limit_is_a_parameter() -> None:
    source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(RenderError, match=r"limit of 0\.05 s"):
        render(source, time_limit=0.05)
    assert time.monotonic() - started < 2.5  # refused, not run: unrefused takes 5 s or more
    with pytest.raises(RenderError, match=r"limit of 0\.05 s"):
        evaluate(compile_expression("range(100000)|map('string')|join|length"), {}, time_limit=0.05)


def test_the_deadline_is_checked_on_attribute_lookups() -> None:
    ticks = iter([0.0, 5.0, 11.0])
    environment = make_environment(time_limit=10, clock=lambda: next(ticks))
    template = environment.from_string("{{ a.b }}{{ a.b }}")
    with pytest.raises(SecurityError, match="took longer than the limit of 10 s"):
        template.render(a={"b": 1})


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ('{{ "x" * 100000000 }}', "longer than 2000000 characters"),
        ("{{ [0] * 1000000000 }}", "longer than 2000000 characters"),
        ("{{ 9 ** (9 ** 9) }}", "more than 10000 bits"),
        ("{{ 10 ** (10 ** 9) }}", "more than 10000 bits"),
        ("{% set n = 10 ** 2000 %}{{ n * n * n * n * n * n }}", "more than 10000 bits"),
        ('{% set a = "x" * 1000000 %}{% set a = a ~ a ~ a %}', "longer than 2000000"),
        ('{% set a = "x" * 1000000 %}{{ a + a + a }}', "longer than 2000000"),
        ('{% set a = "x" * 1000000 %}{{ [a, a, a] }}', "longer than 2000000"),
        ('{% set a = "x" * 100000 %}{{ [a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a, a]|join }}',
         "longer than 2000000"),
        ('{% set a = "x" * 100000 %}{{ "".join([a] * 19 + [a, a]) }}', "longer than 2000000"),
        ('{% set a = ["x" * 100000] %}{{ a * 30 }}', "longer than 2000000"),
        ('{% set a = "x" * 1000000 %}{{ a.replace("x", "yyy") }}', "longer than 2000000"),
        ('{% set a = "x" * 1000000 %}{{ a|replace("x", "yyy") }}', "longer than 2000000"),
        ('{% set a = "xxxx" * 250000 %}{{ a|replace("", "-") }}', "longer than 2000000"),
        ('{{ "x"|center(1000000000) }}', "width or count of 1000000000"),
        ('{{ "x".ljust(999999999) }}', "width or count of 999999999"),
        ('{{ "x".zfill(999999999) }}', "width or count of 999999999"),
        ('{{ "a\tb".expandtabs(100000) }}', "width or count of 100000"),
        ('{{ ("\t" * 1000000).expandtabs(800) }}', "longer than 2000000"),
        ('{{ "%0999999999d" % 1 }}', "width or precision of 999999999"),
        ('{{ "%*d" % (999999999, 1) }}', "'*' widths are not supported"),
        ('{{ "%0999999999d"|format(1) }}', "width or precision of 999999999"),
        ('{{ "{:>999999999}".format(1) }}', "width or precision of 999999999"),
        ('{{ "{:{}}".format(1, 999999999) }}', "nested replacement fields"),
        ('{% set a = "x" * 1000000 %}{{ "{0}{0}{0}".format(a) }}', "longer than 2000000"),
        ('{% set a = "x" * 1000000 %}{{ ("%(a)s" * 3) % {"a": a} }}', "longer than 2000000"),
        ('{{ ("x\n" * 900000)|indent(100) }}', "longer than 2000000"),
        ('{{ "x"|indent(999999999) }}', "width or count of 999999999"),
        ('{{ ("ab" * 5000)|wordwrap(1, wrapstring="-" * 400) }}', "longer than 2000000"),
        ("{{ range(10)|batch(999999999, 'x')|list }}", "width or count of 999999999"),
        ("{{ range(10)|list|slice(999999999)|list }}", "width or count of 999999999"),
        ("{{ ('x' * 1000000)|list }}", "more than 200000 items"),
        ('{{ payload|tojson(indent=999999) }}', "TypeError"),
        (
            '{% set a = "x" * 1000000 %}{% set x %}{% for i in range(100000) %}{{ a }}'
            "{% endfor %}{% endset %}",
            "longer than 2000000",
        ),
        (
            '{% set a = "x" * 1000000 %}{% macro m() %}{% for i in range(100) %}{{ a }}'
            "{% endfor %}{% endmacro %}{{ m() }}",
            "longer than 2000000",
        ),
        (
            '{% set ns = namespace(s="x") %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}'
            "{% endfor %}",
            "longer than 2000000",
        ),
        ('{% set a = "x" * 1000000 %}{% set ns = namespace(l=[a, a, a]) %}', "longer than 2000000"),
        ('{% set a = "x" * 1000000 %}{% set ns = namespace() %}{% set ns.l = [a, a, a] %}{{ ns }}',
         "longer than 2000000"),
        ("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "maximum recursion depth"),
    ],
)  # fmt: skip
def test_blow_ups_are_refused(source: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError) as caught:
        render(source, {"payload": {"a": 1}})
    assert reason in caught.value.reason
    assert time.monotonic() - started < 2.5  # refused, not run: unrefused takes 5 s or more


def test_left_associative_power_is_small() -> None:
    # Jinja reads 9 ** 9 ** 9 as (9 ** 9) ** 9, a 77-digit number: fast and harmless.
    assert render("{{ 9 ** 9 ** 9 }}") == str((9**9) ** 9)


def test_a_megabyte_of_output_is_cut_at_max_chars() -> None:
    source = "{% for i in range(100000) %}" + "x" * 10 + "{% endfor %}"
    with pytest.raises(RenderError, match="output is longer than 20000 characters") as caught:
        render(source)
    assert caught.value.line is None
    with pytest.raises(RenderError, match="longer than 50 characters"):
        render(source, max_chars=50)
    assert render("12345", max_chars=5) == "12345"
    with pytest.raises(RenderError, match="longer than 4 characters"):
        render("12345", max_chars=4)


def test_a_huge_single_value_is_refused_before_printing() -> None:
    with pytest.raises(RenderError, match="longer than 2000000"):
        render('{% set a = "x" * 1000000 %}{{ [a, a] }}', max_chars=10**9)


# -- robustness ---------------------------------------------------------------------------------

TOKENS = [
    "{{", "}}", "{%", "%}", "{#", "#}", " ", "\n", "for", "x", "in", "endfor", "if", "endif",
    "set", "=", "range(", "3", ")", "(", "[", "]", ",", "'a'", '"b"', "9", "*", "**", "~", "+",
    "%", "|", "join", "upper", "list", "center", ".", "__class__", "payload", "loop", "macro",
    "endmacro", "m", "call", "namespace", "-", "is", "defined", "not", "and", "or", ":", "é",
]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
def test_any_template_compiles_or_fails_cleanly(source: str) -> None:
    try:
        template = compile_template(source)
    except ExpressionError as error:
        assert error.reason
        return
    try:
        assert isinstance(render_template(template, {"payload": {"a": [1, 2]}}), str)
    except RenderError as error:
        assert error.reason


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_as_an_expression_compiles_or_fails_cleanly(source: str) -> None:
    try:
        expression = compile_expression(source)
    except ExpressionError:
        return
    try:
        evaluate_bool(expression, {"x": 1})
    except RenderError as error:
        assert error.reason


def test_printed_values_cannot_ping_or_forge_links() -> None:
    hostile = {"title": "<!channel> see <https://evil.example/login|https://github.com> & co"}
    printed = render("PR: {{ payload.title }}", {"payload": hostile})
    assert printed == (
        "PR: &lt;!channel&gt; see &lt;https://evil.example/login|https://github.com&gt; &amp; co"
    )
    # The author's own text is the author's choice, and |raw opts a value out.
    assert render("<!here> {{ '<b>' }}") == "<!here> &lt;b&gt;"
    assert render("{{ '<#C123>'|raw }}") == "<#C123>"


def test_constant_output_is_computed_at_render_time_under_the_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Jinja folds constant output while compiling, where no deadline applies: a template
    # of nested |urlize over a literal froze the bot for 15 s when it was set.
    calls: list[str] = []
    monkeypatch.setitem(expressions._EXTRA_FILTERS, "spy", lambda v: calls.append(v) or v)
    template = compile_template("{{ 'folded?'|spy }}")
    assert calls == []  # nothing ran while compiling
    assert render_template(template, {}) == "folded?" and calls == ["folded?"]

    source = "{{ '" + "x" * 1400 + "'|replace('x', '" + "a.b " * 350 + "')" + "|urlize" * 12 + " }}"
    with pytest.raises(ExpressionError, match="urlize takes at most"):
        render_template(compile_template(source), {})


@pytest.mark.parametrize(
    "source",
    [
        "{% set x %}{{ v }}{% endset %}{{ x }}",
        "{% macro m(a) %}{{ a }}{% endmacro %}{{ m(v) }}",
        "{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}{{ v }}{% endcall %}",
    ],
)
def test_captured_output_is_escaped_once(source: str) -> None:
    assert render(source, {"v": "a&<b>"}) == "a&amp;&lt;b&gt;"


@pytest.mark.parametrize(
    ("source", "context", "shown"),
    [
        (
            "{{ u|link(t) }}",
            {"u": "https://x.example/a?b=1&c=2", "t": "<!channel> fix"},
            "<https://x.example/a?b=1&amp;c=2|&lt;!channel&gt; fix>",
        ),
        ("{{ u|link(t) }}", {"u": "javascript:alert(1)", "t": "x"}, "x"),  # only http(s) links
        ("{{ u|link }}", {"u": "https://x.example/"}, "<https://x.example/|https://x.example/>"),
    ],
)
def test_link_builds_slack_links_from_payload_values_safely(
    source: str, context: dict[str, Any], shown: str
) -> None:
    assert render(source, context) == shown


def test_jinjas_own_escaping_filters_are_not_escaped_again() -> None:
    assert render("{{ v|e }}", {"v": "a&<b>"}) == "a&amp;&lt;b&gt;"
    assert render("{{ v|safe }}", {"v": "<#C123>"}) == "<#C123>"  # the author's choice, as |raw


# -- builtins that take long in one step -------------------------------------------------------
# Each row is the worst input found for a builtin (bench/builtins.py times them all): the
# call is refused before it runs, so the refusal is immediate however busy the machine.

HOSTILE_BUILTINS = [
    # The reported freeze: textwrap takes ~2 s on 1.3 MB at width 2.
    ("('a' * 1300000)|wordwrap(2)|length > 0", "wordwrap takes at most 10000 characters"),
    # punycode is quadratic (150 kB: 44 s); idna ran for minutes on many short labels.
    ("('ü' * 120000).encode('punycode')", "the 'punycode' encoding is not available"),
    ("('ü.' * 100000).encode('idna')", "the 'idna' encoding is not available"),
    ("('ü' * 10).encode('utf-8').decode('punycode')", "the 'punycode' encoding is not available"),
    ("'x'.encode(encoding='utf_7')", "the 'utf_7' encoding is not available"),
    ("('ü' * 300000).encode('ascii', 'namereplace')", "longer than 2000000 characters"),
    ("'x'.encode('ascii', errors='custom')", "the 'custom' error handler is not available"),
    # strip(chars) searches chars once per stripped character: minutes for 1 MB each.
    ("('a' * 1000000).strip('b' * 999999 + 'a')", "strip takes at most 100 characters"),
    ("('a' * 1000000).lstrip('b' * 101)", "strip takes at most 100 characters"),
    ("('a' * 1000000)|trim('b' * 999999 + 'a')", "strip takes at most 100 characters"),
    ("('a' * 1000000).encode().rstrip(('b' * 101).encode())", "strip takes at most 100 characters"),
    # A key call per item, then an n·log n sort, in one call: 2 s for 2 MB of characters.
    ("('ab' * 1000000)|sort|length", "sort takes at most 10000 items"),
    ("range(10001)|map('string')|sort|length", "sort takes at most 10000 items"),
    ("range(10001)|list|max", "max takes at most 10000 items"),
    ("('ab' * 5001)|min", "min takes at most 10000 items"),
    ("dict.fromkeys(range(10001)|map('string'))|dictsort|length", "dictsort takes at most"),
    ("range(10001)|map('string')|groupby('0')|length", "groupby takes at most 10000 items"),
    # A Python step per word, tag, entity or item inside one call.
    ("('a ' * 100000)|title", "title takes at most 50000 characters"),
    ("('<>' * 50001)|striptags", "striptags takes at most 100000 characters"),
    ("(('&#1;' * 25001)|safe).unescape()", "unescape takes at most 100000 characters"),
    ("(('<>' * 50001)|e).striptags()", "striptags takes at most 100000 characters"),
    ("('ü' * 50001)|urlencode", "urlencode takes at most 50000 characters"),
    ("dict.fromkeys(range(20000)|map('string'), 'ü')|urlencode", "urlencode takes at most"),
    ("('a.b ' * 12501)|urlize", "urlize takes at most 50000 characters"),
    ("dict.fromkeys(range(20000)|map('string'), 'v')|xmlattr", "xmlattr takes at most"),
    ("('a ' * 250001)|wordcount", "wordcount takes at most 500000 characters"),
    # Numbers from 2 MB of binary digits make division quadratic (2 s for one //).
    ("('1' * 2000000)|int(base=2) // 3", "more than 10000 bits"),
    # Markup's and bytes' own methods get the checks that str's have.
    ("('x'|e).center(999999999)", "width or count of 999999999"),
    ("'x'.encode().ljust(999999999)", "width or count of 999999999"),
    ("'%0999999999d'.encode() % 1", "width or precision of 999999999"),
    ("'a\tb'.encode().expandtabs(100000)", "width or count of 100000"),
    ("('x' * 1000000).encode().replace('x'.encode(), 'yyy'.encode())", "longer than 2000000"),
    ("('-' * 1000).encode().join(('x' * 3000).encode())", "longer than 2000000"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "reason"), HOSTILE_BUILTINS)
def test_builtins_that_take_long_in_one_step_are_refused(source: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError) as caught:
        evaluate(compile_expression(source), {})
    assert reason in caught.value.reason
    assert time.monotonic() - started < 2.5  # refused, not run: unrefused takes 5 s or more


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("('a' * 10000)|wordwrap(1)|length", 19999),
        ("('ab' * 5000)|sort|first", "a"),
        ("range(10000)|map('string')|sort|last", "9999"),
        ("('a' * 1000000).strip('b' * 99 + 'a')", ""),
        ("('ab' * 1000)|trim('ba')", ""),
        ("'é'.encode('utf-8')|length", 2),
        ("'é'.encode('UTF8').decode('latin_1')", "Ã©"),
        ("'é'.encode(encoding='latin-1', errors='strict')|length", 1),
        ("'é'.encode('ascii', 'xmlcharrefreplace').decode()", "&#233;"),
        ("'é'.encode('ascii', 'ignore')|length", 0),
        ("('a ' * 25000)|title|length", 50000),
        ("('<b>x</b>' * 100)|striptags|length", 100),
        ("('1' * 10000)|int(base=2) > 0", True),
        ("[1, 2, 3]|max", 3),
        ("{'b': 1, 'a': 2}|dictsort|first", ("a", 2)),
    ],
)
def test_builtins_at_their_bounds_still_work(source: str, expected: Any) -> None:
    # What is tested is the caps, not speed: a generous limit keeps a busy machine out of it.
    assert evaluate(compile_expression(source), {}, time_limit=30) == expected


@pytest.mark.parametrize(
    "source",
    [
        # unique reads a million equal items and yields once: the reading is checked.
        "('a' * 2000000)|unique|list|length",
        "('a' * 2000000)|select|list|length",
        "('a' * 2000000)|reject('none')|list|length",
        "range(100000)|list|join|length",
        "range(100000)|batch(3)|list|length",
        "dict.fromkeys(range(100000))|items|list|length",
    ],
)
def test_lazy_filters_check_the_deadline_as_they_go(source: str) -> None:
    ticks = iter(range(10**9))  # a clock that advances one second per reading
    environment = make_environment(time_limit=100, clock=lambda: float(next(ticks)))
    with pytest.raises(SecurityError, match="took longer than the limit of 100 s"):
        environment.compile_expression(source)()


# Two values built as [a, a] forty levels deep print as 2**40 items; comparing or hashing
# them took as many steps in one C call (depth 28: 6 s), with no hook where it happens.
_SHARED = (
    "{% set ns = namespace(x=0, y=0, t=0) %}{% for i in range(40) %}"
    "{% set ns.x = [ns.x, ns.x] %}{% set ns.y = [ns.y, ns.y] %}{% set ns.t = (ns.t, ns.t) %}"
    "{% endfor %}"
)


@pytest.mark.parametrize(
    "use",
    [
        "{{ ns.x == ns.y }}",
        "{{ ns.x != ns.y }}",
        "{{ ns.x < ns.y }}",
        "{{ ns.x in [ns.y] }}",
        "{{ ns.x is eq ns.y }}",
        "{{ ns.x is in [ns.y] }}",
        "{{ {ns.t: 1} }}",
        "{{ {}.get(ns.t) }}",
        "{{ {}[ns.t] }}",
        "{{ [ns.t, ns.t]|unique|list }}",
        "{{ [ns.x, ns.y]|sort }}",
        "{{ [[ns.x], [ns.y]]|map('first')|sort }}",
    ],
)
def test_comparing_or_hashing_values_that_share_their_parts_is_refused(use: str) -> None:
    started = time.monotonic()
    with pytest.raises(RenderError, match="longer than 2000000 characters"):
        render(_SHARED + use)
    assert time.monotonic() - started < 3.0  # stopped at the limit, not run to the end


def test_shared_values_built_without_a_loop_are_refused_too() -> None:
    sets = "".join(f"{{% set {p}{i + 1} = [{p}{i}, {p}{i}] %}}" for p in "ab" for i in range(40))
    with pytest.raises(RenderError, match="longer than 2000000 characters"):
        render("{% set a0 = 0 %}{% set b0 = 0 %}" + sets + "{{ a40 == b40 }}")


def test_ordinary_comparisons_and_keys_still_work() -> None:
    assert value("[1, [2]] == [1, [2]] and (1, 2) in [(1, 2)] and {(1, 2): 'k'}[(1, 2)] == 'k'")
    assert value("payload.a is eq 1 and 2 is in [1, 2] and 'b' < 'c' < 'd'", {"payload": {"a": 1}})


def test_running_out_of_time_is_a_time_limit_error() -> None:
    source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(expressions.TimeLimitError, match=r"took longer than the limit of 0\.05 s"):
        render(source, time_limit=0.05)
    with pytest.raises(RenderError) as caught:
        render("{{ 1 / 0 }}")
    assert not isinstance(caught.value, expressions.TimeLimitError)


def test_a_failure_quoting_a_huge_value_is_cut() -> None:
    with pytest.raises(RenderError) as caught:
        render("{{ ('a' * 1000000)|filesizeformat }}")
    assert caught.value.reason.startswith("ValueError: could not convert string to float: 'aaa")
    assert len(caught.value.reason) == expressions.MAX_REASON_CHARS
    assert caught.value.reason.endswith("…")
