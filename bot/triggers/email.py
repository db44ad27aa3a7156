"""The email trigger: watch a mailbox, post each new message once, in the right channel.

    /trigger add support every 5m email imaps://support%40example.com@imap.example.com/INBOX auth=basic:support-mail #support
    /trigger route support from_domain == "bigcorp.com" → #sales

A run (`MailWatch.check`) reads the position stored in the trigger's state (the
mailbox's UIDVALIDITY and the last UID handled, under ``state["mailbox"]``), gets the
password (`SecretService.resolve`, as the trigger's creator, for the mailbox's host and
port), runs `bot.mail.poll.poll_mailbox` (read-only: EXAMINE and ``BODY.PEEK``), and
routes each new message: the trigger's rules in order, first match wins, each rule run
in a user-code worker over `bot.mail.message.routing_context`; no match means the
trigger's own channel. It returns a `MailObservation`; a problem (login refused, TLS,
unreachable, no such mailbox, a timeout) is an observation with ``ok=False``, so it is
reported once and its recovery once, as for any check.

Saving (`settle`) happens in the run's save transaction: the position and the posts are
written together, so a message is posted exactly when the position moves past it. The
stored position is read again there (locked), and mail it already covers is dropped, so
two runs that overlapped (a manual run beside a scheduled one, a claim taken over from a
replica that stalled) never post a message twice.

`validate_email` is what ``/trigger add`` and the form must pass: the secret may be used
by the person and is bound to the mailbox's host and port, a user name is known, the
server's address is allowed, ``tls=off`` only to allowlisted hosts.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlmodel import col, select

from bot.audit import Actor
from bot.config import Secret
from bot.credentials.hosts import HostPatternError, Target, parse_host_pattern
from bot.credentials.keys import UndecryptableToken
from bot.credentials.refs import RefError, parse_auth
from bot.credentials.service import SecretService
from bot.db import Executor
from bot.errors import SpecError, UsageError
from bot.mail.imap import MailboxURL, MailError, check_server_address, parse_mailbox_url
from bot.mail.message import MailMessage, routing_context
from bot.mail.poll import (
    DEFAULT_MAX_BYTES,
    MailSource,
    PollResult,
    ReadMessage,
    poll_mailbox,
    probe_mailbox,
)
from bot.mail.watch import Position
from bot.models import Trigger
from bot.net import AddressPolicy
from bot.outbox import enqueue
from bot.slack.blocks import channel_mention, escape_mrkdwn, plural
from bot.slack.text import parse_channel, unescape
from bot.triggers.conditions import ConditionError, check_condition, names_used, to_expression
from bot.triggers.email_posts import Routed, posts_for
from bot.triggers.evaluate import EvaluateError, state_from_dict
from bot.triggers.observation import Observation
from bot.triggers.schedule import schedule_from_dict
from bot.usercode import ConditionJob, Failed, UserCodeRunner, UserCodeUnavailable

log = logging.getLogger(__name__)

STATE_KEY: Final = "mailbox"
MAX_ROUTES: Final = 50
# Adding a trigger looks the server's name up (for tls=off) within this, as Slack waits 3 s.
ADD_LOOKUP_SECONDS: Final = 1.5
# Bodies are fetched during this share of the check's timeout; what is left is read next
# run, so a run of many large messages still ends within its time.
FETCH_SHARE: Final = 0.5
NO_RULE: Final = "no rule matched"
_POSITIONS_SAVED: Final = "email_positions_saved"  # in the save transaction's session.info

# The AI step's category for each message (None where it gave none), or None when off.
Categorise = Callable[[Trigger, Sequence[MailMessage]], Awaitable[Sequence[str | None]]]


# --- options, routes, position ----------------------------------------------------------


@dataclass(frozen=True)
class EmailOptions:
    """An email trigger's own options: the secret (``auth=basic:NAME``), ``tls=off``,
    ``latest=N``."""

    secret: str | None
    plain: bool
    latest: int


def email_options(options: Mapping[str, str]) -> EmailOptions:
    """Read the stored options (the grammar checked them when they were saved)."""
    auth = options.get("auth")
    try:
        secret = parse_auth(auth).secret.name if auth else None
    except RefError:
        secret = None
    latest = options.get("latest", "0")
    return EmailOptions(
        secret=secret,
        plain=options.get("tls", "").lower() == "off",
        latest=int(latest) if latest.isdigit() else 0,
    )


@dataclass(frozen=True)
class Route:
    """A routing rule: a condition over the message, and the channel id it sends to."""

    rule: str
    channel: str

    def to_dict(self) -> dict[str, str]:
        """As stored in ``trigger.routes``."""
        return {"rule": self.rule, "channel": self.channel}


def routes_of(trigger: Trigger) -> list[Route]:
    """The trigger's routing rules, in order."""
    return [
        Route(str(item["rule"]), str(item["channel"]))
        for item in trigger.routes or []
        if isinstance(item, Mapping) and "rule" in item and "channel" in item
    ]


