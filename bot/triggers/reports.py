"""One run of a trigger that reports data: fetch the pages (`bot.triggers.fetching`),
decide what to say (`bot.triggers.reporting`), render templates in user-code workers,
and save what it remembers with the messages.

`TriggerRunner` hands a run here when `Reports.handles` it (a csv trigger, a template,
``each=``, a json check without a condition, or request options such as ``auth=``):

* `Reports.run` is the check: it returns a `ReportObservation` carrying the rendered
  report or items, or a plain `Observation` saying what failed;
* `Reports.after_decision` turns the "down" alert of a failed report into its failure
  message and moves the next run forward when the report is retried;
* `Reports.save` runs in the run's saving transaction: it records the keys of new items
  (an insert that skips keys already there, so that two runs of the same trigger on two
  replicas post each item once), refreshes the keys still listed, stores the memory, and
  returns the messages. Its `Saved.new_items` are the items this run posted: the hook
  point for ``then=ACTION on=item`` (actions).

Secrets (``auth=``, ``header.X=secret:NAME``) are the trigger creator's to use: checked
when the trigger is saved (`require_credentials`), and asked of `SecretService` on
every run, so a secret taken away from its creator stops the trigger's requests.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import sqlalchemy as sa

from bot.audit import Actor
from bot.credentials.refs import RefError, secret_names
from bot.credentials.send import refused_secrets
from bot.credentials.service import SecretService
from bot.db import Database, insert_skipping_conflicts
from bot.errors import SpecError, UsageError
from bot.expressions import ExpressionError, compile_template
from bot.models import Trigger, TriggerItem
from bot.net import DEFAULT_MAX_BYTES, Credentials, FetchResult
from bot.outbox import Message
from bot.triggers import checks
from bot.triggers.evaluate import Announcement, Policy
from bot.triggers.fetching import (
    FETCH_KINDS,
    BodyFailed,
    Fetched,
    FetchFailed,
    FetchKind,
    FetchPlan,
    RenderBody,
    Request,
    Send,
    credential_refs,
    fetch_pages,
    fetch_plan,
    options_problem,
    unlinked,
)
from bot.triggers.observation import Observation
from bot.triggers.reporting import (
    REPORT_MAX_CHARS,
    REPORT_RETRIES,
    Mode,
    ReportMemory,
    ScanItem,
    ScanList,
    body_context,
    body_text,
    decide_scan,
    default_item_text,
    failed_item_text,
    failure_text,
    handles,
    history_context,
    item_context,
    memory_of,
    mode_of,
    remembered,
    report_context,
    report_message,
    retry_time,
    scan_list,
    scan_posts,
    source_text,
    trigger_scope,
    with_history,
)
from bot.triggers.schedule import schedule_from_dict
from bot.triggers.spec import TriggerSpec
from bot.usercode import Failed, TemplateJob, UserCodeRunner

_ITEMS: sa.Table = TriggerItem.__table__  # type: ignore[attr-defined]
_TRIGGERS: sa.Table = Trigger.__table__  # type: ignore[attr-defined]
_KEYS_PER_STATEMENT: Final = 500
_TEMPLATE_KINDS: Final = FETCH_KINDS


class RequestFetcher(Protocol):
    """What sends a trigger's requests: `bot.net.SafeFetcher.request`."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float,  # noqa: ASYNC109
        max_bytes: int = DEFAULT_MAX_BYTES,
        credentials: Credentials | None = None,
    ) -> FetchResult: ...


@dataclass(frozen=True)
class ReportObservation(Observation):
    """What a report or scan run saw, with what it will post and remember.

    ``report``: the rendered report (None: nothing to post). ``rendered``: ``(key, text)``
    of the new items shown; ``record``: the keys to remember; ``refresh``: keys still
    listed; ``new``: the new items, in order. ``memory``: what to store (None: leave it as
    it is). ``retry``: the failure may pass if tried again (a fetch, not a template).
    """

    mode: Mode = "check"
    memory: ReportMemory | None = None
    report: str | None = None
    rendered: tuple[tuple[str, str], ...] = ()
    record: tuple[str, ...] = ()
    refresh: tuple[str, ...] = ()
    new: tuple[ScanItem, ...] = ()
    failed_at: datetime | None = None
    retry: bool = False


