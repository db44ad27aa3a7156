"""The tables. Everything the bot knows lives here, so a restart loses nothing.

Times are stored as aware UTC datetimes. JSON columns hold small documents whose shape
is owned by one module each (a schedule by `bot.triggers.schedule`, a trigger's state by
`bot.triggers.evaluate`, a message's blocks by the renderer).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite itself keeps no time zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


def _utc_datetime(**kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, **kwargs)


def _json(**kwargs: Any) -> Any:
    return Field(sa_type=sa.JSON, **kwargs)


class Hook(SQLModel, table=True):
    """An endpoint that external systems POST to; its deliveries go to one channel."""

    __tablename__ = "hook"
    __table_args__ = (sa.UniqueConstraint("team_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str
    name: str
    channel_id: str
    preset: str = "auto"
    # The URL token is shown once and stored only as its SHA-256 (`hash_token`); the
    # signing secret is stored encrypted with SECRETS_KEY (`bot.credentials.keys`).
    token_hash: str = Field(unique=True, index=True)
    secret: str | None = None
    template: str | None = None
    filter: str | None = None
    threads: str | None = None  # None: the preset's default
    rate_limit: int | None = None  # deliveries per minute; None: the configured default
    run_trigger: str | None = None
    categorise: str | None = None  # AI labels, "name: when; name2: when" (bot.ai.labels)
    summary: bool = False  # an AI summary above long messages
    # Actions (`bot.actions`) each delivery runs ("crm,inventory"), whether the hook also
    # posts, and the actions offered as buttons under its messages.
    actions: str | None = None
    post: bool = True
    buttons: str | None = None
    paused: bool = False
    rejected: int = 0
    created_by: str
    created_at: datetime = _utc_datetime()
    last_change: str | None = None


class Delivery(SQLModel, table=True):
    """One request that reached a hook, stored before the sender gets its 202."""

    __tablename__ = "delivery"
    __table_args__ = (
        sa.UniqueConstraint("hook_id", "dedupe_key"),
        sa.Index("ix_delivery_hook_received", "hook_id", "received_at"),
        sa.Index("ix_delivery_status", "status"),
    )

    id: str = Field(primary_key=True)
    hook_id: int = Field(foreign_key="hook.id", ondelete="CASCADE")
    received_at: datetime = _utc_datetime()
    sender: str
    event: str
    dedupe_key: str | None = None
    content_type: str
    headers: dict[str, str] = _json()
    body: bytes = Field(sa_type=sa.LargeBinary)
    status: str = "received"  # received | processing | posted | filtered | dropped | failed
    detail: str | None = None
    claimed_until: datetime | None = _utc_datetime(default=None)  # while "processing"


class OutboxMessage(SQLModel, table=True):
    """Something the bot will say in Slack. Only the outbox sender calls the Web API."""

    __tablename__ = "outbox"
    __table_args__ = (
        sa.Index("ix_outbox_channel_status", "channel", "status", "id"),
        sa.Index("ix_outbox_status_due", "status", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    channel: str
    kind: str = "post"  # post | ephemeral | update
    text: str
    blocks: list[dict[str, Any]] | None = _json(default=None)
    user: str | None = None  # ephemeral recipient
    ts: str | None = None  # message to edit (update) or, once sent, the posted ts
    thread_key: str | None = None
    thread_mode: str = "update+thread"
    updates_root: bool = False
    reaction: str | None = None
    new_thread: bool = False  # a new incident under a key that had a thread: a new root
    source: str | None = Field(default=None, index=True)  # "delivery:<id>" / "trigger:<id>"
    status: str = "pending"  # pending | sent | failed
    attempts: int = 0
    progress: str = ""  # steps already done, so a retry never repeats one
    last_error: str | None = None
    created_at: datetime = _utc_datetime(index=True)  # retention deletes by age
    next_attempt_at: datetime = _utc_datetime()
    sent_at: datetime | None = _utc_datetime(default=None)


class OutboxChannel(SQLModel, table=True):
    """Per-channel lease and pacing, shared by every process sending to Slack."""

    __tablename__ = "outbox_channel"

    channel: str = Field(primary_key=True)
    lease_owner: str | None = None
    lease_until: datetime | None = _utc_datetime(default=None)
    tokens: float = 0.0
    tokens_at: datetime | None = _utc_datetime(default=None)


class ThreadRoot(SQLModel, table=True):
    """The first Slack message of a thread key, so later events reply to or update it."""

    __tablename__ = "thread_root"

    channel: str = Field(primary_key=True)
    thread_key: str = Field(primary_key=True)
    ts: str
    created_at: datetime = _utc_datetime(index=True)


class Trigger(SQLModel, table=True):
    """A check the bot runs on a schedule and reports on."""

    __tablename__ = "trigger"
    __table_args__ = (sa.UniqueConstraint("team_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str
    name: str
    channel_id: str
    kind: str
    target: str | None = None
    condition: str | None = None
    schedule: dict[str, Any] = _json()
    schedule_text: str | None = None  # as the user wrote it, for editing
    options: dict[str, str] = _json()
    # Set with `/trigger set` (bot.triggers.settings), apart from ``options``: the form
    # shows and re-reads ``options`` as the add grammar's, and an edit replaces them.
    settings: dict[str, str] = _json(default_factory=dict)
    state: dict[str, Any] = _json()
    # An email trigger's routing rules, in order: [{"rule": …, "channel": id}].
    routes: list[dict[str, str]] = _json(default_factory=list)
    paused: bool = False
    created_by: str
    created_at: datetime = _utc_datetime()
    last_run_at: datetime | None = _utc_datetime(default=None)
    next_run_at: datetime | None = _utc_datetime(default=None)
    incident: int = 0  # bumps per incident, so each incident gets its own thread
    last_change: str | None = None
    # Reports from data (`bot.triggers.reports`): what a json/csv/http trigger posts
    # (``/trigger template``), and what it remembers between runs (`ReportMemory`).
    template: str | None = None
    report_state: dict[str, Any] | None = _json(default=None)


class TriggerItem(SQLModel, table=True):
    """A key of an item a scanning trigger (``each=PATH key=FIELD``) has seen, so that each
    new item is posted once, across restarts and replicas. ``seen_at`` is refreshed (at
    most daily) while the item is still listed; retention forgets long-gone keys."""

    __tablename__ = "trigger_item"

    trigger_id: int = Field(foreign_key="trigger.id", ondelete="CASCADE", primary_key=True)
    key: str = Field(primary_key=True)
    seen_at: datetime = _utc_datetime(index=True)


class TriggerRun(SQLModel, table=True):
    """One run of a trigger. (trigger_id, scheduled_for) is unique: a run is claimed once."""

    __tablename__ = "trigger_run"
    __table_args__ = (sa.UniqueConstraint("trigger_id", "scheduled_for"),)

    id: int | None = Field(default=None, primary_key=True)
    trigger_id: int = Field(foreign_key="trigger.id", ondelete="CASCADE", index=True)
    scheduled_for: datetime = _utc_datetime()
    started_at: datetime = _utc_datetime()
    duration_ms: float = 0.0
    outcome: str = "running"  # running | ok | problem | missed | error
    summary: str = ""


class TriggerRollup(SQLModel, table=True):
    """One UTC hour of a trigger's runs (`bot.glance.HourlyRollup`), kept for
    `bot.glance.ROLLUP_RETENTION` while raw runs keep only the last 200. Each finished
    run is added to its hour once, in the transaction that saves it
    (`bot.triggers.rollups`)."""

    __tablename__ = "trigger_rollup"

    trigger_id: int = Field(foreign_key="trigger.id", ondelete="CASCADE", primary_key=True)
    hour: datetime = _utc_datetime(primary_key=True, index=True)
    runs: int = 0
    problems: int = 0
    latency: dict[str, Any] = _json()  # `bot.glance.LatencyHistogram.to_dict`


class HookHour(SQLModel, table=True):
    """Requests that reached a hook in one UTC hour: deliveries stored, and requests
    refused because they failed verification (`bot.webhooks.traffic`)."""

    __tablename__ = "hook_hour"

    hook_id: int = Field(foreign_key="hook.id", ondelete="CASCADE", primary_key=True)
    hour: datetime = _utc_datetime(primary_key=True, index=True)
    received: int = 0
    refused: int = 0


class SlackEvent(SQLModel, table=True):
    """Slack event ids already handled, so Slack's retries are acknowledged, not repeated."""

    __tablename__ = "slack_event"

    event_id: str = Field(primary_key=True)
    received_at: datetime = _utc_datetime(index=True)