def check_rule(rule: str) -> None:
    """Refuse (`SpecError`) a rule that does not compile (a bad pattern included) or reads
    names a message does not have."""
    try:
        check_condition(rule, "email")
    except ConditionError as error:
        raise SpecError(str(error), field="condition", part=rule) from None


def stored_position(state: Mapping[str, Any] | None) -> Position | None:
    """The position a trigger's state holds, if any."""
    saved = (state or {}).get(STATE_KEY)
    if not isinstance(saved, Mapping):
        return None
    uidvalidity, last_uid = saved.get("uidvalidity"), saved.get("last_uid")
    if not isinstance(uidvalidity, int) or not isinstance(last_uid, int):
        return None
    return Position(uidvalidity, last_uid)


def position_state(position: Position | None) -> dict[str, Any]:
    """What `stored_position` reads back, to merge into the trigger's state."""
    if position is None:
        return {}
    return {STATE_KEY: {"uidvalidity": position.uidvalidity, "last_uid": position.last_uid}}


def _target(url: MailboxURL) -> Target | None:
    return Target.of("imaps" if url.implicit_tls else "imap", url.host, url.port)


def _secret_url(url: MailboxURL) -> str:
    """An address `SecretService.resolve` judges the way the connection goes."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    return f"{'imaps' if url.implicit_tls else 'imap'}://{host}:{url.port}/"


# --- adding -------------------------------------------------------------------------------


async def validate_email(
    actor: Actor, target: str | None, options: Mapping[str, str], *, secrets: SecretService,
    policy: AddressPolicy,
) -> None:  # fmt: skip
    """Raise `SpecError` (with its field) unless an email trigger can work as given."""
    url = _mailbox_url(target)
    settings = email_options(options)
    if settings.secret is None:
        raise SpecError(
            "email needs the password as a stored secret: auth=basic:NAME (store it with "
            "`/secret set NAME for HOST:PORT user=USER`)",
            field="options",
        )
    if settings.plain and url.implicit_tls:
        raise SpecError(
            "tls=off goes with imap://, not imaps:// (which is always TLS)", field="options"
        )
    await _check_address(url, policy, settings.plain)
    await _check_secret(actor, url, settings.secret, secrets)


def _mailbox_url(target: str | None) -> MailboxURL:
    try:
        return parse_mailbox_url(target or "")
    except MailError as error:
        raise SpecError(f"{error.reason}.", field="target") from None


async def _check_address(url: MailboxURL, policy: AddressPolicy, plain: bool) -> None:
    try:
        await check_server_address(url, policy, plain=plain, timeout=ADD_LOOKUP_SECONDS)
    except MailError as error:
        raise SpecError(
            f"I can't watch that mailbox: {error.reason}.", field="target", part=url.host
        ) from None


async def _check_secret(actor: Actor, url: MailboxURL, name: str, secrets: SecretService) -> None:
    try:
        record = await secrets.require_use(actor, name)
    except UsageError as error:
        raise SpecError(str(error), field="options", part=f"auth=basic:{name}") from None
    target = _target(url)
    if target is None or not any(_allows(host, target) for host in record.hosts):
        where = f"{url.host}:{url.port}"
        raise SpecError(
            f"The secret `{name}` may not be sent to {where} (it is bound to "
            f"{', '.join(record.hosts) or 'no host'}): store it for the mailbox's host and "
            f"port, `/secret set {name} for {where}`.",
            field="options",
            part=f"auth=basic:{name}",
        )
    if url.user is None and record.user is None:
        raise SpecError(
            f"No user name to log in with: put it in the URL "
            f"(imaps://support%40example.com@{url.host}/{url.mailbox}) or store it with the "
            f"secret (`/secret set {name} for {url.host}:{url.port} user=NAME`).",
            field="target",
        )


def _allows(host: str, target: Target) -> bool:
    try:
        return parse_host_pattern(host).allows_target(target)
    except HostPatternError:
        return False


# --- a run --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailRun:
    """What a run read: the position it started from and the one to store, the new mail
    routed (oldest first), how many were passed over, a notice to post."""

    started_from: Position | None
    position: Position
    routed: tuple[Routed, ...] = ()
    skipped: int = 0
    notice: str | None = None


@dataclass(frozen=True)
class MailObservation(Observation):
    """An email check's observation; ``run`` is None when nothing is to be stored (a
    problem, or a muted run that only looked)."""

    run: MailRun | None = None


@dataclass
class MailWatch:
    """Runs email triggers' checks. ``tls_context`` replaces the system's trust store
    (tests bring their own CA); ``categorise`` is the AI step, when one is on."""

    secrets: SecretService
    policy: AddressPolicy
    usercode: UserCodeRunner
    max_bytes: int = DEFAULT_MAX_BYTES
    tls_context: ssl.SSLContext | None = None
    categorise: Categorise | None = None

    async def check(self, trigger: Trigger, now: datetime, *, step_timeout: float) -> Observation:
        """One run: read the mailbox, route what is new. Never raises for a mail problem."""
        stored = stored_position(trigger.state)
        try:
            source = await self._source(trigger, step_timeout)
            if stored is not None and _muted(trigger, now):
                await probe_mailbox(source, policy=self.policy, tls_context=self.tls_context)
                return MailObservation(True, "muted: the mailbox answers; new mail waits")
            fetch_until = asyncio.get_running_loop().time() + step_timeout * FETCH_SHARE
            result = await poll_mailbox(
                source,
                stored,
                policy=self.policy,
                tls_context=self.tls_context,
                fetch_until=fetch_until,
            )
            routed = await self.route(trigger, result.messages)
        except (MailError, _Unusable) as error:
            return MailObservation(False, str(error.reason))
        run = MailRun(stored, result.position, tuple(routed), result.skipped, result.notice)
        return MailObservation(True, run_summary(run, result), run=run)

    async def _source(self, trigger: Trigger, step_timeout: float) -> MailSource:
        url = parse_mailbox_url(trigger.target or "")
        options = email_options(trigger.options)
        if options.secret is None:
            raise _Unusable("no password: the trigger has no auth=basic:NAME option")
        actor = Actor(trigger.team_id, trigger.created_by, trigger.channel_id)
        try:
            resolved = await self.secrets.resolve(actor, options.secret, _secret_url(url))
        except UsageError as error:
            raise _Unusable(f"the password cannot be used: {error}") from None
        except UndecryptableToken:
            raise _Unusable(
                f"the secret {options.secret} cannot be decrypted (is SECRETS_KEY the key "
                "it was stored with?)"
            ) from None
        return MailSource(
            url=trigger.target or "",
            user=resolved.user,
            password=Secret(resolved.value),
            allow_plain=options.plain,
            latest=options.latest,
            max_bytes=self.max_bytes,
            timeout=step_timeout,
        )

    async def route(self, trigger: Trigger, messages: Sequence[ReadMessage]) -> list[Routed]:
        """Each message's channel: the first rule that holds, else the trigger's own.

        Rules run in user-code workers, one rule at a time over the messages still
        unrouted; each job carries only the names its rule reads (a 100 kB body is sent
        only to rules that read ``text``). A rule that fails counts as not matching.
        """
        if not messages:
            return []
        categories = await self._categories(trigger, [read.message for read in messages])
        contexts = [
            routing_context(read.message, category=category)
            for read, category in zip(messages, categories, strict=True)
        ]
        chosen: dict[int, tuple[str, str]] = {}
        failures: dict[int, list[str]] = {}
        pending = list(range(len(messages)))
        for number, route in enumerate(routes_of(trigger), start=1):
            if not pending:
                break
            outcomes = await self._evaluate(route.rule, [contexts[i] for i in pending])
            still: list[int] = []
            for index, outcome in zip(pending, outcomes, strict=True):
                if outcome is True:
                    chosen[index] = (route.channel, f"rule {number}: {route.rule}")
                    continue
                if isinstance(outcome, Failed):
                    failures.setdefault(index, []).append(f"rule {number} failed: {outcome}")
                still.append(index)
            pending = still
        return [
            Routed(
                read.uid,
                read.message,
                *chosen.get(index, (trigger.channel_id, _no_rule(failures.get(index, [])))),
                category=categories[index],
            )
            for index, read in enumerate(messages)
        ]

    async def _categories(
        self, trigger: Trigger, messages: Sequence[MailMessage]
    ) -> Sequence[str | None]:
        # The AI step labels messages here, before routing, so rules can read
        # ``category`` and the post can say "categorised as …".
        if self.categorise is None:
            return [None] * len(messages)
        return await self.categorise(trigger, messages)

    async def _evaluate(
        self, rule: str, contexts: Sequence[Mapping[str, Any]]
    ) -> Sequence[bool | Failed]:
        try:
            used = set(names_used(rule))
        except ConditionError as error:  # stored rules were checked; a safety net only
            return [Failed(str(error), kind="compile")] * len(contexts)
        source = to_expression(rule)
        jobs = [
            ConditionJob(source, {key: value for key, value in context.items() if key in used})
            for context in contexts
        ]
        try:
            outcomes = await self.usercode.run(jobs)
        except UserCodeUnavailable as error:
            raise _Unusable(f"the routing rules could not run ({error})") from None
        return [outcome if isinstance(outcome, Failed) else outcome is True for outcome in outcomes]


class _Unusable(Exception):
    """The run cannot start or finish for a reason to report (like a `MailError`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _no_rule(failures: list[str]) -> str:
    return f"{NO_RULE} ({'; '.join(failures)})" if failures else NO_RULE


def _muted(trigger: Trigger, now: datetime) -> bool:
    try:
        until = state_from_dict(trigger.state or {}).muted_until
    except EvaluateError:
        return False
    return until is not None and now < until


def run_summary(run: MailRun, result: PollResult) -> str:
    """One line for the run's history and ``/trigger run``."""
    if run.started_from is None:
        posted = f"; posted the newest {len(run.routed)}" if run.routed else "; nothing posted"
        return f"first run: the mailbox's position recorded{posted}"
    if result.notice:
        return "the mailbox was renumbered (UIDVALIDITY changed): started again from now"
    if not run.routed:
        return "no new mail"
    channels: dict[str, int] = {}
    for item in run.routed:
        channels[item.channel] = channels.get(item.channel, 0) + 1
    where = ", ".join(f"{count} to <#{channel}>" for channel, count in channels.items())
    more = "; the rest next run" if result.unfinished else ""
    return f"{plural(len(run.routed), 'new message')} ({where}){more}"


# --- saving -------------------------------------------------------------------------------


async def settle(
    session: Executor, trigger: Trigger, observation: Observation, now: datetime
) -> dict[str, Any]:
    """In the run's save transaction: queue the run's posts and return the state to store
    with it (the position). Mail the stored position already covers is not posted again."""
    assert trigger.id is not None
    current, target = await _current(session, trigger.id)
    run = observation.run if isinstance(observation, MailObservation) else None
    if run is None or target != trigger.target:
        # Nothing read, or the trigger now watches another mailbox (edited meanwhile).
        return position_state(current)
    routed, position, notice = _still_new(run, current)
    tz = schedule_from_dict(trigger.schedule).tz
    messages = posts_for(trigger, routed, tz=tz, skipped=run.skipped, notice=notice)
    if messages:
        await enqueue(session, now, *messages)
    _saved_positions(session)[trigger.id] = position
    return position_state(position)


def _still_new(run: MailRun, current: Position | None) -> tuple[list[Routed], Position, str | None]:
    """What of ``run`` is still to post, given the position stored now."""
    if current == run.started_from or current is None:
        return list(run.routed), run.position, run.notice
    if current.uidvalidity != run.position.uidvalidity:
        return list(run.routed), run.position, run.notice
    # Another run of this trigger saved meanwhile: post only what it did not cover.
    fresh = [item for item in run.routed if item.uid > current.last_uid]
    last = max(current.last_uid, run.position.last_uid)
    return fresh, Position(current.uidvalidity, last), None


def _saved_positions(session: Executor) -> dict[int, Position]:
    info: dict[str, Any] = session.info
    saved: dict[int, Position] = info.setdefault(_POSITIONS_SAVED, {})
    return saved


async def _current(session: Executor, trigger_id: int) -> tuple[Position | None, str | None]:
    """The stored position (locked until the transaction ends) and the mailbox it is for."""
    result = await session.execute(
        select(Trigger.state, Trigger.target).where(col(Trigger.id) == trigger_id).with_for_update()
    )
    row = result.first()
    if row is None:
        return None, None
    saved = _saved_positions(session).get(trigger_id)  # by a run saved in this transaction
    return saved or stored_position(row[0]), row[1]


def mail_state(trigger: Trigger) -> dict[str, Any]:
    """The part of a trigger's state this module keeps, to carry over a state reset
    that is not about the mailbox (a mute, an unmute)."""
    return position_state(stored_position(trigger.state))


# --- the words of /trigger route ----------------------------------------------------------

ROUTE_EXAMPLE: Final = '/trigger route support from_domain == "bigcorp.com" → #sales'
_ARROW = re.compile(r"\s*(?:→|->)\s*")
_CURLY_QUOTES: Final = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})