@dataclass(frozen=True)
class Saved:
    """What `Reports.save` queued: the messages, and the new items they announce (in the
    order listed): where ``then=ACTION on=item`` finds the items to act on."""

    messages: list[Message] = field(default_factory=list)
    new_items: list[ScanItem] = field(default_factory=list)


@dataclass
class Reports:
    """Runs of triggers that fetch with options, report or scan (see the module docstring)."""

    db: Database
    fetcher: RequestFetcher
    usercode: UserCodeRunner
    secrets: SecretService | None = None
    max_bytes: int = DEFAULT_MAX_BYTES

    # Which triggers, and how they are judged

    def handles(self, trigger: Trigger) -> bool:
        """Whether ``trigger``'s runs go through here."""
        return handles(trigger.kind, trigger.condition, trigger.template, trigger.options)

    def policy(self, trigger: Trigger, base: Policy) -> Policy:
        """A report alerts on its first failure (``retries=`` retries it sooner instead);
        scans and checks keep the trigger's own noise control."""
        if self.mode(trigger) == "report":
            return replace(base, retries=1)
        return base

    def mode(self, trigger: Trigger) -> Mode:
        return mode_of(trigger.kind, trigger.template, trigger.options)

    # Running

    async def run(
        self,
        trigger: Trigger,
        now: datetime,
        *,
        timeout: float,  # noqa: ASYNC109
        condition: checks.Condition | None,
    ) -> Observation:
        """Fetch, then report, scan or check; expected failures are observations."""
        mode = self.mode(trigger)
        memory = memory_of(trigger.report_state, _source(trigger))
        credentials = await self._credentials(trigger)
        if isinstance(credentials, str):
            return self._failed(mode, memory, FetchFailed(credentials), now, retry=False)
        plan = fetch_plan(
            _kind(trigger), trigger.target or "", trigger.options, paginate=mode != "check"
        )
        fetched = await fetch_pages(
            self._sender(credentials),
            plan,
            self._body_renderer(trigger, plan, now),
            timeout=timeout,
            max_bytes=self.max_bytes,
        )
        if isinstance(fetched, FetchFailed):
            return self._failed(mode, memory, fetched, now, retry=True)
        if mode == "report":
            return await self._report(trigger, fetched, memory, now, condition)
        if mode == "scan":
            return await self._scan(trigger, fetched, memory, now)
        return await _check(trigger, fetched, condition, now)

    def after_decision(
        self,
        trigger: Trigger,
        observation: Observation,
        announcements: list[Announcement],
        next_run: datetime | None,
        now: datetime,
        *,
        manual: bool,
    ) -> tuple[Observation, list[Announcement], datetime | None]:
        """For a failed report: retry it sooner (not after a manual run) while retries are
        left, and say so in its failure message instead of "is down"."""
        if self.mode(trigger) != "report" or observation.ok:
            return observation, announcements, next_run
        memory = _memory_in(observation) or memory_of(trigger.report_state, _source(trigger))
        retries = int(trigger.options.get("retries", REPORT_RETRIES))
        # A timeout of the whole run is a plain observation: worth retrying too.
        retryable = not isinstance(observation, ReportObservation) or observation.retry
        retry = (
            retry_time(
                retries_made=memory.retries, retries=retries, now=now, next_scheduled=next_run
            )
            if retryable and not manual
            else None
        )
        if not manual:
            memory = replace(memory, retries=memory.retries + 1 if retry else 0)
        failed_at = observation.failed_at if isinstance(observation, ReportObservation) else None
        text = failure_text(
            trigger.name,
            observation.summary,
            failed_at=failed_at or now,
            now=now,
            retry_at=retry,
            retries=retries,
            next_run=next_run,
        )
        said = [replace(a, text=text) if a.kind == "down" else a for a in announcements]
        remembered_failure = ReportObservation(
            ok=False,
            summary=observation.summary,
            duration_ms=observation.duration_ms,
            status=observation.status,
            mode="report",
            memory=memory,
            failed_at=failed_at or now,
        )
        return remembered_failure, said, retry or next_run

    # Saving

    async def save(
        self, session: Any, trigger: Trigger, observation: Observation, now: datetime
    ) -> Saved:
        """In the run's transaction: remember, record the new items' keys, and return
        the messages to queue (only items whose key this run recorded are posted)."""
        if not isinstance(observation, ReportObservation):
            return Saved()
        if observation.memory is not None:
            await session.execute(
                sa.update(_TRIGGERS)
                .where(_TRIGGERS.c.id == trigger.id)
                .values(report_state=observation.memory.to_dict())
            )
        if observation.mode == "report":
            report = observation.report
            return Saved([report_message(trigger, report)] if report and report.strip() else [])
        if observation.mode != "scan":
            return Saved()
        recorded = await self._record(session, _id(trigger), observation.record, now)
        await self._refresh(session, _id(trigger), observation.refresh, now)
        keys = [item.key for item in observation.new]
        texts = scan_posts(trigger.name, observation.rendered, keys, recorded)
        new_items = [item for item in observation.new if item.key in recorded]
        return Saved([report_message(trigger, text) for text in texts], new_items)

    # Inside: the three modes

    async def _report(
        self,
        trigger: Trigger,
        fetched: Fetched,
        memory: ReportMemory,
        now: datetime,
        condition: checks.Condition | None,
    ) -> Observation:
        zone = schedule_from_dict(trigger.schedule).tz
        context = report_context(trigger_scope(trigger), fetched, memory.previous, now, zone)
        charted = with_history(memory, trigger.template or "", context)  # history(…) in it
        context |= history_context(charted)
        done = replace(
            charted, previous=remembered(fetched.data), previous_at=now.isoformat(), retries=0
        )
        line = _line(fetched)
        if condition is not None:
            held = await _holds(
                condition, {**checks.condition_context(fetched.first, now), **context}
            )
            if isinstance(held, str):
                failed = FetchFailed(f"the condition failed: {held}")
                return self._failed("report", memory, failed, now, retry=False)
            if not held:
                return _reported(fetched, f"OK: condition false, nothing posted ({line})", done)
        (text,) = await self.usercode.run(
            [TemplateJob(trigger.template or "", context, REPORT_MAX_CHARS)]
        )
        if isinstance(text, Failed):
            failed = FetchFailed(f"the template failed: {text}")
            return self._failed("report", memory, failed, now, retry=False)
        if not text.strip():
            return _reported(
                fetched, f"OK: the template rendered nothing, nothing posted ({line})", done
            )
        return _reported(fetched, f"OK: report posted ({line})", done, report=text)

    async def _scan(
        self, trigger: Trigger, fetched: Fetched, memory: ReportMemory, now: datetime
    ) -> Observation:
        each = "." if trigger.kind == "csv" else unlinked(trigger.options["each"])
        listed = scan_list(fetched.data, each, unlinked(trigger.options["key"]))
        if isinstance(listed, str):
            return Observation(False, listed, fetched.elapsed_ms, fetched.first.status)
        seen = await self._seen(_id(trigger), [item.key for item in listed.items])
        latest = int(trigger.options.get("latest", 0))
        decision = decide_scan(listed.items, seen, scanned=memory.scanned, latest=latest, now=now)
        rendered = await self._render_items(trigger, decision.shown, now)
        return ReportObservation(
            ok=True,
            summary=_scan_summary(listed, len(decision.new), decision.first_run, _line(fetched)),
            duration_ms=fetched.elapsed_ms,
            status=fetched.first.status,
            mode="scan",
            memory=replace(memory, scanned=True, retries=0),
            rendered=rendered,
            record=decision.record,
            refresh=decision.refresh,
            new=decision.new,
        )

    def _failed(
        self, mode: Mode, memory: ReportMemory, failed: FetchFailed, now: datetime, *, retry: bool
    ) -> Observation:
        if mode != "report":
            return Observation(False, failed.summary, failed.elapsed_ms, failed.status)
        return ReportObservation(
            ok=False,
            summary=failed.summary,
            duration_ms=failed.elapsed_ms,
            status=failed.status,
            mode="report",
            memory=memory,
            failed_at=now,
            retry=retry,
        )

    # Inside: requests

    async def _credentials(self, trigger: Trigger) -> Credentials | str | None:
        """What the trigger's requests send, as its creator may; why not, as text."""
        try:
            refs = credential_refs(trigger.options)
        except RefError as error:
            return str(error)
        if not refs:
            return None
        if self.secrets is None:
            return "secrets are not available to this trigger"
        owner = Actor(trigger.team_id, trigger.created_by, trigger.channel_id)
        try:
            return await self.secrets.credentials_for(owner, refs)
        except UsageError as error:
            return f"its secrets cannot be used: {error}"

    def _sender(self, credentials: Credentials | None) -> Send:
        async def send(request: Request, seconds: float, room: int) -> FetchResult:
            return await self.fetcher.request(
                request.method,
                request.url,
                headers=request.headers,
                body=request.body,
                timeout=seconds,
                max_bytes=room,
                credentials=credentials,
            )

        return send

    def _body_renderer(self, trigger: Trigger, plan: FetchPlan, now: datetime) -> RenderBody:
        source = plan.body or ""
        zone = schedule_from_dict(trigger.schedule).tz

        async def render(cursor: str | None) -> str | BodyFailed:
            if "{{" not in source and "{%" not in source:
                return source
            context = body_context(trigger_scope(trigger), cursor, now, zone)
            (text,) = await self.usercode.run([TemplateJob(source, context)])
            return BodyFailed(str(text)) if isinstance(text, Failed) else body_text(text)

        return render

    # Inside: items

    async def _render_items(
        self, trigger: Trigger, items: Sequence[ScanItem], now: datetime
    ) -> tuple[tuple[str, str], ...]:
        if not trigger.template:
            return tuple((item.key, default_item_text(trigger.name, item)) for item in items)
        zone = schedule_from_dict(trigger.schedule).tz
        scope = trigger_scope(trigger)
        jobs = [
            TemplateJob(trigger.template, item_context(scope, item, now, zone)) for item in items
        ]
        outcomes = await self.usercode.run(jobs) if jobs else []
        return tuple(
            (
                item.key,
                failed_item_text(trigger.name, item, str(text))
                if isinstance(text, Failed)
                else text,
            )
            for item, text in zip(items, outcomes, strict=True)
        )

    async def _seen(self, trigger_id: int, keys: Sequence[str]) -> dict[str, datetime]:
        """The keys among ``keys`` already recorded, and when they were last marked."""
        seen: dict[str, datetime] = {}
        async with self.db.sessions() as session:
            for chunk in _chunks(keys):
                rows = await session.execute(
                    sa.select(_ITEMS.c.key, _ITEMS.c.seen_at).where(
                        _ITEMS.c.trigger_id == trigger_id, _ITEMS.c.key.in_(chunk)
                    )
                )
                seen.update({key: seen_at for key, seen_at in rows.all()})
        return seen

    async def _record(
        self, session: Any, trigger_id: int, keys: Sequence[str], now: datetime
    ) -> set[str]:
        """Insert the keys not there yet; the ones this transaction inserted."""
        recorded: set[str] = set()
        statement = insert_skipping_conflicts(_ITEMS, self.db.dialect).returning(_ITEMS.c.key)
        for chunk in _chunks(keys):
            rows = [{"trigger_id": trigger_id, "key": key, "seen_at": now} for key in chunk]
            result = await session.execute(statement, rows)
            recorded.update(key for (key,) in result.all())
        return recorded

    async def _refresh(
        self, session: Any, trigger_id: int, keys: Sequence[str], now: datetime
    ) -> None:
        for chunk in _chunks(keys):
            await session.execute(
                sa.update(_ITEMS)
                .where(_ITEMS.c.trigger_id == trigger_id, _ITEMS.c.key.in_(chunk))
                .values(seen_at=now)
            )


