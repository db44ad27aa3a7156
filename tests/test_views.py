"""Block Kit views: Slack's limits, form round trips through the real payload shape, and
form → spec, with each error on the field it belongs to."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.conversation import drafts
from bot.conversation import home as h
from bot.conversation import modals as v
from bot.errors import SpecError
from bot.models import Hook, Trigger
from bot.triggers.grammar import parse_trigger_add
from bot.triggers.messages import alert_actions
from bot.triggers.spec import TriggerSpec
from bot.webhooks.processor import hook_log_context

SLACK_FIXTURES = Path(__file__).parent / "fixtures" / "slack"
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def parse(command: str) -> Any:
    return parse_trigger_add(
        command, default_tz=ZoneInfo("UTC"), now=NOW, min_interval=timedelta(seconds=60)
    )


def spec_of(submitted_form: v.TriggerForm) -> TriggerSpec:
    return v.trigger_spec_of(
        submitted_form, user_zone=ZoneInfo("UTC"), now=NOW, min_interval=timedelta(seconds=60)
    )


def form(**changes: str | None) -> v.TriggerForm:
    base: dict[str, Any] = {
        "name": "site",
        "kind": "http",
        "target": "https://example.com/health?a=1&b=2",
        "schedule": "every 5m",
        "condition": None,
        "channel": "C1",
        "timezone": None,
        "options": None,
    }
    return v.TriggerForm(**{**base, **changes})


# ---------------------------------------------------------------------------------------------
# Slack's limits, checked on every builder


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for child in node.values():
            yield from walk(child)
    elif isinstance(node, list):
        for child in node:
            yield from walk(child)


def assert_blocks_ok(blocks: list[dict[str, Any]]) -> None:
    json.dumps(blocks)
    assert 0 < len(blocks) <= 100
    block_ids = [block["block_id"] for block in blocks if "block_id" in block]
    assert len(block_ids) == len(set(block_ids))
    assert all(len(block_id) <= 255 for block_id in block_ids)
    for block in blocks:
        if block["type"] == "input":
            assert 0 < len(block["element"]["action_id"]) <= 255
        if block["type"] == "actions":
            assert len(block["elements"]) <= 25
    for node in walk(blocks):
        if node.get("type") == "button":
            assert len(node["text"]["text"]) <= 75
            assert len(node["action_id"]) <= 255
            # values carry only ids
            assert "value" not in node or node["value"].isdigit()


def assert_view_ok(view: dict[str, Any]) -> None:
    assert_blocks_ok(view["blocks"])
    if view["type"] == "modal":
        for key in ("title", "submit", "close"):
            assert 0 < len(view[key]["text"]) <= 24
        assert len(view["private_metadata"]) <= 3000
    for node in walk(view):
        if node.get("type") == "static_select" and "initial_option" in node:
            assert node["initial_option"] in node["options"]


FULL = form(
    kind="json",
    target="https://status.example.com/api/v2/status.json",
    schedule="every weekday at 9:30",
    condition='json.status.indicator != "none"',
    channel="C0123ABCD",
    timezone="Europe/Berlin",
    options="retries=3 timeout=5s",
)

HOOK = Hook(
    id=7,
    team_id="T1",
    name="deploys",
    channel_id="C1",
    preset="github",
    token_hash="0" * 64,
    created_by="U1",
    created_at=NOW,
)


def trigger(trigger_id: int, *, paused: bool = False, kind: str = "http") -> Trigger:
    return Trigger(
        id=trigger_id,
        team_id="T1",
        name=f"t{trigger_id}",
        channel_id="C1",
        kind=kind,
        target="https://example.com/" if kind != "message" else "Standup <@U1>",
        schedule={},
        options={},
        state={},
        paused=paused,
        created_by="U1",
        created_at=NOW,
    )


def hook(hook_id: int, *, paused: bool = False) -> Hook:
    return Hook(**{**HOOK.model_dump(), "id": hook_id, "name": f"h{hook_id}", "paused": paused})


@pytest.mark.parametrize(
    "view",
    [
        v.trigger_modal(None),
        v.trigger_modal(FULL, editing="status", preview="every weekday at 09:30 — next: Mon"),
        v.trigger_modal(form(name="x" * 500, target="y" * 5000), user_zone="Asia/Kolkata"),
        v.hook_modal(None),
        v.hook_modal(v.HookForm("deploys", "C1", "github", "s3cret")),
        h.home_view([], [], states={}, next_runs={}),
        h.home_view(
            [hook(i) for i in range(1, 201)],
            [trigger(i) for i in range(1, 201)],
            states={},
            next_runs={},
        ),
    ],
)
def test_views_obey_slack_limits(view: dict[str, Any]) -> None:
    assert_view_ok(view)


@pytest.mark.parametrize(
    "blocks",
    [
        drafts.proposal_message("*site* — check https://example.com every 5m", 42),
        [alert_actions(12)],
        [hook_log_context("deploys")],
    ],
)
def test_message_blocks_obey_slack_limits(blocks: list[dict[str, Any]]) -> None:
    assert_blocks_ok(blocks)


def test_trigger_modal_has_the_documented_blocks_and_metadata() -> None:
    view = v.trigger_modal(FULL, editing="status", preview="every weekday at 09:30 & more")
    inputs = [block for block in view["blocks"] if block["type"] == "input"]
    assert tuple(block["block_id"] for block in inputs) == v.TRIGGER_BLOCKS
    assert view["callback_id"] == v.TRIGGER_MODAL
    assert view["private_metadata"] == "status"
    assert view["blocks"][0] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "every weekday at 09:30 &amp; more"}],
    }
    kind = inputs[1]["element"]
    assert [option["value"] for option in kind["options"]] == [
        "http",
        "rss",
        "json",
        "csv",
        "message",
        "report",
        "email",
    ]
    assert kind["initial_option"]["value"] == "json"
    channel = inputs[5]["element"]
    assert channel["type"] == "conversations_select"
    assert channel["initial_conversation"] == "C0123ABCD"
    assert channel["filter"] == {"exclude_bot_users": True}


def test_new_trigger_modal_defaults_to_the_current_channel_and_user_zone() -> None:
    view = v.trigger_modal(None, user_zone="America/Chicago")
    by_id = {block["block_id"]: block for block in view["blocks"] if "block_id" in block}
    assert view["private_metadata"] == ""
    assert view["title"]["text"] == "New trigger"
    assert by_id["channel"]["element"]["default_to_current_conversation"] is True
    assert "initial_conversation" not in by_id["channel"]["element"]
    assert "America/Chicago" in by_id["timezone"]["element"]["placeholder"]["text"]
    assert "initial_option" not in by_id["kind"]["element"]
    assert all("initial_value" not in block["element"] for block in by_id.values())


def test_hook_modal_offers_every_sender_and_never_echoes_the_secret() -> None:
    view = v.hook_modal(v.HookForm("deploys", "C1", "github", "s3cret-value"))
    inputs = [block for block in view["blocks"] if block["type"] == "input"]
    assert tuple(block["block_id"] for block in inputs) == v.HOOK_BLOCKS
    assert view["callback_id"] == v.HOOK_MODAL
    preset = inputs[2]["element"]
    assert [option["value"] for option in preset["options"]] == [
        "auto",
        "github",
        "gitlab",
        "alertmanager",
        "grafana",
        "sentry",
        "stripe",
        "generic",
    ]
    assert preset["initial_option"]["value"] == "github"
    assert "s3cret-value" not in json.dumps(view)


# ---------------------------------------------------------------------------------------------
# Reading a submission in the real payload shape


def submitted(view: dict[str, Any], typed: dict[str, Any] | None = None) -> dict[str, Any]:
    """The real view_submission's view, carrying our blocks and the state Slack would send
    when the user submits the prefilled modal (with ``typed`` overriding plain inputs)."""
    payload = json.loads((SLACK_FIXTURES / "view_submission.json").read_text())
    sent = copy.deepcopy(payload["view"])
    sent["blocks"] = view["blocks"]
    sent["state"]["values"] = {
        block["block_id"]: {block["element"]["action_id"]: state_of(block, typed or {})}
        for block in view["blocks"]
        if block["type"] == "input"
    }
    return dict(sent)


def state_of(block: dict[str, Any], typed: dict[str, Any]) -> dict[str, Any]:
    element = block["element"]
    kind = element["type"]
    if kind == "static_select":
        return {"type": kind, "selected_option": element.get("initial_option")}
    if kind == "conversations_select":
        return {"type": kind, "selected_conversation": element.get("initial_conversation")}
    value = typed.get(block["block_id"], element.get("initial_value"))
    return {"type": kind, "value": value}


@pytest.mark.parametrize(
    "original",
    [
        FULL,
        form(),
        form(kind="message", target="Standup in 5 <@U1> & co\nsecond line", channel="C1"),
        form(kind="report", target=None, schedule="every monday at 9am", channel="G1"),
    ],
)
def test_read_trigger_form_round_trips_a_submitted_modal(original: v.TriggerForm) -> None:
    view = submitted(v.trigger_modal(original))
    assert v.read_trigger_form(view) == original


def test_read_trigger_form_reads_what_the_user_typed_and_blanks_as_none() -> None:
    view = submitted(
        v.trigger_modal(FULL), typed={"condition": "   ", "options": None, "name": " api "}
    )
    read = v.read_trigger_form(view)
    assert (read.name, read.condition, read.options) == ("api", None, None)


@pytest.mark.parametrize(
    "view",
    [
        {},
        {"state": None},
        {"state": {"values": {}}},
        {"state": {"values": {"name": None, "kind": {"kind": {"type": "static_select"}}}}},
        {"state": {"values": {"name": {"name": {"type": "plain_text_input", "value": None}}}}},
        {"state": {"values": {"channel": {"channel": {"type": "conversations_select"}}}}},
    ],
)
def test_read_trigger_form_survives_missing_blocks_and_values(view: dict[str, Any]) -> None:
    assert v.read_trigger_form(view) == v.TriggerForm(None, "", None, None, None, None, None, None)


def test_read_hook_form_reads_a_submitted_hook_modal() -> None:
    view = submitted(
        v.hook_modal(v.HookForm("deploys", "C9", "sentry", None)), typed={"secret": "abc&def"}
    )
    assert v.read_hook_form(view) == v.HookForm("deploys", "C9", "sentry", "abc&def")


# ---------------------------------------------------------------------------------------------
# Form → spec


@pytest.mark.parametrize(
    ("original", "target", "condition", "options"),
    [
        (form(), "https://example.com/health?a=1&b=2", None, {}),
        (
            form(kind="rss", target="https://example.com/feed.xml", options="latest=1"),
            "https://example.com/feed.xml",
            None,
            {"latest": "1"},
        ),
        (
            FULL,
            "https://status.example.com/api/v2/status.json",
            'json.status.indicator != "none"',
            {"retries": "3", "timeout": "5s"},
        ),
        (
            form(condition="status != 200 and latency > 500ms", options="retries=2"),
            "https://example.com/health?a=1&b=2",
            "status != 200 and latency > 500ms",
            {"retries": "2"},
        ),
        (
            form(kind="message", target="Standup in 5 <@U1> & <#C2|ops> when ready"),
            "Standup in 5 <@U1> & <#C2|ops> when ready",
            None,
            {},
        ),
        # What the slash grammar could not carry, a form can: quotes in a message.
        (form(kind="message", target='Say "hi" & “bye”'), 'Say "hi" & “bye”', None, {}),
        (
            form(kind="message", target="Line one\nline two", timezone="Europe/Berlin"),
            "Line one\nline two",
            None,
            {},
        ),
        (form(kind="report", target=None, options="max=5"), None, None, {"max": "5"}),
    ],
)
def test_a_form_becomes_the_trigger_it_shows(
    original: v.TriggerForm, target: str | None, condition: str | None, options: dict[str, str]
) -> None:
    spec = spec_of(original)
    assert spec.name == original.name
    assert spec.kind == original.kind
    assert spec.target == target
    assert spec.condition == condition
    assert spec.options == options
    assert spec.channel == original.channel
    assert spec.schedule.tz_name == (original.timezone or "UTC")
    assert spec.schedule_text == original.schedule


def test_the_zone_field_is_the_default_and_a_zone_in_the_schedule_wins() -> None:
    assert spec_of(form(timezone="Europe/Berlin")).schedule.tz_name == "Europe/Berlin"
    named = form(schedule="every day at 9am tz Asia/Tokyo", timezone="Europe/Berlin")
    assert spec_of(named).schedule.tz_name == "Asia/Tokyo"


def test_a_form_and_the_same_typed_command_make_the_same_trigger() -> None:
    typed = parse(
        "site every 5m http https://example.com/health?a=1&amp;b=2 when status != 200 <#C1> retries=2"
    )
    filled = spec_of(form(condition="status != 200", options="retries=2"))
    assert filled == typed


@pytest.mark.parametrize(
    ("bad", "block_id"),
    [
        (form(kind="message", target=None), "target"),
        (form(kind="message", target="   "), "target"),
        (form(target=None), "target"),
        (form(target="https://example.com/a b"), "target"),
        (form(target="ftp://example.com/file"), "target"),
        (form(kind="report", target="https://example.com"), "target"),
        (form(kind="message", target="hi", condition="status != 200"), "condition"),
        (form(kind="csv", condition="status != 200"), "condition"),
        (form(name=None), "name"),
        (form(name="my site"), "name"),
        (form(name="My_Site!"), "name"),
        (form(schedule=None), "schedule"),
        (form(schedule="every 5 fortnights"), "schedule"),
        (form(schedule="every 10s"), "schedule"),
        (form(kind=""), "kind"),
        (form(kind="ftp"), "kind"),
        (form(channel=None), "channel"),
        (form(timezone="Europe Berlin"), "timezone"),
        (form(timezone="Mars/Base"), "timezone"),
        (form(options="colour=red"), "options"),
        (form(options="retries=0"), "options"),
        (form(options="retries=2 retries=3"), "options"),
    ],
)
def test_each_form_error_lands_on_its_field(bad: v.TriggerForm, block_id: str) -> None:
    with pytest.raises(SpecError) as caught:
        spec_of(bad)
    assert caught.value.field == block_id
    errors = v.inline_errors(caught.value)
    assert list(errors) == [block_id]
    assert 0 < len(errors[block_id]) <= 150


def test_inline_errors_cut_long_messages_and_keep_unknown_fields_visible() -> None:
    errors = v.inline_errors(SpecError("x" * 400, field="schedule"))
    assert len(errors["schedule"]) == 150 and errors["schedule"].endswith("…")
    assert list(v.inline_errors(SpecError("no", field="template"))) == ["name"]


def test_a_trigger_shown_for_editing_reads_back_as_itself() -> None:
    spec = spec_of(FULL)
    assert spec_of(v.TriggerForm.of_spec(spec)) == spec


# ---------------------------------------------------------------------------------------------
# Hooks: form → spec


@pytest.mark.parametrize(
    ("hook_form", "preset", "secret"),
    [
        (v.HookForm("deploys", "C1", "github", None), "github", None),
        (v.HookForm("deploys", "C1", None, None), "auto", None),
        (v.HookForm("pay", "C2", "stripe", 'whsec_a&b"x'), "stripe", 'whsec_a&b"x'),
    ],
)
def test_a_hook_form_becomes_the_hook_it_shows(
    hook_form: v.HookForm, preset: str, secret: str | None
) -> None:
    spec = v.hook_spec_of(hook_form)
    assert (spec.name, spec.channel, spec.preset, spec.secret) == (
        hook_form.name,
        hook_form.channel,
        preset,
        secret,
    )


@pytest.mark.parametrize(
    ("bad", "block_id"),
    [
        (v.HookForm(None, "C1", "auto", None), "name"),
        (v.HookForm("my hook", "C1", "auto", None), "name"),
        (v.HookForm("deploys", "C1", "bitbucket", None), "preset"),
        (v.HookForm("deploys", "C1", "auto", "two words"), "secret"),
        (v.HookForm("deploys", None, "auto", None), "channel"),
    ],
)
def test_hook_form_errors_land_on_their_field(bad: v.HookForm, block_id: str) -> None:
    with pytest.raises(SpecError) as caught:
        v.hook_spec_of(bad)
    assert caught.value.field == block_id


# ---------------------------------------------------------------------------------------------
# Messages


def buttons(block: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(element["action_id"], element.get("value")) for element in block["elements"]]


def test_proposal_message_shows_the_summary_and_id_only_buttons() -> None:
    blocks = drafts.proposal_message("*site* — check every 5m", 42)
    assert blocks[0]["text"]["text"] == "Here's what I understood:\n*site* — check every 5m"
    assert buttons(blocks[1]) == [
        ("draft_create", "42"),
        ("draft_edit", "42"),
        ("draft_cancel", "42"),
    ]
    assert blocks[1]["elements"][0]["style"] == "primary"
    assert [element["text"]["text"] for element in blocks[1]["elements"]] == [
        "Create",
        "Edit",
        "Cancel",
    ]


def test_alert_actions_carry_the_trigger_id() -> None:
    block = alert_actions(12)
    assert block["type"] == "actions"
    assert buttons(block) == [
        ("trigger_run", "12"),
        ("trigger_snooze", "12"),
        ("trigger_pause", "12"),
        ("trigger_history", "12"),
    ]
    assert [element["text"]["text"] for element in block["elements"]] == [
        "Run now",
        "Snooze 1h",
        "Pause",
        "History",
    ]


def test_hook_log_context_names_the_hook_and_its_log_command() -> None:
    assert hook_log_context("deploys") == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "From hook *deploys* · `/hook log deploys`"}],
    }


# ---------------------------------------------------------------------------------------------
# App Home


def texts(view: dict[str, Any]) -> str:
    return "\n".join(
        str(node["text"]) for node in walk(view["blocks"]) if node.get("type") == "mrkdwn"
    )


def test_empty_home_offers_the_new_buttons() -> None:
    view = h.home_view([], [], states={}, next_runs={})
    assert view["type"] == "home"
    assert buttons(view["blocks"][1]) == [("home_new_trigger", None), ("home_new_hook", None)]
    assert "None yet" in texts(view)
    assert len(view["blocks"]) == 6


def test_home_shows_state_next_run_and_the_right_buttons() -> None:
    triggers = [trigger(1), trigger(2, paused=True, kind="message")]
    view = h.home_view(
        [HOOK, hook(8, paused=True)],
        triggers,
        states={1: "failing since 27 Nov 10:02", 2: "paused"},
        next_runs={1: "Fri 27 Nov 10:05"},
    )
    shown = texts(view)
    assert "*t1* · http · <https://example.com/|https://example.com/>" in shown
    assert "failing since 27 Nov 10:02 · posts in <#C1> · next: Fri 27 Nov 10:05" in shown
    assert "*t2* · message · “Standup &lt;@U1&gt;”\npaused" in shown
    assert "*deploys* → <#C1> · github" in shown
    assert "*h8* → <#C1> · github · paused" in shown
    actions = [block for block in view["blocks"] if block["type"] == "actions"][1:]
    assert buttons(actions[0]) == [
        ("trigger_pause", "1"),
        ("trigger_run", "1"),
        ("trigger_edit", "1"),
        ("trigger_delete", "1"),
    ]
    assert buttons(actions[1])[0] == ("trigger_resume", "2")
    assert buttons(actions[2]) == [("hook_pause", "7"), ("hook_delete", "7")]
    assert buttons(actions[3]) == [("hook_resume", "8"), ("hook_delete", "8")]
    assert actions[0]["elements"][3]["confirm"]["style"] == "danger"


@pytest.mark.parametrize(
    ("n_triggers", "n_hooks", "more"),
    [
        (200, 0, ["and 154 more — `/trigger list`"]),
        (0, 200, ["and 154 more — `/hook list`"]),
        (200, 200, ["and 169 more — `/trigger list`", "and 185 more — `/hook list`"]),
        (30, 16, []),
    ],
)
def test_home_stays_within_100_blocks(n_triggers: int, n_hooks: int, more: list[str]) -> None:
    view = h.home_view(
        [hook(i) for i in range(1, n_hooks + 1)],
        [trigger(i) for i in range(1, n_triggers + 1)],
        states={},
        next_runs={},
    )
    assert len(view["blocks"]) <= 100
    contexts = [
        block["elements"][0]["text"] for block in view["blocks"] if block["type"] == "context"
    ]
    assert contexts == more


def test_home_refuses_unsaved_rows() -> None:
    unsaved = trigger(1)
    unsaved.id = None
    with pytest.raises(ValueError, match="saved"):
        h.home_view([], [unsaved], states={}, next_runs={})
