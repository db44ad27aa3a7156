"""Local mode's pieces: Block Kit rendered for a terminal, and the payloads ``say`` builds.

The payloads are checked against what the bot itself reads from Slack's (the published
fixtures' shapes): `Click.from_body` and `submitted_values`.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from bot.conversation import modals
from bot.devtools import local
from bot.devtools.render import Names, mrkdwn, render_call
from bot.slack import blocks as kit
from bot.slack import interactive as ui
from bot.slack.interactive import submitted_values
from bot.slack.payloads import Click

NAMES = Names({"C0001": "general", "C0002": "ops", "D0001": "U0001"}, {"U0001": "ada"})
ADA = local.Person("U0001", "C0001")


def payload_of(body: bytes) -> dict[str, Any]:
    return dict(json.loads(urllib.parse.parse_qs(body.decode())["payload"][0]))


# ----- rendering ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("posting in <#C0002>", "posting in #ops"),
        ("posting in <#C0009|launch>", "posting in #launch"),
        ("hi <@U0001>", "hi @ada"),
        ("<https://example.com|the site> is down", "the site <https://example.com> is down"),
        ("<https://example.com>", "https://example.com"),
        ("since <!date^1925487690^{time}|17:41 UTC>", "since 17:41 UTC"),
        ("<!channel> latency &gt; 500ms &amp; more", "@channel latency > 500ms & more"),
    ],
)
def test_slack_references_read_as_slack_shows_them(text: str, shown: str) -> None:
    assert mrkdwn(text, NAMES) == shown


def test_a_message_shows_its_blocks_where_it_was_posted_and_its_buttons() -> None:
    blocks = [
        kit.section(":fire: *[FIRING:1] Fire*"),
        kit.fields(["*Status*\nfiring", "*Alerts*\n1 firing"]),
        kit.context(["From hook *alerts* · `/hook log alerts`"]),
        ui.actions([ui.button("Run now", "run", "1"), ui.button("Pause", "pause", "1")]),
    ]
    long_text = "x" * 500
    args = {"channel": "C0002", "thread_ts": "1.000100", "text": long_text, "blocks": blocks}
    shown = render_call("chat.postMessage", args, NAMES)
    assert shown == (
        "── #ops · reply in thread 1.000100 ──\n"
        ":fire: *[FIRING:1] Fire*\n"
        "  Status: firing · Alerts: 1 firing\n"
        "  From hook *alerts* · `/hook log alerts`\n"
        "  [Run now] [Pause]"
    )
    plain = render_call("chat.postMessage", {"channel": "C0002", "text": long_text}, NAMES)
    assert plain is not None and long_text in plain  # never cut at 200 characters


def test_ephemeral_edits_and_reactions_say_who_sees_what() -> None:
    ephemeral = {"channel": "D0001", "user": "U0001", "text": "Added *site*"}
    assert render_call("chat.postEphemeral", ephemeral, NAMES) == (
        "── DM with @ada · only visible to @ada ──\nAdded *site*"
    )
    edit = {"channel": "C0001", "ts": "1.2", "text": "Created by <@U0001>."}
    assert render_call("chat.update", edit, NAMES) == (
        "── #general · message 1.2 edited ──\nCreated by @ada."
    )
    react = {"channel": "C0002", "timestamp": "1.2", "name": "white_check_mark"}
    assert render_call("reactions.add", react, NAMES) == (
        "── #ops · :white_check_mark: added to 1.2 ──"
    )
    assert render_call("users.info", {"user": "U0001"}, NAMES) is None


def test_a_form_shows_its_fields_their_ids_and_its_buttons() -> None:
    form = modals.TriggerForm("site", "http", None, "every 5m", None, "C0002", None, None)
    view = modals.trigger_modal(form, user_zone="Europe/Berlin")
    shown = render_call("views.open", {"view": view}, NAMES)
    assert shown is not None
    assert shown.startswith('── form "New trigger" opened ──\nName: “site”\n    field `name`')
    assert "What should it do?: one of *http* | rss | json | csv | message | report" in shown
    assert "When: “every 5m”" in shown and "Post in (optional): #ops" in shown
    assert shown.endswith("[Create] [Cancel]")


# ----- what say sends ------------------------------------------------------------------------


def test_typed_text_is_escaped_and_linked_as_slack_sends_it() -> None:
    assert local.as_slack_sends("check https://example.com/a?b=1&c=2 if latency > 500ms") == (
        "check <https://example.com/a?b=1&amp;c=2> if latency &gt; 500ms"
    )


def test_a_dm_and_a_mention_are_events_as_slack_sends_them() -> None:
    dm = json.loads(local.event_body("dm", "hi", ADA, "UBOT"))
    assert dm["type"] == "event_callback" and dm["event"]["channel_type"] == "im"
    assert (dm["event"]["channel"], dm["event"]["text"]) == ("D0001", "hi")
    mention = json.loads(local.event_body("mention", "hi", ADA, "UBOT"))
    assert (mention["event"]["type"], mention["event"]["text"]) == ("app_mention", "<@UBOT> hi")
    assert dm["event_id"] != mention["event_id"]


def workspace(*surfaces: dict[str, Any]) -> local.Workspace:
    return local.Workspace("T0001", "UBOT", NAMES, list(surfaces))


def message(seq: int, channel: str, ts: str, *labels: str, **extra: Any) -> dict[str, Any]:
    buttons = [ui.button(label, f"act_{label.lower()}", str(seq)) for label in labels]
    content = {"ts": ts, "text": "t", "blocks": [ui.actions(buttons)] if buttons else []}
    return {"seq": seq, "kind": "message", "channel": channel, "ts": ts, "content": content} | extra


def test_a_click_is_the_newest_matching_button_read_as_the_bot_reads_clicks() -> None:
    shown = workspace(
        message(1, "C0001", "1.1", "Create", "Cancel"),
        message(2, "D0001", "1.2", "Create"),
        message(3, "C0002", "1.3", "Run now"),
    )
    button = local.find_button(shown, "create", "U0001")
    assert (button.surface["ts"], button.element["value"]) == ("1.2", "2")
    click = Click.from_body(payload_of(local.click_body(button, ADA, "http://fake/response/x")))
    assert (click.user_id, click.channel_id, click.message_ts, click.number) == (
        "U0001",
        "D0001",
        "1.2",
        2,
    )


def test_an_edited_message_is_clicked_as_it_is_now_and_others_ephemerals_are_not_seen() -> None:
    shown = workspace(
        message(1, "C0001", "1.1", "Create"),
        message(2, "C0001", "1.1"),  # the proposal, replaced by "Created by …"
        message(3, "C0001", "9.9", "Delete", kind="ephemeral", user="U0002"),
    )
    with pytest.raises(local.SayError, match='no button "Create"') as refused:
        local.find_button(shown, "Create", "U0001")
    assert "Delete" not in str(refused.value)


def modal_surface() -> dict[str, Any]:
    view = modals.trigger_modal(None, user_zone="Europe/Berlin")
    return {"seq": 1, "kind": "view", "view_id": "V1", "content": view | {"id": "V1"}}


def test_a_submitted_form_reads_back_as_the_bot_reads_forms() -> None:
    shown = workspace(modal_surface())
    form = local.open_form(shown)
    answers = local.parse_answers(
        [
            "name=site",
            "What should it do?=Check a website (http)",
            "schedule=every 5m",
            "target=https://example.com",
            "channel=#ops",
        ]
    )
    payload = payload_of(local.submit_body(form, answers, ADA, shown))
    assert payload["type"] == "view_submission"
    assert submitted_values(payload["view"]) == {
        "name": "site",
        "kind": "http",
        "target": "https://example.com",
        "schedule": "every 5m",
        "channel": "C0002",
    }


def test_a_field_the_form_lacks_and_a_choice_it_lacks_are_named() -> None:
    shown = workspace(modal_surface())
    form = local.open_form(shown)
    with pytest.raises(local.SayError, match='no field "colour"; its fields are name, kind'):
        local.submit_body(form, {"colour": "red"}, ADA, shown)
    with pytest.raises(local.SayError, match='"ftp" is not one of the choices: http, rss'):
        local.submit_body(form, {"kind": "ftp"}, ADA, shown)
    with pytest.raises(local.SayError, match="not FIELD=VALUE"):
        local.parse_answers(["site"])
    with pytest.raises(local.SayError, match="has not opened a form"):
        local.open_form(workspace())


def test_the_state_file_is_found_here_or_by_port_and_its_absence_is_explained(
    tmp_path: Any,
) -> None:
    here, per_port = local.state_paths(tmp_path / "a", tmp_path / "run", 3917)
    (tmp_path / "a").mkdir()
    state = local.LocalState("http://127.0.0.1:3917", "s3cret", "http://127.0.0.1:1", 3917)
    local.write_state(state, [per_port])
    assert per_port.stat().st_mode & 0o777 == 0o600
    assert local.find_state([here, per_port], why="PORT=3917") == state
    local.forget_state("another bot's secret", [per_port])
    assert per_port.exists()
    local.forget_state("s3cret", [here, per_port])
    with pytest.raises(local.SayError) as missing:
        local.find_state([here, per_port], why="PORT=3917")
    assert str(here) in str(missing.value) and str(per_port) in str(missing.value)
    assert "PORT=3917" in str(missing.value)
