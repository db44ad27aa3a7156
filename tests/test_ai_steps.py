"""The AI step's wiring parts: the steps with their fallbacks (over HTTP, against the fake
endpoint), the notes on messages, ``/trigger set``'s settings, the shared budget table and
the ``AI_*`` settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest

from bot.ai.budget import TokenBudget
from bot.ai.client import AIClient, AISettings
from bot.ai.labels import Label, parse_labels
from bot.ai.metrics import CountingMetrics
from bot.ai.notes import category_line, content_text, with_notes
from bot.ai.steps import AISteps, ToCategorise, ToSummarise
from bot.ai.summaries import SummaryRequest
from bot.ai.usage import DatabaseUsageStore
from bot.config import ConfigError, load_settings
from bot.db import Database
from bot.devtools.fake_openai import DEFAULT_API_KEY, FakeOpenAI, Reply
from bot.errors import SpecError
from bot.models import Trigger
from bot.outbox import Message
from bot.slack import blocks as kit
from bot.triggers.ai_notes import NO_NOTES, ItemNotes, notes_for
from bot.triggers.evaluate import Announcement
from bot.triggers.observation import FeedItem
from bot.triggers.settings import SETTINGS, TriggerSettings, read_settings
from tests.conftest import reset_postgres

LABELS = parse_labels("sales: buying; support: problems; billing: invoices")
NOON = datetime(2031, 1, 6, 12, 0, tzinfo=UTC)
LONG = "The export to CSV fails for every report with more than ten thousand rows. " * 10


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


def steps_for(fake: FakeOpenAI | None, **options: float) -> AISteps:
    settings = (
        AISettings(base_url=fake.url, model="m", api_key=DEFAULT_API_KEY, timeout=5.0)
        if fake is not None
        else AISettings()
    )
    client = AIClient(settings, redact=str, metrics=CountingMetrics(), clock=lambda: NOON)
    return AISteps(client, **options)  # type: ignore[arg-type]


@pytest.fixture
async def steps(fake: FakeOpenAI) -> AsyncIterator[AISteps]:
    ai = steps_for(fake)
    yield ai
    await ai.close()


# ----- the steps ------------------------------------------------------------------------


async def test_categorise_all_answers_in_order_with_none_for_failures(
    fake: FakeOpenAI, steps: AISteps
) -> None:
    def by_text(request):  # type: ignore[no-untyped-def]
        data = request.messages[-1]["content"]
        if "invoice" in data:
            return Reply.json({"label": "billing"})
        if "crash" in data:
            return Reply.json({"label": "support"})
        return Reply.error(500)

    fake.responder = by_text
    found = await steps.categorise_all(
        [
            ToCategorise("T1", "the app crashes", LABELS),
            ToCategorise("T1", "weather report", LABELS),
            ToCategorise("T1", "invoice 42 is wrong", LABELS),
            ToCategorise("T1", "", LABELS),  # nothing to read: not asked
            ToCategorise("T1", "one label only", LABELS[:1]),  # not a choice: not asked
        ]
    )
    assert [label.name if label else None for label in found] == [
        "support",
        None,
        "billing",
        None,
        None,
    ]
    assert len(fake.requests) == 3


async def test_a_slow_endpoint_delays_a_batch_by_the_step_time_only(fake: FakeOpenAI) -> None:
    fake.responder = lambda request: Reply.json({"label": "sales"}).after(30)
    ai = steps_for(fake, step_seconds=0.5)
    try:
        started = time.monotonic()
        found = await ai.categorise_all([ToCategorise("T", f"item {i}", LABELS) for i in range(6)])
        took = time.monotonic() - started
    finally:
        await ai.close()
    assert found == [None] * 6
    assert took < 10  # bounds a hang: the requests were given up at the step's end


async def test_at_most_concurrency_requests_are_in_flight(fake: FakeOpenAI) -> None:
    fake.responder = lambda request: Reply.json({"label": "sales"}).after(0.2)
    ai = steps_for(fake, concurrency=2)
    try:
        pending = asyncio.ensure_future(
            ai.categorise_all([ToCategorise("T", f"item {i}", LABELS) for i in range(5)])
        )
        await fake.wait_for_requests(2)
        await asyncio.sleep(0.1)
        assert len(fake.requests) == 2  # the others wait for a free slot
        assert [label and label.name for label in await pending] == ["sales"] * 5
    finally:
        await ai.close()


async def test_summaries_only_for_long_text(fake: FakeOpenAI, steps: AISteps) -> None:
    fake.responder = lambda request: Reply.text("CSV export fails above 10k rows.")
    found = await steps.summaries_of([ToSummarise("T", "short"), ToSummarise("T", LONG)])
    assert found == [None, "CSV export fails above 10k rows."]
    assert len(fake.requests) == 1


async def test_template_summaries_are_marked_and_escaped_or_fall_back(
    fake: FakeOpenAI, steps: AISteps
) -> None:
    fake.script(Reply.text("Ping <!channel> & more"), Reply.error(429))
    written = await steps.write_summaries(
        "T", [SummaryRequest("first text", 40), SummaryRequest("second one here", 2)]
    )
    assert written[0] == "Ping &lt;!channel&gt; &amp; more _(AI-written)_"
    assert written[1] == "second one…"


async def test_with_ai_off_nothing_is_asked_and_everything_falls_back() -> None:
    ai = steps_for(None)
    try:
        assert not ai.enabled
        assert await ai.categorise_item("T", "invoice", LABELS) is None
        assert await ai.summary_of("T", LONG) is None
        assert await ai.write_summaries("T", [SummaryRequest("a b c", 2)]) == ["a b…"]
        assert await ai.status("T") == "AI: off (rules only)"
    finally:
        await ai.close()


async def test_a_triggers_items_get_a_label_and_long_ones_a_summary(
    fake: FakeOpenAI, steps: AISteps
) -> None:
    fake.responder = lambda request: (
        Reply.json({"label": "billing"}) if request.response_format else Reply.text("Short.")
    )
    trigger = Trigger(
        team_id="T1", name="mail", channel_id="C1", kind="rss", created_by="U1",
        settings={"categorise": "billing: invoices; other", "summary": "on"},
    )  # fmt: skip
    announcements = [
        Announcement("new_item", "a", FeedItem("1", "Invoice", summary=LONG)),
        Announcement("new_items_summary", "…and 3 more"),
        Announcement("new_item", "b", FeedItem("2", "Invoice again", summary="short")),
    ]
    notes = await notes_for(steps, trigger, announcements)
    assert notes == [
        ItemNotes(Label("billing", "invoices"), "Short."),
        NO_NOTES,
        ItemNotes(Label("billing", "invoices"), None),
    ]
    assert await notes_for(None, trigger, announcements) == [NO_NOTES] * 3
    trigger.settings = {}
    assert await notes_for(steps, trigger, announcements) == [NO_NOTES] * 3
    assert len(fake.requests) == 3  # two labels and one summary; nothing once unset


# ----- notes on messages ----------------------------------------------------------------


def test_notes_put_the_summary_on_top_and_the_label_last() -> None:
    message = Message("C1", "text", blocks=[kit.section("content"), kit.context(["footer"])])
    noted = with_notes(message, summary="Short <b>", category=Label("billing"))
    assert noted.blocks is not None
    assert [b["type"] for b in noted.blocks] == ["section", "section", "context", "context"]
    assert noted.blocks[0]["text"]["text"] == "*Summary* _(AI-written)_: Short &lt;b&gt;"
    assert noted.blocks[-1] == category_line(Label("billing"))
    assert "categorised as *billing* (AI)" in str(noted.blocks[-1])
    assert with_notes(message, summary=None, category=None) is message


def test_notes_keep_a_full_message_within_slacks_block_limit_and_its_footer() -> None:
    blocks = [kit.section(f"b{i}") for i in range(kit.MAX_BLOCKS - 1)] + [kit.context(["footer"])]
    noted = with_notes(Message("C1", "t", blocks=blocks), summary="s", category=Label("x"))
    assert noted.blocks is not None and len(noted.blocks) == kit.MAX_BLOCKS
    assert noted.blocks[-2] == kit.context(["footer"])


def test_content_text_reads_sections_as_plain_text() -> None:
    blocks = [
        kit.header("Release 1.2"),
        kit.section("*Notes* &amp; <https://x.example/r|the notes>"),
        kit.fields(["*a*\n1"]),
        kit.context(["From hook *h*"]),
    ]
    assert content_text("fallback", blocks) == (
        "Release 1.2\n*Notes* & the notes (https://x.example/r)\n*a*\n1"
    )
    assert content_text("only &lt;text&gt;", None) == "only <text>"


# ----- /trigger set's settings -------------------------------------------------------------


def test_settings_are_read_into_stored_values() -> None:
    read = read_settings({"categorise": "Sales: buying ; spam", "summary": "on"})
    assert read.changes == {"categorise": "Sales: buying; spam", "summary": "on"}
    assert read.describe() == "categorise=Sales, spam, summary=on"
    cleared = read_settings({"categorise": "", "summary": "off"})
    assert cleared.changes == {"categorise": None, "summary": None}
    assert cleared.applied_to({"categorise": "a; b", "summary": "on", "x": "1"}) == {"x": "1"}


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"categorise": "only one"}, "categorise"),
        ({"categorise": "a; A"}, "categorise"),
        ({"summary": "yes"}, "summary"),
        ({"colour": "red"}, "options"),
    ],
)
def test_bad_settings_name_their_field(options: dict[str, str], field: str) -> None:
    with pytest.raises(SpecError) as raised:
        read_settings(options)
    assert raised.value.field == field


def test_every_setting_reads_its_own_example() -> None:
    for key, setting in SETTINGS.items():
        value = read_settings({key: setting.example.strip('"')})
        assert isinstance(value, TriggerSettings) and value.changes[key] is not None


# ----- the shared budget ------------------------------------------------------------------


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_the_usage_table_adds_atomically(database_url: str) -> None:
    if database_url.startswith("postgres"):
        await reset_postgres(database_url)
    db = Database(database_url)
    try:
        await db.migrate()
        store = DatabaseUsageStore(db)
        day = date(2031, 1, 6)
        await asyncio.gather(*(store.add("T1", day, 10) for _ in range(20)))
        await store.add("T2", day, 5)
        budget = TokenBudget(store, limit=200)
        assert await store.used("T1", day) == 200
        assert not await budget.may_spend("T1", NOON)
        assert await budget.may_spend("T2", NOON)
        assert await store.used("T1", date(2031, 1, 7)) == 0
    finally:
        await db.close()


# ----- settings from the environment -------------------------------------------------------


def test_ai_is_off_by_default_and_configured_by_four_variables() -> None:
    assert load_settings({}).ai_base_url is None
    settings = load_settings(
        {
            "AI_BASE_URL": "http://localhost:11434/v1",
            "AI_MODEL": "llama3.1",
            "AI_API_KEY": "sk-secret-value",
            "AI_DAILY_TOKENS": "5000",
            "AI_TIMEOUT": "7.5",
        }
    )
    assert (settings.ai_base_url, settings.ai_model) == ("http://localhost:11434/v1", "llama3.1")
    assert (settings.ai_daily_tokens, settings.ai_timeout) == (5000, 7.5)
    assert "sk-secret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AI_BASE_URL": "http://x/v1"}, "AI_MODEL"),
        ({"AI_MODEL": "m"}, "AI_BASE_URL"),
        ({"AI_BASE_URL": "ftp://x", "AI_MODEL": "m"}, "AI_BASE_URL"),
        ({"AI_DAILY_TOKENS": "-1"}, "AI_DAILY_TOKENS"),
        ({"AI_TIMEOUT": "soon"}, "AI_TIMEOUT"),
    ],
)
def test_bad_ai_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)
