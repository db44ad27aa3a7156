"""The phrasing table: requests as different people write them, and what each must become.

`tests/fixtures/phrasings.tsv` holds each request with the exact command it must become,
the one question the bot must ask back, or the part a refusal must name. Every row is
read as a DM would be (`understand` with ``ask_for_channel``) and scored:

* correct: the command (compared as the spec ``/trigger add`` or ``/hook create`` gives),
  the question's slot, or the refusal's part, exactly as the row says;
* wrong: a proposal other than the one expected (or one where a question or a refusal
  was expected): the outcome the issue allows none of;
* asked: a question where a command was expected (safe, but one click more);
* refused: a refusal where a command or a question was expected.

``python -m tests.test_phrasings`` prints the figures (and the rows that were not correct).
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from bot.conversation import spoken_actions
from bot.conversation.changes import Candidate, read_change
from bot.conversation.questions import Question
from bot.conversation.reading import strip_filler
from bot.conversation.understand import HookProposal, NotUnderstood, TriggerProposal, understand
from bot.slack.text import parse_channel
from bot.triggers.grammar import parse_trigger_add
from bot.webhooks.spec import HookSpec

TABLE = Path(__file__).parent / "fixtures" / "phrasings.tsv"
NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)  # a Friday, 11:00 in Berlin
BERLIN = ZoneInfo("Europe/Berlin")
MIN_INTERVAL = timedelta(seconds=60)
ME = "U0ME"
# What U0ME's team already has, for the rows about actions (see the table's comment).
ACTIONS = ("restart-api", "crm", "inventory")
THINGS = (
    Candidate("trigger", 1, "site", "http", "site.example.com / http"),
    Candidate("trigger", 2, "leads", "json", "crm.example.com /api/leads json"),
    Candidate("trigger", 3, "blog", "rss", "example.com /blog/feed rss"),
    Candidate("trigger", 4, "standup", "message", "Standup time! message"),
    Candidate("hook", 5, "form", "hook", "auto hook"),
    Candidate("hook", 6, "deploys", "hook", "github hook"),
)
_ACTION_ROW = re.compile(r"^(?:/action |/trigger set |/hook set |\? (?:thing|params|which)$)")

Outcome = Literal["correct", "wrong", "asked", "refused"]
_URL = re.compile(r"(?<![<|\w])(https?://[^\s<>'’]+?)(?=[.,;!?)]*(?:\s|$|'|’))")
_MAIL = re.compile(r"(?<![<:|\w.])([\w.+-]+@[\w-]+(?:\.[\w-]+)+)")


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    said: str
    expected: str

    @property
    def as_slack_sends_it(self) -> str:
        """Links and mail addresses the way Slack delivers them in a message event."""
        linked = _URL.sub(r"<\1>", self.said)
        return _MAIL.sub(r"<mailto:\1|\1>", linked)


def rows() -> list[Row]:
    lines = TABLE.read_text(encoding="utf-8").splitlines()
    table = [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]
    return [Row(said.strip(), expected.strip()) for said, expected in table]


Heard = (
    TriggerProposal | HookProposal | Question | NotUnderstood | spoken_actions.Proposed
    | spoken_actions.Unsure
)  # fmt: skip


def heard(row: Row) -> Heard:
    """What the bot makes of the row: about actions first (as the conversation reads it),
    else a request to set something up."""
    about_actions = spoken_actions.answer(strip_filler(row.as_slack_sends_it), ACTIONS, THINGS)
    if about_actions is not None:
        return about_actions
    return understand(
        row.as_slack_sends_it,
        default_tz=BERLIN,
        now=NOW,
        min_interval=MIN_INTERVAL,
        user_id=ME,
        ask_for_channel=True,
    )


def expected_hook(command: str) -> HookSpec:
    """``/hook create NAME [#channel] [preset=X]`` as the hook it creates."""
    words = command.split()[2:]
    channel = next((w for w in words if w.startswith("#")), None)
    preset = next((w.split("=", 1)[1] for w in words if w.startswith("preset=")), "auto")
    ref = parse_channel(channel) if channel else None
    return HookSpec(words[0], None if ref is None else ref.target, preset)


def outcome(row: Row) -> tuple[Outcome, str]:
    """How the row was understood, and what the bot did (for the report)."""
    answer = heard(row)
    got = _shown(answer)
    expected = row.expected
    if isinstance(answer, spoken_actions.Proposed):
        return ("correct" if answer.command == expected else "wrong"), got
    if isinstance(answer, spoken_actions.Unsure):
        if expected.startswith("?"):
            return ("correct" if expected[1:].strip() == answer.slot else "wrong"), got
        return ("asked" if expected.startswith("/") else "wrong"), got
    if _ACTION_ROW.match(expected):  # about actions, read as setting something new up
        if isinstance(answer, Question):
            return "asked", got
        return ("refused" if isinstance(answer, NotUnderstood) else "wrong"), got
    if isinstance(answer, NotUnderstood):
        if expected.startswith("!"):
            part = expected[1:].strip()
            return ("correct" if part in answer.part or part == answer.part else "refused"), got
        return "refused", got
    if isinstance(answer, Question):
        if expected.startswith("?"):
            return ("correct" if expected[1:].strip() == answer.slot else "asked"), got
        return ("asked" if expected.startswith("/") else "wrong"), got
    if expected.startswith("/hook"):
        same = isinstance(answer, HookProposal) and answer.spec == expected_hook(expected)
        return ("correct" if same else "wrong"), got
    if not expected.startswith("/trigger") or not isinstance(answer, TriggerProposal):
        return "wrong", got
    return ("correct" if _same_trigger(answer, expected) else "wrong"), got


def _same_trigger(answer: TriggerProposal, expected: str) -> bool:
    command = expected.removeprefix("/trigger add ")
    wants_template = command.endswith(" +template")
    command = command.removesuffix(" +template").replace("<", "&lt;").replace(">", "&gt;")
    command = re.sub(r"&lt;@(U\w+)&gt;", r"<@\1>", command)
    spec = parse_trigger_add(command, default_tz=BERLIN, now=NOW, min_interval=MIN_INTERVAL)
    return answer.spec == spec and (answer.template is not None) == wants_template


def _shown(answer: Heard) -> str:
    if isinstance(answer, spoken_actions.Proposed):
        return answer.command
    if isinstance(answer, spoken_actions.Unsure):
        return f"? {answer.slot}: {answer.text}"
    if isinstance(answer, TriggerProposal):
        spec = answer.spec
        return (
            f"{spec.name} | {spec.schedule.describe()} | {spec.kind} {spec.target} | "
            f"when {spec.condition} | {spec.channel} | {dict(spec.options)}"
        )
    if isinstance(answer, HookProposal):
        return f"hook {answer.spec}"
    if isinstance(answer, Question):
        return f"? {answer.slot}: {answer.text}"
    return f"! {answer.part!r}: {answer.reason}"


def score() -> tuple[Counter[Outcome], list[tuple[Row, Outcome, str]]]:
    """The counts, and the rows that were not correct."""
    counts: Counter[Outcome] = Counter()
    misses: list[tuple[Row, Outcome, str]] = []
    for row in rows():
        result, got = outcome(row)
        counts[result] += 1
        if result != "correct":
            misses.append((row, result, got))
    return counts, misses


def report(counts: Counter[Outcome]) -> str:
    total = sum(counts.values())
    shares = ", ".join(
        f"{name} {counts[name]} ({counts[name] / total:.1%})"
        for name in ("correct", "wrong", "asked", "refused")
    )
    return f"{total} requests: {shares}"


def test_the_table_is_understood_as_written() -> None:
    counts, misses = score()
    print(report(counts))
    for row, result, got in misses:
        print(f"{result}: {row.said!r}\n    expected {row.expected}\n    got      {got}")

    assert sum(counts.values()) >= 300
    assert counts["wrong"] == 0, [m for m in misses if m[1] == "wrong"]
    assert counts["correct"] / sum(counts.values()) >= 0.95


def test_every_calendar_schedule_names_its_zone_and_every_default_is_said() -> None:
    for row in rows():
        answer = heard(row)
        if not isinstance(answer, TriggerProposal):
            continue
        schedule = answer.spec.schedule
        if schedule.kind != "interval":  # a wall-clock time always says its zone
            assert schedule.tz_name in schedule.describe(), row.said
        if " at 9:00" in row.expected and not re.search(r"\b0?9(?::00)?\s*(?:am)?\b", row.said):
            assert answer.notes, row.said  # a 9:00 nobody said is a default, said aloud


def test_no_request_to_set_something_up_is_taken_for_a_change() -> None:
    """A DM is first read as a change to an existing thing ("pause the standup reminder");
    none of the table's requests may be answered that way instead."""
    for row in rows():
        if row.expected.startswith("!") or _ACTION_ROW.match(row.expected):
            continue  # a refusal, or about actions (read before changes: see the next test)
        change = read_change(strip_filler(row.as_slack_sends_it))
        assert change is None or not change.strong, row.said


def test_no_change_or_new_request_is_taken_for_an_action() -> None:
    """Requests about actions are read before changes, so every other row must pass by
    them untouched ("pause the standup reminder", "run the site check now")."""
    for row in rows():
        if _ACTION_ROW.match(row.expected):
            continue
        said = strip_filler(row.as_slack_sends_it)
        assert spoken_actions.answer(said, ACTIONS, THINGS) is None, row.said
    for change in ("pause the standup reminder", "run the site check now", "show me the blog"):
        assert spoken_actions.answer(change, ACTIONS, THINGS) is None, change


def test_an_action_and_a_trigger_of_one_name_are_asked_apart() -> None:
    named_crm = (*THINGS, Candidate("trigger", 9, "crm", "json", "crm.example.com json"))
    for said in ("run crm now", "show crm", "what did crm do"):
        answer = spoken_actions.answer(said, ACTIONS, named_crm)
        assert isinstance(answer, spoken_actions.Unsure) and answer.slot == "which", said
    answer = spoken_actions.answer("run the crm action now", ACTIONS, named_crm)
    assert isinstance(answer, spoken_actions.Proposed) and answer.command == "/action run crm"
    assert spoken_actions.answer("run the crm trigger now", ACTIONS, named_crm) is None


if __name__ == "__main__":
    found, not_correct = score()
    if "-v" in sys.argv:
        for row, result, got in not_correct:
            print(f"{result}: {row.said!r}\n    expected {row.expected}\n    got      {got}")
    print(report(found))
