"""``/trigger``: schedule checks, feeds, reminders and reports from Slack.

Each subcommand parses its words into typed values once (`bot.triggers.grammar` for
``add``), hands them to `TriggerService`, and answers privately. Bad input becomes a
reply naming the part that could not be understood, with a command that works. The
sentences said about a trigger (`added_text`, `describe_state`, …) are module functions,
so buttons and forms say the same things.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.ai.steps import AISteps, help_line
from bot.audit import Actor, note_in
from bot.clock import Clock
from bot.config import Settings
from bot.credentials.redact import MASK, mask_url_credentials, url_carries_credentials
from bot.db import Database
from bot.errors import SpecError, UsageError
from bot.glance import trigger_drawing
from bot.limits import ManualLimits
from bot.models import Trigger, TriggerRun
from bot.outbox import Message, Outbox
from bot.slack.blocks import channel_mention, escape_mrkdwn, plural
from bot.slack.channels import unknown_channel_note
from bot.slack.slash import Command, Reply, Subcommand, run_subcommand
from bot.slack.text import parse_key_values
from bot.slack.users import UserDirectory
from bot.status import describe_health, read_health
from bot.triggers import email
from bot.triggers.evaluate import TriggerState, state_from_dict
from bot.triggers.grammar import (
    TriggerSyntaxError,
    parse_duration,
    parse_trigger_add,
)
from bot.triggers.reporting import template_from_slack
from bot.triggers.rollups import recent_rollups, shows_uptime
from bot.triggers.runner import NotRun, RunResult, TriggerRunner
from bot.triggers.schedule import Schedule, local_time, schedule_from_dict
from bot.triggers.scheduling import TriggerScheduling
from bot.triggers.service import TriggerService
from bot.triggers.settings import SETTINGS, describe, example_settings, read_settings
from bot.triggers.spec import TriggerSpec

CLOCK_TIME = re.compile(r"^(\d{1,2})(?::(\d{2}))?\s*(am|pm)?$", re.I)
SNOOZE = timedelta(hours=1)

HELP = """*Triggers* — the bot checks something on a schedule and reports only what changed.
• `/trigger add site every 5m http https://example.com` — down once, recovered once
• `/trigger add site every 5m http https://example.com when latency > 500ms retries=3 #ops`
• `/trigger add blog every 30m rss https://example.com/feed.xml #news` — each new item once
• `/trigger add status every 5m json https://status.example.com/api/v2/status.json when json.status.indicator != "none"`
• `/trigger add standup every weekday at 9:30 message "Standup in 5 minutes" #team`
• `/trigger add weekly every monday at 9am report #ops`
• `/trigger add support every 5m email imaps://support%40example.com@imap.example.com/INBOX auth=basic:support-mail #support` — each new mail once (read-only)
• `/trigger route support from_domain == "bigcorp.com" → #sales` · `/trigger route support` lists · `/trigger unroute support 1`
*Reports from data* — a template makes a json, csv or http trigger post what it found on every run:
• `/trigger add sales every day at 9am json https://shop.example.com/api/reports/sales?period=yesterday auth=bearer:shop-token #sales`, then `/trigger template sales *Sales {{ json.date|date('%A') }}:* {{ json.total|money('EUR') }} from {{ json.orders|number }} orders ({{ json.total|change(previous.total) }})`
• `/trigger add leads every day at 23:00 json https://crm.example.com/api/leads?status=new auth=bearer:crm-token each=data key=id #sales`, then `/trigger template leads New lead: *{{ item.name }}* ({{ item.company }}) {{ item.email }}` — each new lead once
• `/trigger add weekly every monday at 9am csv https://example.com/export/weekly.csv #ops`, then `/trigger template weekly *Weekly numbers* {{ rows|table('region, orders, revenue') }}`
In a template: `json` (or `rows`), `status`, `headers`, `previous` (the last run's data), `now`, `trigger`, and `item` in a scan; filters `number`, `money('EUR')`, `percent`, `change(previous.x)`, `date('%a %d %b')`, `table(columns)`, `history('json.total', 14)|sparkline`, plus `sum`, `sort`, `groupby`, `map`. `/trigger template NAME clear` goes back to alerts only.
Schedules: `every 1m|5m|2h|1d`, `every day at 17:30`, `every mon,wed,fri at 8am`, `every month on the 1st at 9am`, `every month on the last friday at 9am`, `cron "0 9 * * 1-5"`, `at 2026-12-01 09:00`, `in 2 hours`, `tomorrow at 9am`, plus `tz Europe/Berlin`.
Options: `retries=3 recover=2 repeat=30m max=3 timeout=5s latest=1`; requests: `auth=bearer:NAME` `header.X-Api-Key=secret:NAME` (see `/secret`) `method=POST body={...} query.status=new pages=10 next=meta.next_page_url each=PATH key=FIELD`.
Settings: `/trigger set NAME categorise="sales: buying or prices; support: problems; spam" summary=on|off` — the AI picks one label per new item (`key=` with nothing clears a setting).
Actions: `/trigger set NAME then=ACTION on=problem|recover|item|always buttons=ACTION` — run actions (`/action help`) when the trigger sees a problem, a recovery, each new item or every run; `buttons=` puts them under its alerts.
Manage: `/trigger list` · `/trigger status` · `show NAME` · `history NAME` · `run NAME` · `pause NAME` · `resume NAME` · `mute NAME 2h` · `mute NAME until 18:00` · `unmute NAME` · `template NAME …` · `delete NAME` · `/trigger edit NAME` (a form)"""


@dataclass
class TriggerSlash:
    """The ``/trigger`` slash command."""

    settings: Settings
    db: Database
    clock: Clock
    service: TriggerService
    runner: TriggerRunner
    scheduling: TriggerScheduling
    users: UserDirectory
    outbox: Outbox
    limits: ManualLimits
    ai: AISteps | None = None

    async def __call__(self, command: Command) -> Reply:
        subcommands: dict[str, Subcommand] = {
            "add": self.add,
            "list": self.list_all,
            "show": self.show,
            "pause": self.pause,
            "resume": self.resume,
            "delete": self.delete,
            "run": self.run,
            "history": self.history,
            "mute": self.mute,
            "unmute": self.unmute,
            "status": self.status,
            "set": self.set,
            "route": self.route,
            "unroute": self.unroute,
            "template": self.template,
        }
        return await run_subcommand(
            command, "/trigger", subcommands, f"{HELP}\n{help_line(self.ai)}"
        )

    async def parse(self, actor: Actor, text: str) -> TriggerSpec:
        """Read ``/trigger add`` text (what follows ``add``, Slack-escaped) as ``actor``
        would mean it (their time zone); `SpecError` naming the part at fault."""
        try:
            return parse_trigger_add(
                text,
                default_tz=await self.users.zone(actor.user_id),
                now=self.clock.now(),
                min_interval=timedelta(seconds=self.settings.trigger_min_interval),
            )
        except TriggerSyntaxError as error:
            raise SpecError(str(error), field=error.field, part=error.part) from None

    async def add(self, command: Command, _words: list[str], rest: str) -> Reply:
        spec = await self.parse(command.actor, rest)
        trigger = await self.service.create(command.actor, spec)
        return Reply(added_text(trigger, spec.schedule) + credentials_hint(trigger))

    async def template(self, command: Command, words: list[str], rest: str) -> Reply:
        """``/trigger template NAME TEMPLATE|clear``: what a json, csv or http trigger posts."""
        trigger = await self._named(command, words, "template")
        source = template_from_slack(_after_name(rest))
        if not source:
            return Reply(template_text(trigger))
        if source.lower() == "clear":
            trigger = await self.service.set_template(command.actor, trigger, None)
            return Reply(f"*{trigger.name}* alerts only on problems again.")
        trigger = await self.service.set_template(command.actor, trigger, source)
        return Reply(template_set_text(trigger))

    async def list_all(self, command: Command, _words: list[str], _rest: str) -> Reply:
        triggers = await self.service.all_of(command.team_id)
        if not triggers:
            return Reply(
                "No triggers yet. Try `/trigger add site every 5m http https://example.com`"
            )
        now = self.clock.now()
        zone = await self.users.zone(command.user_id)
        lines = [
            f"• *{t.name}* — {t.kind} · {schedule_from_dict(t.schedule).describe()} · "
            f"next: {next_run_text(t)} · {describe_state(t, now, zone)}"
            for t in triggers
        ]
        return Reply("*Triggers*\n" + "\n".join(lines))

    async def show(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._named(command, words, "show")
        schedule = schedule_from_dict(trigger.schedule)
        upcoming = upcoming_runs(trigger, 3)
        runs = await self.service.runs(trigger, 5)
        zone = await self.users.zone(command.user_id)
        # A URL may carry a password or an API key: only who may change it sees it whole.
        masked = not await self.service.may_change(command.actor, trigger)
        lines = [
            f"*{trigger.name}* — {describe_target(trigger, masked=masked)} → "
            f"{channel_mention(trigger.channel_id)}",
            f"*Schedule:* {schedule.describe()}",
            "*Next runs:* "
            + (
                ", ".join(local_time(when, schedule.tz) for when in upcoming)
                or ("none (paused)" if trigger.paused else "none")
            ),
            f"*State:* {describe_state(trigger, self.clock.now(), zone)}",
            *(await self._glance(trigger, zone)),
            f"*Options:* {options_text(trigger, masked=masked)}",
            settings_line(trigger),
            *(
                [f"*Template:* `{escape_mrkdwn(trigger.template[:300])}`"]
                if trigger.template
                else []
            ),
            f"*Last change:* {note_in(trigger.last_change, zone)}",
            "*Last runs:*" if runs else "*Last runs:* none yet",
            *(run_line(run, schedule.tz) for run in runs),
        ]
        return Reply("\n".join(lines))

    async def _glance(self, trigger: Trigger, zone: ZoneInfo) -> tuple[str, ...]:
        """Uptime and latency at a glance, from the hourly roll-ups (`bot.glance`)."""
        if trigger.id is None or not shows_uptime(trigger):
            return ()
        now = self.clock.now()
        rollups = await recent_rollups(self.db, [trigger.id], now)
        return trigger_drawing(rollups.get(trigger.id, []), now, zone).lines

    async def route(self, command: Command, words: list[str], rest: str) -> Reply:
        """``/trigger route NAME RULE → #channel`` adds a rule; ``/trigger route NAME`` lists."""
        if len(words) <= 1:
            return Reply(email.routes_text(await self._named(command, words, "route")))
        parsed = email.parse_route(rest)
        trigger = await self.service.named(command.team_id, parsed.name, verb="route")
        trigger = await self.service.add_route(command.actor, trigger, parsed.rule, parsed.channel)
        added = len(email.routes_of(trigger))
        return Reply(f"Added rule {added} to *{trigger.name}*.\n{email.routes_text(trigger)}")

    async def unroute(self, command: Command, words: list[str], _rest: str) -> Reply:
        """``/trigger unroute NAME N`` removes rule N."""
        trigger = await self._named(command, words, "unroute")
        if len(words) != 2 or not words[1].isdigit():
            raise UsageError(f"Which rule? Example: `/trigger unroute {trigger.name} 1`")
        trigger, _removed = await self.service.remove_route(command.actor, trigger, int(words[1]))
        return Reply(f"Removed rule {words[1]} of *{trigger.name}*.\n{email.routes_text(trigger)}")

    async def history(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._named(command, words, "history")
        return Reply(history_text(trigger, await self.service.runs(trigger, 20)))

    async def pause(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self.service.pause(
            command.actor, await self._named(command, words, "pause")
        )
        return Reply(paused_text(trigger))

    async def resume(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._named(command, words, "resume")
        return Reply(resumed_text(await self.service.resume(command.actor, trigger)))

    async def delete(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._named(command, words, "delete")
        await self.service.delete(command.actor, trigger)
        return Reply(f"Deleted *{trigger.name}*.")

    async def run(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._named(command, words, "run")
        return Reply(await self.run_for(command.actor, trigger))

    async def run_for(self, actor: Actor, trigger: Trigger) -> str:
        """Run ``trigger`` by hand for ``actor`` (``/trigger run``, the Run now button).

        Who may change it gets a real run (which posts what changed in its channel); anyone
        else gets its check only, told privately: nothing is posted and its state is kept.
        A trigger runs by hand once at a time, and a person starts a few runs a minute.
        """
        assert trigger.id is not None
        thing = f"trigger:{trigger.id}"
        self.limits.admit(actor.user_id, thing)
        self.limits.running(thing)
        if await self.service.may_change(actor, trigger):
            self.run_and_tell(actor, trigger, thing)
            return f"Running *{trigger.name}* now; I'll tell you the result here."
        self.runner.background.spawn(self._check_and_tell(actor, trigger, thing))
        return (
            f"Checking *{trigger.name}* for you now; I'll tell you what it sees here. (Only "
            f"<@{trigger.created_by}> or an admin can run it for everyone.)"
        )

    def run_and_tell(self, actor: Actor, trigger: Trigger, thing: str) -> None:
        """Run ``trigger`` now, in the background, and tell ``actor`` the result privately."""

        async def tell(result: RunResult | NotRun | None) -> None:
            self.limits.finished(thing)
            await self._tell(actor, ran_text(trigger, result))

        assert trigger.id is not None
        self.runner.run_in_background(trigger.id, tell)

    async def _check_and_tell(self, actor: Actor, trigger: Trigger, thing: str) -> None:
        try:
            observation = await self.runner.check_only(trigger)
        finally:
            self.limits.finished(thing)
        await self._tell(actor, f"*{trigger.name}* (checked for you only): {observation.summary}")

    async def _tell(self, actor: Actor, text: str) -> None:
        await self.outbox.send(
            Message(actor.channel_id, text, kind="ephemeral", user=actor.user_id)
        )

    async def status(self, command: Command, _words: list[str], _rest: str) -> Reply:
        """How the bot itself is doing: scheduler lag, overdue runs, the outbox, last
        activity, and the AI step's budget."""
        now = self.clock.now()
        health = await read_health(self.db, now)
        text = describe_health(
            health,
            leader=self.scheduling.leading,
            lateness=self.runner.last_lateness,
            now=now,
            zone=await self.users.zone(command.user_id),
        )
        ai = await self.ai.status(command.team_id) if self.ai else "AI: off (rules only)"
        return Reply(f"{text}\n{ai}")

    async def set(self, command: Command, words: list[str], _rest: str) -> Reply:
        """``/trigger set NAME key=value …``: change a trigger's settings (`SETTINGS`)."""
        trigger = await self._named(command, words, "set")
        options, extra = parse_key_values(words[1:])
        if extra or not options:
            raise UsageError(
                f"`/trigger set` takes settings as key=value ({', '.join(SETTINGS)}). "
                f"Example: `/trigger set {trigger.name} {example_settings()}`"
            )
        settings = read_settings(options)
        trigger = await self.service.change_settings(command.actor, trigger, settings)
        said = escape_mrkdwn(settings.describe())
        asks_ai = any(value is not None for value in settings.changes.values())
        no_ai = f"\n{help_line(None)}" if asks_ai and not (self.ai and self.ai.enabled) else ""
        return Reply(f"Updated *{trigger.name}*: {said}{no_ai}")

    async def mute(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self._named(command, words, "mute")
        zone = await self.users.zone(command.user_id)  # "until 18:00" is the person's 18:00
        until = self._mute_until(words[1:], zone, trigger.name)
        trigger = await self.service.mute(command.actor, trigger, until)
        return Reply(muted_text(trigger, until, zone))

    async def unmute(self, command: Command, words: list[str], _rest: str) -> Reply:
        trigger = await self.service.unmute(
            command.actor, await self._named(command, words, "unmute")
        )
        return Reply(
            f"Unmuted *{trigger.name}*; the next run reports anything that changed meanwhile."
        )

    def _mute_until(self, words: list[str], tz: ZoneInfo, name: str) -> datetime:
        example = f"`/trigger mute {name} 2h` or `/trigger mute {name} until 18:00`"
        now = self.clock.now()
        if len(words) == 2 and words[0].lower() == "until":
            match = CLOCK_TIME.match(words[1])
            if match is None:
                raise UsageError(
                    f"I couldn't understand `{words[1]}` as a time of day. Try {example}"
                )
            return _next_clock_time(match, now, tz)
        if len(words) == 1:
            try:
                return now + parse_duration(words[0])
            except ValueError:
                pass
        raise UsageError(f"For how long? Try {example}")

    async def _named(self, command: Command, words: list[str], verb: str) -> Trigger:
        return await self.service.named(command.team_id, words[0] if words else "", verb=verb)


def _after_name(rest: str) -> str:
    """What follows the trigger's name in the command text (still Slack-escaped)."""
    parts = rest.split(None, 1)
    return parts[1] if len(parts) == 2 else ""


def _next_clock_time(match: re.Match[str], now: datetime, tz: ZoneInfo) -> datetime:
    hour, minute, meridiem = (
        int(match.group(1)),
        int(match.group(2) or 0),
        (match.group(3) or "").lower(),
    )
    if meridiem == "pm" and hour < 12:
        hour += 12
    if meridiem == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        raise UsageError("That time of day doesn't exist. Example: `until 18:00`")
    local = now.astimezone(tz)
    target = datetime.combine(local.date(), time(hour, minute), tzinfo=tz)
    if target <= local:
        target += timedelta(days=1)
    return target.astimezone(now.tzinfo)


# What is said about triggers, wherever it is said from.


def added_text(trigger: Trigger, schedule: Schedule) -> str:
    """The answer to creating ``trigger``."""
    return (
        f"Added {summary_text(trigger, schedule)}{unknown_channel_note(trigger.channel_id)}"
        f"{template_hint(trigger)}"
    )


def template_hint(trigger: Trigger) -> str:
    """What to do next with a json, csv or http trigger that has no template yet."""
    if trigger.template or trigger.kind not in ("json", "csv") or trigger.condition:
        return ""
    if "each" in trigger.options:
        return (
            f" Each new item is posted with its name; `/trigger template {trigger.name} …` "
            "says how (`item` is the item)."
        )
    return (
        f" It alerts only when the fetch fails until you say what to post: "
        f"`/trigger template {trigger.name} …` (`/trigger help` has examples)."
    )


def template_set_text(trigger: Trigger) -> str:
    """The answer to setting a trigger's template."""
    what = "each new item" if "each" in trigger.options else "a report on every run"
    return (
        f"*{trigger.name}* now posts {what} with your template. "
        f"See it now: `/trigger run {trigger.name}`."
    )


def template_text(trigger: Trigger) -> str:
    """The answer to ``/trigger template NAME`` alone."""
    example = f"`/trigger template {trigger.name} *{{{{ json.total|number }}}}* orders`"
    if not trigger.template:
        return f"*{trigger.name}* has no template. Give one after the name, e.g. {example}"
    return (
        f"*{trigger.name}* posts with `{escape_mrkdwn(trigger.template[:1000])}`. "
        f"Give another after the name, or `/trigger template {trigger.name} clear`."
    )


def updated_text(trigger: Trigger) -> str:
    """The answer to redefining ``trigger``."""
    summary = summary_text(trigger, schedule_from_dict(trigger.schedule))
    return f"Updated {summary}{unknown_channel_note(trigger.channel_id)}"


def summary_text(trigger: Trigger, schedule: Schedule) -> str:
    """``*site*: checks https://…, every 5 minutes — next: …, reporting in #ops.``"""
    return (
        f"*{trigger.name}*: {describe_target(trigger)}, "
        f"{describe_when(schedule, trigger.next_run_at)}, "
        f"reporting in {channel_mention(trigger.channel_id)}."
    )


def options_text(trigger: Trigger, *, masked: bool) -> str:
    """``retries=3 auth=bearer:crm-token …``; masked, a query value or a request body (as
    much a place for a credential as a URL's query) is shown as ``••••``."""
    shown = [
        f"{key}={MASK}"
        if masked and (key.startswith("query.") or key == "body")
        else f"{key}={value}"
        for key, value in trigger.options.items()
    ]
    return " ".join(shown) or "defaults"


def credentials_hint(trigger: Trigger) -> str:
    """A nudge when a URL carries what looks like a password or an API key."""
    # An email trigger's URL names only the user (a password in it is refused).
    if trigger.kind == "email" or not trigger.target:
        return ""
    if not url_carries_credentials(trigger.target):
        return ""
    return (
        "\n:lock: That URL seems to carry a credential. Anyone can read it with `/trigger "
        "show` only masked, but it is stored as typed: a stored secret is safer, e.g. "
        "`/secret set my-token for HOST`, then `auth=bearer:my-token` or "
        "`header.X-Api-Key=secret:my-token`."
    )


def paused_text(trigger: Trigger) -> str:
    return f"Paused *{trigger.name}*. `/trigger resume {trigger.name}` starts it again."


def resumed_text(trigger: Trigger) -> str:
    schedule = schedule_from_dict(trigger.schedule)
    return f"Resumed *{trigger.name}*: {describe_when(schedule, trigger.next_run_at)}."


def muted_text(trigger: Trigger, until: datetime, zone: ZoneInfo) -> str:
    """The answer to muting ``trigger``, its end in the reader's ``zone``."""
    return (
        f"Muted *{trigger.name}* until {local_time(until, zone)}; it keeps checking, and I'll "
        "summarise what changed when the mute ends."
    )


def ran_text(trigger: Trigger, result: RunResult | NotRun | None) -> str:
    """What a manual run found, for the person who asked for it."""
    if result is None:
        return f"*{trigger.name}* could not run: something went wrong on my side (it is logged)."
    if isinstance(result, NotRun):
        return f"*{trigger.name}* was already running."
    text = f"*{trigger.name}* ran: {result.summary}"
    if result.announcements:
        said = plural(len(result.announcements), "change")
        text += f" (reported {said} in {channel_mention(trigger.channel_id)})"
    return text


def history_text(trigger: Trigger, runs: list[TriggerRun]) -> str:
    if not runs:
        return f"*{trigger.name}* hasn't run yet."
    tz = schedule_from_dict(trigger.schedule).tz
    return f"*Last {plural(len(runs), 'run')} of {trigger.name}*\n" + "\n".join(
        run_line(r, tz) for r in runs
    )


def settings_line(trigger: Trigger) -> str:
    """``*Settings:* categorise=sales, support · summary=on`` (what ``/trigger set`` set)."""
    stored = trigger.settings or {}
    said = " · ".join(f"{key}={describe(key, value)}" for key, value in stored.items())
    return f"*Settings:* {escape_mrkdwn(said) if said else 'none'}"


def describe_target(trigger: Trigger, *, masked: bool = False) -> str:
    """What the trigger does, in words; ``masked`` hides credentials in its URL."""
    if trigger.kind == "message":
        return f'posts "{trigger.target}"'
    if trigger.kind == "report":
        return "posts a report of webhooks and triggers"
    if trigger.kind == "email":
        return email.describe_mailbox(trigger)
    # Slack reads replies as mrkdwn: a condition's "<" or ">" must not open or close a link.
    condition = f" when {escape_mrkdwn(trigger.condition)}" if trigger.condition else ""
    verb = {"http": "checks", "rss": "watches the feed", "json": "watches", "csv": "reads"}[
        trigger.kind
    ]
    if "each" in trigger.options:  # reports from data: a scan, or a report
        verb = "posts each new item from"
    elif trigger.template:
        verb = "reports from"
    url = mask_url_credentials(trigger.target or "") if masked else trigger.target or ""
    return f"{verb} {escape_mrkdwn(url)}{condition}"


def describe_when(schedule: Schedule, next_run: datetime | None) -> str:
    nxt = local_time(next_run, schedule.tz) if next_run else "never (it is in the past)"
    return f"{schedule.describe()} — next: {nxt}"


def upcoming_runs(trigger: Trigger, count: int) -> list[datetime]:
    """The trigger's next ``count`` runs: the stored next run first (the one the scheduler
    will start, and that ``list``, replies and the App Home show), then the schedule's
    runs after it. None while paused."""
    if trigger.next_run_at is None or trigger.paused or count < 1:
        return []
    schedule = schedule_from_dict(trigger.schedule)
    return [trigger.next_run_at, *schedule.next_runs(trigger.next_run_at, count - 1)]


def next_run_text(trigger: Trigger) -> str:
    """The next run in the trigger's zone, or a dash when paused or none is due."""
    if trigger.next_run_at is None or trigger.paused:
        return "—"
    return local_time(trigger.next_run_at, schedule_from_dict(trigger.schedule).tz)


def describe_state(trigger: Trigger, now: datetime, zone: ZoneInfo) -> str:
    """``ok``, ``failing since …``, ``paused``, …, times in the reader's ``zone``."""
    if trigger.paused:
        return "paused"
    state = state_from_dict(trigger.state) if trigger.state else TriggerState.initial()
    text = {"unknown": "not run yet", "ok": "ok", "failing": "failing", "flapping": "flapping"}[
        state.status
    ]
    if state.since and state.status in ("failing", "flapping"):
        text += f" since {local_time(state.since, zone)}"
    if state.muted_until and state.muted_until > now:
        text += f" · muted until {local_time(state.muted_until, zone)}"
    return text


def run_line(run: TriggerRun, tz: ZoneInfo) -> str:
    return f"• {run.scheduled_for.astimezone(tz):%a %d %b %H:%M:%S %Z} · {run.duration_ms:.0f} ms · *{run.outcome}* · {run.summary}"