@dataclass(frozen=True)
class RouteCommand:
    """``/trigger route NAME RULE → #channel``, read: ``channel`` is an id or ``#name``."""

    name: str
    rule: str
    channel: str


def parse_route(text: str) -> RouteCommand:
    """Read what follows ``/trigger route`` (Slack-escaped); the last arrow (``→`` or
    ``->``) ends the rule. `UsageError` with an example when something is missing."""
    plain = unescape(text).translate(_CURLY_QUOTES).strip()
    name, _, tail = plain.partition(" ")
    arrows = list(_ARROW.finditer(tail))
    if not arrows:
        raise UsageError(
            f"Say where matching mail goes: `RULE → #channel`. Example: `{ROUTE_EXAMPLE}`"
        )
    rule, target = tail[: arrows[-1].start()].strip(), tail[arrows[-1].end() :].strip()
    if not rule:
        raise UsageError(f"Give the rule before the arrow. Example: `{ROUTE_EXAMPLE}`")
    channel = parse_channel(target)
    if channel is None:
        raise UsageError(
            f"After the arrow give one channel, like #sales (not `{escape_mrkdwn(target)}`). "
            f"Example: `{ROUTE_EXAMPLE}`"
        )
    return RouteCommand(name, rule, channel.target)


def routes_text(trigger: Trigger) -> str:
    """An email trigger's rules as ``/trigger route NAME`` lists them."""
    routes = routes_of(trigger)
    fallback = f"otherwise {channel_mention(trigger.channel_id)}"
    if not routes:
        return (
            f"*{trigger.name}* has no routing rules: all its mail goes to "
            f"{channel_mention(trigger.channel_id)}. Add one: `{ROUTE_EXAMPLE}`"
        )
    lines = [
        f"{number}. {_code(route.rule)} → {channel_mention(route.channel)}"
        for number, route in enumerate(routes, start=1)
    ]
    return (
        f"*Routing rules of {trigger.name}* (checked in order, first match wins; "
        f"{fallback}):\n" + "\n".join(lines)
    )


def describe_mailbox(trigger: Trigger) -> str:
    """``watches INBOX on imap.example.com as support@example.com`` (no secret in it)."""
    try:
        url = parse_mailbox_url(trigger.target or "")
    except MailError:
        return f"watches {escape_mrkdwn(trigger.target or '')}"
    who = f" as {url.user}" if url.user else ""
    tls = " without TLS" if email_options(trigger.options).plain else ""
    routes = routes_of(trigger)
    routed = f", {plural(len(routes), 'routing rule')}" if routes else ""
    return escape_mrkdwn(f"watches {url.mailbox} on {url.host}{who}{tls}{routed}")


def _code(rule: str) -> str:
    return f"`{escape_mrkdwn(rule.replace('`', 'ˋ'))}`"