class AuditEntry(SQLModel, table=True):
    """Who changed what, when."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    team_id: str
    user_id: str
    subject: str  # "hook:<name>" / "trigger:<name>"
    action: str
    at: datetime = _utc_datetime(index=True)


class Draft(SQLModel, table=True):
    """Something the bot understood from plain language, waiting for the user's Create click."""

    __tablename__ = "draft"

    id: int | None = Field(default=None, primary_key=True)
    team_id: str
    user_id: str
    channel_id: str  # where it was asked; replies and channel-less results go there
    kind: str  # "trigger" or "hook": what ``spec`` describes
    spec: dict[str, Any] | None = _json(default=None)  # TriggerSpec / HookSpec ``to_dict``
    created_at: datetime = _utc_datetime()
    status: str = "open"  # open | created | cancelled | expired


class SecretRecord(SQLModel, table=True):
    """A credential set with ``/secret``, sent only to the hosts it is bound to.

    ``ciphertext`` is the value encrypted with SECRETS_KEY (`bot.credentials.keys`): the
    value itself is never stored, shown or logged. ``hosts`` are canonical host patterns
    (`bot.credentials.hosts`); ``allowed`` are the users who may use it besides its
    creator and the admins.
    """

    __tablename__ = "secret"
    __table_args__ = (sa.UniqueConstraint("team_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str
    name: str
    hosts: list[str] = _json()
    ciphertext: str
    user: str | None = None  # the user name of a basic-auth secret
    allowed: list[str] = _json()
    created_by: str
    created_at: datetime = _utc_datetime()
    set_by: str
    set_at: datetime = _utc_datetime()
    last_change: str | None = None


class AIUsage(SQLModel, table=True):
    """Tokens a workspace spent on the AI step per UTC day (`bot.ai.budget`)."""

    __tablename__ = "ai_usage"

    team_id: str = Field(primary_key=True)
    day: date = Field(primary_key=True)
    tokens: int = 0


class Action(SQLModel, table=True):
    """A named outgoing HTTP request that hooks, triggers and people run (`bot.actions`).

    ``options`` are the credential options as written (``auth=bearer:NAME``,
    ``header.X=secret:NAME`` or a literal header): secrets are referred to, never stored
    here. ``body`` is a template rendering JSON; ``reply`` one rendering a line from the
    response. ``allow`` says who may run it by hand ("everyone", user or channel ids).
    """

    __tablename__ = "action"
    __table_args__ = (sa.UniqueConstraint("team_id", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    team_id: str
    name: str
    method: str
    url: str
    options: dict[str, str] = _json(default_factory=dict)
    body_kind: str = "json"  # json | form
    body: str | None = None
    reply: str | None = None
    confirm: bool = False
    timeout: float = 10.0
    retries: int = 5
    allow: list[str] = _json(default_factory=list)
    paused: bool = False
    created_by: str
    created_at: datetime = _utc_datetime()
    last_change: str | None = None


class ActionRun(SQLModel, table=True):
    """One run of an action, stored before anything is sent (like the outbox).

    The request is stored as rendered, its secrets as references (``options``), so that a
    worker sends it, again after a crash, with the same ``idempotency_key`` every attempt.
    ``thread_channel``/``thread_key`` say where its outcome line goes (None: nowhere).
    """

    __tablename__ = "action_run"
    __table_args__ = (
        sa.Index("ix_action_run_status_due", "status", "next_attempt_at"),
        sa.Index("ix_action_run_action_created", "action_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    action_id: int = Field(foreign_key="action.id", ondelete="CASCADE")
    team_id: str
    cause: str  # "hook crm-form (delivery d-…)", "trigger site: problem", "<@U1> by hand"
    idempotency_key: str = Field(unique=True)
    method: str
    url: str
    headers: dict[str, str] = _json(default_factory=dict)  # literal headers only
    options: dict[str, str] = _json(default_factory=dict)  # secrets, as references
    body: str | None = None
    content_type: str | None = None
    timeout: float = 10.0
    max_attempts: int = 6
    reply: str | None = None  # the reply template, as it was when the run was made
    thread_channel: str | None = None
    thread_key: str | None = None
    status: str = "pending"  # pending | sending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = _utc_datetime()
    claimed_until: datetime | None = _utc_datetime(default=None)
    response_status: int | None = None
    detail: str | None = None
    elapsed_ms: float | None = None
    created_at: datetime = _utc_datetime()
    finished_at: datetime | None = _utc_datetime(default=None)