# -- saving a definition -----------------------------------------------------------------------


def spec_problem(spec: TriggerSpec) -> SpecError | None:
    """Why a spec's request and scan options cannot go together, or None."""
    if spec.kind not in FETCH_KINDS:
        return None
    problem = options_problem(spec.kind, spec.options, spec.condition)
    if problem is None:
        return None
    field_name = "condition" if "condition" in problem.message else "options"
    return SpecError(f"{problem.message}.", field=field_name, part=problem.part)


async def require_credentials(
    secrets: SecretService | None, actor: Actor, spec: TriggerSpec
) -> None:
    """Refuse a spec naming a secret ``actor`` may not use, or one not bound to the URL's
    host (said privately, when the trigger is added or edited, not at 9 am in a channel)."""
    if spec.kind not in FETCH_KINDS:
        return
    try:
        refs = credential_refs(spec.options)
    except RefError as error:
        raise SpecError(str(error), field="options", part=error.part) from None
    if not secret_names(refs):
        return
    if secrets is None:
        raise SpecError("Secrets are not available here.", field="options")
    credentials = await secrets.credentials_for(actor, refs)
    refused = refused_secrets(refs, spec.target or "", credentials.lookup)
    if refused:
        name = refused[0]
        hosts = ", ".join(str(host) for host in credentials.lookup(name).hosts)
        host = _netloc(spec.target or "")
        raise SpecError(
            f"The secret `{name}` may not be sent to {host}: it is bound to {hosts}. "
            f"Bind it there with `/secret set {name} for {host}`, or use another secret.",
            field="options",
            part=name,
        )


