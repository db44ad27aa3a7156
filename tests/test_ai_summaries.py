"""``|summarise`` in templates: recorded in the user-code worker, filled by the bot.

The worker cannot call a model; it prints markers the bot replaces. These tests run the
real worker processes and check what a template's author and reader get: the summary in
place, the rule-based fallback when nothing writes one, and markers that nothing else
(a payload imitating one, a cut) can hijack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from bot.ai.summaries import (
    MAX_REQUESTS_PER_RENDER,
    RecordedSummaries,
    SummaryRecorder,
    SummaryRequest,
    fallback_summary,
    fill_markers,
)
from bot.expressions import RenderError, compile_template, render_template
from bot.usercode import Failed, TemplateJob, UserCodeRunner

LONG = "one two three four five six seven eight nine ten eleven twelve"


def render(source: str, recorder: SummaryRecorder | None = None, **context: object) -> str:
    return render_template(compile_template(source), context, summaries=recorder)


# ----- in the bot's own process: the fallback at once ------------------------------------


def test_without_a_recorder_the_filter_prints_the_first_words() -> None:
    assert render("{{ t|summarise(words=3) }}", t=LONG) == "one two three…"
    assert render("{{ t|summarise }}", t="short text") == "short text"


def test_the_fallback_is_escaped_like_any_value() -> None:
    assert (
        render("{{ t|summarise(words=2) }}", t="<!channel> now please") == "&lt;!channel&gt; now…"
    )


def test_data_that_is_not_text_is_summarised_as_json() -> None:
    recorder = SummaryRecorder()
    render("{{ d|summarise('Three lines on sales') }}", recorder, d={"sales": [1, 2]})
    (request,) = recorder.requests
    assert request == SummaryRequest('{"sales": [1, 2]}', 80, "Three lines on sales")


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ t|summarise(words=0) }}", "words must be a whole number"),
        ("{{ t|summarise(words=401) }}", "words must be a whole number"),
        ("{{ t|summarise(words='9') }}", "words must be a whole number"),
        ("{{ t|summarise(5) }}", "the instruction must be text"),
        ("{{ t|summarise('x' * 600) }}", "over 500 characters"),
    ],
)
def test_bad_arguments_fail_the_render_saying_why(source: str, problem: str) -> None:
    with pytest.raises(RenderError, match=problem):
        render(source, SummaryRecorder(), t=LONG)


# ----- markers -----------------------------------------------------------------------------


def test_each_call_records_a_request_and_prints_a_marker_escaping_leaves_alone() -> None:
    recorder = SummaryRecorder()
    text = render(
        "A: {{ a|summarise(words=5) }} B: {{ (b|summarise)|upper }} <{{ '<&>' }}>",
        recorder,
        a=LONG,
        b="second text",
    )
    assert [r.text for r in recorder.requests] == [LONG, "second text"]
    filled = fill_markers(text, recorder.nonce, ["first", "second"])
    assert filled == "A: first B: second <&lt;&amp;&gt;>"


def test_markers_that_are_not_the_renders_own_are_removed() -> None:
    recorder = SummaryRecorder()
    forged = "\ue000123456789012.0\ue001"  # a payload imitating a marker
    text = render("{{ t|summarise }} {{ p }} {{ cut }}", recorder, t=LONG, p=forged, cut="\ue000")
    filled = fill_markers(text, recorder.nonce, ["S"])
    assert filled == "S  "


def test_one_render_asks_for_at_most_five_summaries_then_prints_the_fallback() -> None:
    recorder = SummaryRecorder()
    text = render(
        "{% for t in ts %}[{{ t|summarise(words=1) }}]{% endfor %}", recorder, ts=[LONG] * 8
    )
    assert len(recorder.requests) == MAX_REQUESTS_PER_RENDER
    filled = fill_markers(text, recorder.nonce, ["S"] * MAX_REQUESTS_PER_RENDER)
    assert filled == "[S]" * 5 + "[one…]" * 3


def test_empty_text_asks_for_nothing() -> None:
    recorder = SummaryRecorder()
    assert render("[{{ missing|summarise }}]", recorder) == "[]"
    assert recorder.requests == []


def test_what_a_worker_sends_is_checked() -> None:
    recorder = SummaryRecorder()
    recorder.record(SummaryRequest("text", 10, None))
    assert RecordedSummaries.from_json(recorder.to_json()).requests == (SummaryRequest("text", 10),)
    for broken in (
        None,
        {"nonce": "12", "requests": [{"text": "x", "words": 0}]},
        {"nonce": "x1", "requests": []},
        {"nonce": "12", "requests": [{"text": 5, "words": 3}]},
        {"nonce": "12", "requests": [{"text": "x", "words": 3}] * 6},
    ):
        with pytest.raises(ValueError):
            RecordedSummaries.from_json(broken)


def test_fallback_summary_cuts_at_words() -> None:
    assert fallback_summary("a  b\nc d", 3) == "a b c…"
    assert fallback_summary("a b", 3) == "a b"


# ----- through the user-code workers ------------------------------------------------------


class Writer:
    """A stand-in for the AI step: records what it was asked, answers in order."""

    def __init__(self, fail: bool = False) -> None:
        self.asked: list[tuple[str | None, list[SummaryRequest]]] = []
        self.fail = fail

    async def __call__(self, team: str | None, requests: Sequence[SummaryRequest]) -> list[str]:
        self.asked.append((team, list(requests)))
        if self.fail:
            raise RuntimeError("the model is away")
        return [f"<summary {index} for {team}>" for index in range(len(requests))]


@pytest.fixture
async def writer() -> Writer:
    return Writer()


@pytest.fixture
async def runner(writer: Writer) -> AsyncIterator[UserCodeRunner]:
    usercode = UserCodeRunner(write_summaries=writer)
    yield usercode
    await usercode.close()


async def test_the_worker_records_and_the_runner_fills_each_template(
    runner: UserCodeRunner, writer: Writer
) -> None:
    jobs = [
        TemplateJob("Report: {{ t|summarise(words=5) }}.", {"t": LONG}, team="T1"),
        TemplateJob("plain {{ t }}", {"t": "x"}, team="T1"),
        TemplateJob(
            "{{ a|summarise }} / {{ b|summarise('one line') }}", {"a": "A", "b": "B"}, team="T2"
        ),
    ]
    outcomes = await runner.run(jobs)
    assert outcomes == [
        "Report: <summary 0 for T1>.",
        "plain x",
        "<summary 0 for T2> / <summary 1 for T2>",
    ]
    assert writer.asked == [
        ("T1", [SummaryRequest(LONG, 5)]),
        ("T2", [SummaryRequest("A", 40), SummaryRequest("B", 80, "one line")]),
    ]


async def test_without_a_writer_the_runner_fills_in_the_fallback() -> None:
    usercode = UserCodeRunner()
    try:
        (text,) = await usercode.run([TemplateJob("{{ t|summarise(words=2) }}", {"t": "<a> b c"})])
    finally:
        await usercode.close()
    assert text == "&lt;a&gt; b…"


async def test_a_writer_that_fails_costs_only_the_summary() -> None:
    usercode = UserCodeRunner(write_summaries=Writer(fail=True))
    try:
        (text,) = await usercode.run(
            [TemplateJob("x {{ t|summarise(words=1) }}", {"t": LONG}, team="T")]
        )
    finally:
        await usercode.close()
    assert text == "x one…"


async def test_a_failing_template_stays_a_failure(runner: UserCodeRunner) -> None:
    (outcome,) = await runner.run([TemplateJob("{{ t|summarise(words=0) }}", {"t": LONG})])
    assert isinstance(outcome, Failed) and "words must be" in str(outcome)
