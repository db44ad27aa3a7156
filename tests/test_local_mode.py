"""Local mode shows the whole bot: ``chatops-bot run`` and ``say`` as separate processes.

A person tries the bot as the README says, from a second terminal that may be in another
directory: talk to it (DM, mention), click what it shows, fill in its forms, and read in
the bot's terminal each message as Slack would show it.
"""

from __future__ import annotations

from pathlib import Path

from tests.test_app import LocalBot, free_port, run_cli


def test_talk_click_and_fill_in_forms_from_another_directory(tmp_path: Path) -> None:
    (tmp_path / "bot").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    bot = LocalBot(tmp_path / "bot")
    try:
        bot.wait_for_banner()
        asked = bot.say("--dm", "give me a webhook for github pushes in #ops", cwd=elsewhere)
        assert asked.code == 0, asked.stderr
        assert "── DM with @ada · new message" in asked.stdout
        assert "[Create] [Edit] [Cancel]" in asked.stdout

        created = bot.say("--click", "Create", cwd=elsewhere)
        assert created.code == 0, created.stderr
        assert "Created hook *github-ops* → #ops." in created.stdout  # #ops is C0002's link
        assert "message 1700000000" in created.stdout and "edited" in created.stdout
        shown = bot.say("/hook show github-ops", cwd=elsewhere).stdout
        assert "*github-ops* → #ops" in shown

        form = bot.say("/trigger", cwd=elsewhere)
        assert '── form "New trigger" opened ──' in form.stdout
        wrong = bot.say(
            "--submit", "name=site", "kind=http", "schedule=every fortnight", cwd=elsewhere
        )
        assert wrong.code == 1 and "schedule: " in wrong.stdout
        added = bot.say(
            "--submit",
            "name=standup",
            "kind=message",
            "target=Standup in 5 minutes",
            "schedule=every weekday at 9:30",
            "channel=#ops",
            cwd=elsewhere,
        )
        assert added.code == 0, added.stderr + added.stdout
        assert "Added *standup*" in added.stdout and "reporting in #ops" in added.stdout

        mentioned = bot.say("--mention", "remind #ops every monday at 9am: weekly", cwd=elsewhere)
        assert "── #general · new message" in mentioned.stdout
        missing = bot.say("--click", "Launch", cwd=elsewhere)
        assert missing.code == 2 and 'no button "Launch"' in missing.stderr
        assert '"Create"' in missing.stderr  # it says which buttons there are
    finally:
        printed = bot.stop()
    # The bot's terminal shows each surface as a person would see it, whole.
    assert "── DM with @ada · new message ──\nHere's what I understood:" in printed
    assert "  [Create] [Edit] [Cancel]" in printed
    assert '── form "New trigger" opened ──' in printed and "field `schedule`" in printed
    assert "── App Home of @ada published ──" in printed
    assert "[slack chat.postMessage" not in printed  # the old one-line fallback text
    assert not list((tmp_path / "bot" / "run").glob("**/local-*.json"))  # cleaned up


def test_say_names_the_places_it_looked_when_no_bot_runs(tmp_path: Path) -> None:
    port = str(free_port())
    result = run_cli(
        {"PORT": port, "XDG_RUNTIME_DIR": str(tmp_path / "run")}, "say", "/hook help", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "not running in local mode" in result.stderr
    assert str(tmp_path / ".chatops-local.json") in result.stderr
    assert str(tmp_path / "run" / "chatops-bot" / f"local-{port}.json") in result.stderr
    assert f"PORT={port}" in result.stderr and "Traceback" not in result.stderr