def check_template(kind: str, source: str) -> None:
    """Refuse a template for a kind that does not fetch data, or one that does not compile."""
    if kind not in _TEMPLATE_KINDS:
        raise SpecError(
            f"Only json, csv and http triggers post with a template; this one is {kind}.",
            field="template",
        )
    try:
        compile_template(source)
    except ExpressionError as error:
        raise SpecError(
            f"That template doesn't compile: {str(error).rstrip('.')}. Nothing was changed.",
            field="template",
        ) from None


# -- small helpers -------------------------------------------------------------------------------


async def _check(
    trigger: Trigger, fetched: Fetched, condition: checks.Condition | None, now: datetime
) -> Observation:
    """A check without a template: the answer judged as the plain checks judge it."""
    if trigger.kind == "http":
        return await checks.http_observation(fetched.first, condition, trigger.condition, now)
    if trigger.kind == "json" and condition is not None:
        return await checks.json_observation(fetched.first, condition, trigger.condition, now)
    what = f"{len(fetched.data):,} rows" if trigger.kind == "csv" else "JSON"
    return Observation(
        True, f"OK: {what} ({_line(fetched)})", fetched.elapsed_ms, fetched.first.status
    )


def _reported(
    fetched: Fetched, summary: str, memory: ReportMemory, *, report: str | None = None
) -> Observation:
    return ReportObservation(
        ok=True,
        summary=summary,
        duration_ms=fetched.elapsed_ms,
        status=fetched.first.status,
        mode="report",
        memory=memory,
        report=report,
    )


async def _holds(condition: checks.Condition, context: Mapping[str, Any]) -> bool | str:
    """The condition's truth, or why it failed (user code may fail in any way)."""
    try:
        held = condition(context)
        return bool(await held if inspect.isawaitable(held) else held)
    except Exception as error:
        return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _line(fetched: Fetched) -> str:
    pages = f"{fetched.pages} pages, " if fetched.pages > 1 else ""
    note = f"; {fetched.note}" if fetched.note else ""
    return f"{pages}{checks.http_line(fetched.first)}{note}"


def _scan_summary(listed: ScanList, new: int, first_run: bool, line: str) -> str:
    extra = ""
    if listed.without_key:
        extra += f", {listed.without_key:,} without a key"
    if listed.left_out:
        extra += f", {listed.left_out:,} beyond the first {len(listed.items):,} left out"
    count = f"{len(listed.items):,} items{extra}"
    if first_run:
        return f"OK: first run, {count} recorded, {new} posted ({line})"
    return f"OK: {count}, {new:,} new ({line})"


def _memory_in(observation: Observation) -> ReportMemory | None:
    return observation.memory if isinstance(observation, ReportObservation) else None


def _source(trigger: Trigger) -> str:
    return source_text(trigger.kind, trigger.target, trigger.options)


def _kind(trigger: Trigger) -> FetchKind:
    kinds: Mapping[str, FetchKind] = {"http": "http", "json": "json", "csv": "csv"}
    return kinds[trigger.kind]


def _id(trigger: Trigger) -> int:
    assert trigger.id is not None
    return trigger.id


def _chunks(keys: Sequence[str]) -> list[Sequence[str]]:
    return [keys[i : i + _KEYS_PER_STATEMENT] for i in range(0, len(keys), _KEYS_PER_STATEMENT)]


def _netloc(url: str) -> str:
    return urlsplit(url).netloc or url
