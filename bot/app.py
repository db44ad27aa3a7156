"""The composition root: the one place that builds the bot from its settings.

config → database → outbox → scheduler → Bolt app → aiohttp app. Nothing else creates
long-lived objects; every module receives what it needs as arguments.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
import asyncpg
import sqlalchemy as sa
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.actions.buttons import ACTION_BUTTON
from bot.actions.form import ACTION_MODAL, ActionForm
from bot.actions.runs import ActionRuns
from bot.actions.sender import ActionSender
from bot.actions.service import ActionService, actions_using_secrets
from bot.actions.slash import ActionSlash
from bot.ai.budget import TokenBudget
from bot.ai.client import AIClient, AISettings
from bot.ai.steps import AISteps
from bot.ai.usage import DatabaseUsageStore
from bot.clock import Clock, SystemClock
from bot.config import Secret, Settings
from bot.conversation.action_clicks import ActionButtons
from bot.conversation.drafts import Drafts
from bot.conversation.flows import Conversation
from bot.credentials.keys import Keyring
from bot.credentials.redact import Redactor
from bot.credentials.service import SecretService
from bot.credentials.slash import SecretSlash
from bot.credentials.store import open_with_key
from bot.db import Database
from bot.errors import ConfigError
from bot.leader import Leadership, postgres_dsn
from bot.limits import ManualLimits
from bot.logs import redact_records
from bot.metrics import CONTENT_TYPE, Metrics, Snapshot, age_seconds
from bot.net import AddressPolicy, SafeFetcher
from bot.notices import FailureNotices
from bot.outbox import Outbox, Pacing
from bot.permissions import Permissions
from bot.retention import Retention
from bot.slack import listeners
from bot.slack.channels import ChannelDirectory
from bot.slack.http import bolt_route
from bot.slack.socket_mode import SocketMode
from bot.slack.users import UserDirectory
from bot.status import read_health
from bot.tasks import BackgroundTasks
from bot.triggers.ai_notes import mail_categoriser
from bot.triggers.email import MailWatch
from bot.triggers.reports import Reports
from bot.triggers.runner import TriggerRunner
from bot.triggers.scheduling import TriggerScheduling
from bot.triggers.service import TriggerService
from bot.triggers.slash import TriggerSlash
from bot.usercode import UserCodeRunner
from bot.webhooks.hooks import HookCache
from bot.webhooks.ingest import DeliveryWriter
from bot.webhooks.processor import DeliveryProcessor, fast_message
from bot.webhooks.receiver import RateLimiter, Receiver
from bot.webhooks.service import HookService
from bot.webhooks.slash import HookSlash

log = logging.getLogger(__name__)

LOCAL_BOT_TOKEN = "xoxb-local-mode"
HEARTBEAT_SECONDS = 60.0
# What "the database is unavailable" looks like from here (asyncpg raises some of its own
# errors on connect, e.g. while PostgreSQL shuts down or restarts, without SQLAlchemy's wrapper).
DATABASE_DOWN = (
    sa.exc.DBAPIError,
    sa.exc.TimeoutError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
SLACK_CHECK_SECONDS = 10.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Bot:
    """Everything the running bot is made of, for the server, the CLI and the tests."""

    settings: Settings
    clock: Clock
    db: Database
    slack: AsyncWebClient
    outbox: Outbox
    bolt: AsyncApp
    deliveries: DeliveryProcessor
    receiver: Receiver
    policy: AddressPolicy
    fetcher: SafeFetcher
    triggers: TriggerRunner
    scheduling: TriggerScheduling
    background: BackgroundTasks
    users: UserDirectory
    retention: Retention
    metrics: Metrics
    leadership: Leadership
    signing_secret: Secret  # what Slack's requests are signed with (local mode makes one)
    ai: AISteps  # the optional AI step, with its fallbacks
    keyring: Keyring | None = None  # SECRETS_KEY: encrypts credentials at rest
    socket_mode: SocketMode | None = None  # SLACK_APP_TOKEN: Slack's requests over a websocket
    loops: list[asyncio.Task[None]] = field(default_factory=list)
    slack_check: tuple[float, bool] = (0.0, False)  # when /readyz last asked Slack, and the answer
    listeners: listeners.Listeners = field(init=False)
    web: web.Application = field(init=False)
    secrets: SecretService = field(init=False)
    actions: ActionSender = field(init=False)  # sends what actions are asked to send
    action_runs: ActionRuns = field(init=False)
    stop_redacting_logs: Callable[[], None] = field(default=lambda: None)


def build(
    settings: Settings, *, clock: Clock | None = None, signing_secret: str | None = None
) -> Bot:
    """Wire the bot. ``signing_secret`` overrides the configured one (local mode)."""
    clock = clock or SystemClock()
    db = Database(settings.database_url)
    keyring = Keyring.from_setting(settings.secrets_key) if settings.secrets_key else None
    slack = AsyncWebClient(
        token=str(settings.slack_bot_token or LOCAL_BOT_TOKEN),
        base_url=settings.slack_api_url,
        retry_handlers=[],
        timeout=10,
    )
    metrics = Metrics()
    outbox = Outbox(
        db=db,
        client=slack,
        clock=clock,
        pacing=Pacing(rate=settings.slack_channel_rate, burst=settings.slack_channel_burst),
        on_result=metrics.slack_call,
    )
    outbox.on_failed = FailureNotices(db, clock, outbox.wake).message_failed
    policy = AddressPolicy.from_allowlist(settings.check_allowlist)
    fetcher = SafeFetcher(policy)
    background = BackgroundTasks()
    slack_secret = Secret(signing_secret or settings.slack_signing_secret or "")
    users = UserDirectory(slack, clock)
    secrets = SecretService(db, clock, keyring, Permissions(users, settings.bot_admins))
    ai = _ai_steps(settings, db, clock, metrics, _ai_redactor(settings, slack_secret, secrets))
    usercode = UserCodeRunner(on_event=metrics.usercode_event, write_summaries=ai.write_summaries)
    triggers = TriggerRunner(
        db=db,
        clock=clock,
        outbox=outbox,
        fetcher=fetcher,
        check_timeout=settings.check_timeout,
        check_max_bytes=settings.check_max_bytes,
        concurrency=settings.check_concurrency,
        reports=Reports(db, fetcher, usercode, secrets, settings.check_max_bytes),
        on_run=metrics.trigger_run,
        background=background,
        usercode=usercode,
        ai=ai,
    )
    scheduling = TriggerScheduling(db=db, clock=clock, outbox=outbox, runner=triggers)
    leadership = Leadership(
        dsn=postgres_dsn(db.url),
        on_elected=scheduling.lead,
        on_deposed=scheduling.step_down,
        on_notice=scheduling.heard,
    )
    metrics.leader = lambda: leadership.is_leader
    action_sender = ActionSender(
        db,
        clock,
        fetcher,
        secrets,
        outbox,
        usercode,
        max_bytes=settings.check_max_bytes,
        on_attempt=metrics.action_attempt,
    )
    action_runs = ActionRuns(db, clock, usercode, on_stored=action_sender.wake)
    secrets.usage_finders = (*secrets.usage_finders, actions_using_secrets)
    deliveries = DeliveryProcessor(
        db=db,
        clock=clock,
        outbox=outbox,
        usercode=usercode,
        run_trigger=triggers.run_named,
        ai=ai,
        actions=action_runs,
    )
    receiver = Receiver(
        db=db,
        clock=clock,
        hooks=HookCache(db, clock, keyring),
        writer=DeliveryWriter(
            db, fast_path=fast_message, on_enqueued=outbox.wake, on_unprocessed=deliveries.wake
        ),
        limiter=RateLimiter(clock),
        max_body=settings.webhook_max_body,
        default_rate_limit=settings.webhook_rate_limit,
        max_bytes_per_day=settings.webhook_max_bytes_per_day,
        on_outcome=metrics.webhook,
    )
    bolt = AsyncApp(
        client=slack,
        signing_secret=str(slack_secret),
        # /slack/events checks the signature before Bolt parses anything (bot.slack.http);
        # Socket Mode traffic is not signed. Checking again here would only cost time.
        request_verification_enabled=False,
        process_before_response=True,
        # Bolt's own logger would copy the root level at build time, so LOG_LEVEL=DEBUG
        # would log every reply body, secrets shown once included; ours stays capped.
        logger=logging.getLogger("slack_bolt"),
    )
    bot = Bot(
        settings=settings,
        clock=clock,
        db=db,
        slack=slack,
        outbox=outbox,
        bolt=bolt,
        deliveries=deliveries,
        receiver=receiver,
        policy=policy,
        fetcher=fetcher,
        triggers=triggers,
        scheduling=scheduling,
        background=background,
        users=users,
        retention=Retention(
            db,
            clock,
            days=settings.retention_days,
            may_run=lambda: db.is_sqlite or leadership.is_leader,
        ),
        metrics=metrics,
        leadership=leadership,
        signing_secret=slack_secret,
        ai=ai,
        keyring=keyring,
        socket_mode=_socket_mode(settings, bolt, slack),
    )
    # Secrets are hidden from everything the bot stores for Slack, replies and logs.
    bot.secrets = secrets
    bot.actions = action_sender
    bot.action_runs = action_runs
    triggers.actions = action_runs
    db.outgoing_text = bot.secrets.redact
    # Email triggers read mailboxes with passwords from the secrets.
    triggers.mail = MailWatch(
        bot.secrets,
        policy,
        usercode,
        max_bytes=settings.email_max_bytes,
        categorise=mail_categoriser(ai),
    )
    bot.listeners = _listeners(bot)
    listeners.register(bolt, bot.listeners, db, clock)
    bot.web = _web_app(bot)
    return bot


def _socket_mode(settings: Settings, bolt: AsyncApp, slack: AsyncWebClient) -> SocketMode | None:
    """With SLACK_APP_TOKEN, Slack's requests come over Socket Mode (``/slack/events``
    stays: webhooks need the HTTP server anyway). The connection is asked for through the
    bot's Web API client, so at SLACK_API_URL."""
    if not settings.slack_app_token:
        return None
    return SocketMode(bolt, str(settings.slack_app_token), slack)


def _listeners(bot: Bot) -> listeners.Listeners:
    permissions = Permissions(bot.users, bot.settings.bot_admins)
    channels = ChannelDirectory(bot.slack, bot.clock)
    actions = ActionService(
        db=bot.db,
        clock=bot.clock,
        policy=bot.policy,
        permissions=permissions,
        secrets=bot.secrets,
        runs=bot.action_runs,
        usercode=bot.triggers.usercode,
    )
    triggers = TriggerService(
        db=bot.db,
        clock=bot.clock,
        scheduling=bot.scheduling,
        policy=bot.policy,
        permissions=permissions,
        channels=channels,
        fetcher=bot.fetcher,
        secrets=bot.secrets,
        check_actions=actions.require_existing,
    )
    hooks = HookService(
        settings=bot.settings,
        db=bot.db,
        clock=bot.clock,
        cache=bot.receiver.hooks,
        writer=bot.receiver.writer,
        permissions=permissions,
        find_trigger=triggers.find,
        channels=channels,
        keyring=bot.keyring,
        check_actions=actions.require_existing,
    )
    manual = ManualLimits(bot.clock)
    trigger_slash = TriggerSlash(
        settings=bot.settings,
        db=bot.db,
        clock=bot.clock,
        service=triggers,
        runner=bot.triggers,
        scheduling=bot.scheduling,
        users=bot.users,
        outbox=bot.outbox,
        limits=manual,
        ai=bot.ai,
    )
    action_form = ActionForm(actions, bot.slack, bot.outbox)
    action_slash = ActionSlash(actions, bot.users, action_form.open)
    talk = Conversation(
        settings=bot.settings,
        clock=bot.clock,
        outbox=bot.outbox,
        slack=bot.slack,
        users=bot.users,
        triggers=triggers,
        trigger_slash=trigger_slash,
        hooks=hooks,
        hook_slash=HookSlash(hooks, bot.settings.webhook_rate_limit, bot.users, manual, ai=bot.ai),
        drafts=Drafts(bot.db, bot.clock),
        background=bot.background,
        secrets=bot.secrets,
        action_service=actions,
        action_slash=action_slash,
        open_action_form=action_form.open,
        ai=bot.ai,
    )
    buttons = ActionButtons(actions, bot.db, bot.clock, bot.outbox)
    secret_slash = SecretSlash(
        bot.secrets,
        talk.open_secret_form,
        bot.fetcher,
        bot.outbox,
        bot.background,
        timeout=bot.settings.check_timeout,
        max_bytes=bot.settings.check_max_bytes,
    )
    return listeners.Listeners(
        commands={
            "/hook": talk.hook_command,
            "/trigger": talk.trigger_command,
            "/secret": secret_slash,
            "/action": action_slash,
        },
        events={
            "app_mention": talk.on_mention,
            "message": talk.on_direct_message,
            "app_home_opened": talk.on_home_opened,
        },
        actions=_buttons(talk.actions(), buttons),
        views={**talk.modals(), ACTION_MODAL: action_form.submitted},
        redact=bot.secrets.redact,
        private_text=frozenset({"/secret"}),
    )


def _buttons(
    others: Mapping[str, listeners.ActionHandler], actions: ActionButtons
) -> dict[str | re.Pattern[str], listeners.ActionHandler]:
    """Every button's handler: action buttons (their ids carry the action's name) and the
    others by id."""
    handlers: dict[str | re.Pattern[str], listeners.ActionHandler] = {
        re.compile(f"^{ACTION_BUTTON}:"): actions.on_click
    }
    handlers.update((action_id, handler) for action_id, handler in others.items())
    return handlers


def _ai_steps(
    settings: Settings,
    db: Database,
    clock: Clock,
    metrics: Metrics,
    redact: Callable[[str], str],
) -> AISteps:
    """The optional AI step (off unless AI_BASE_URL and AI_MODEL are set), its budget
    counted in the database so that replicas share it."""
    ai_settings = AISettings(
        base_url=settings.ai_base_url,
        model=settings.ai_model,
        api_key=str(settings.ai_api_key or ""),
        timeout=settings.ai_timeout,
        daily_tokens=settings.ai_daily_tokens,
    )
    client = AIClient(
        ai_settings,
        redact=redact,
        budget=TokenBudget(DatabaseUsageStore(db), settings.ai_daily_tokens),
        metrics=metrics.ai,
        clock=clock.now,
    )
    return AISteps(client)


def _ai_redactor(
    settings: Settings, signing_secret: Secret, secrets: SecretService
) -> Callable[[str], str]:
    """What the AI step hides before anything is sent: every stored secret (``/secret``,
    as the secret service knows them now) and the secrets the bot is configured with,
    whatever an email or payload echoes."""
    values = {
        "SLACK_BOT_TOKEN": settings.slack_bot_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_APP_TOKEN": settings.slack_app_token,
        "AI_API_KEY": settings.ai_api_key,
    }
    keys = str(settings.secrets_key or "").split(",")  # "new,old" while rotating
    values |= {f"SECRETS_KEY_{n}": Secret(key.strip()) for n, key in enumerate(keys, 1)}
    configured = Redactor({name: str(value) for name, value in values.items() if value})

    def redact(text: str) -> str:
        return configured.redact(secrets.redact(text))

    return redact


def _web_app(bot: Bot) -> web.Application:
    app = web.Application(
        client_max_size=bot.settings.webhook_max_body, middlewares=[_errors_as_json]
    )
    app.add_routes(
        [
            web.post("/slack/events", bolt_route(bot.bolt, str(bot.signing_secret))),
            web.post("/hooks/{token}", bot.receiver.handle),
            web.get("/healthz", _healthz(bot)),
            web.get("/readyz", _readyz(bot)),
            web.get("/metrics", _metrics(bot)),
        ]
    )
    app.cleanup_ctx.append(_lifecycle(bot))
    return app


def _healthz(bot: Bot) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        if not await bot.db.is_reachable():
            return web.json_response({"status": "unavailable", "database": "down"}, status=503)
        return web.json_response({"status": "ok", "database": "ok"})

    return handle


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place unexpected errors end: 503 when the database is away (the sender
    retries; nothing was accepted), 500 otherwise, never a traceback to the caller."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except DATABASE_DOWN as error:
        log.warning(
            "%s %s: database unavailable (%s)",
            request.method,
            _route_of(request),
            type(error).__name__,
        )
        return web.json_response(
            {"ok": False, "error": "the database is unavailable; please retry"},
            status=503,
            headers={"Retry-After": "5"},
        )
    except Exception:
        log.exception("%s %s failed", request.method, _route_of(request))
        return web.json_response({"ok": False, "error": "internal error"}, status=500)


def _route_of(request: web.Request) -> str:
    """The route, not the path: ``/hooks/{token}`` must not log the hook's credential."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


def _readyz(bot: Bot) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        checks = {
            "database": await bot.db.is_reachable(),
            "migrations": await bot.db.is_reachable() and await bot.db.at_newest_migration(),
            "slack": await _slack_auth_ok(bot),
        }
        ready = all(checks.values())
        body = {"status": "ready" if ready else "not ready"} | {
            k: "ok" if v else "failing" for k, v in checks.items()
        }
        return web.json_response(body, status=200 if ready else 503)

    return handle


async def _slack_auth_ok(bot: Bot) -> bool:
    """Whether Slack accepts our token, asked at most every `SLACK_CHECK_SECONDS`."""
    checked_at, ok = bot.slack_check
    now = bot.clock.now().timestamp()
    if now - checked_at < SLACK_CHECK_SECONDS:
        return ok
    try:
        await bot.slack.auth_test()
        ok = True
    except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError):
        ok = False
    bot.slack_check = (now, ok)
    return ok


def _metrics(bot: Bot) -> Handler:
    async def refresh() -> Snapshot:
        now = bot.clock.now()
        health = await read_health(bot.db, now)
        return Snapshot(
            health.outbox_pending, age_seconds(health.outbox_oldest, now), health.outbox_failed
        )

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await bot.metrics.render(refresh)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return handle


async def _heartbeat(bot: Bot, url: str) -> None:
    """A dead man's switch: ping ``url`` every minute while this process schedules well."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            if not (bot.leadership.is_leader and bot.triggers.last_lateness < HEARTBEAT_SECONDS):
                continue
            try:
                async with session.get(url) as response:
                    response.release()
            except (aiohttp.ClientError, OSError, TimeoutError) as error:
                log.warning("heartbeat ping failed: %s", type(error).__name__)


def _lifecycle(bot: Bot) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await start(bot)
        yield
        await stop(bot)

    return lifecycle


async def start(bot: Bot) -> None:
    """Open the database (migrating it), then start the background workers."""
    if bot.db.is_sqlite:
        bot.db.claim_sqlite_file()
    # Migrates with SECRETS_KEY, then stops start-up (one line, exit 2) if the key is
    # missing or does not open what is stored.
    await open_with_key(bot.db, bot.settings.secrets_key)
    await bot.secrets.reload()
    bot.stop_redacting_logs = redact_records(bot.secrets.current_redactor)
    bot.loops.append(asyncio.create_task(bot.secrets.watch()))
    if bot.db.is_sqlite:  # one process owns the file: whatever is held was held by a crash
        await bot.outbox.release_all_leases()
        await bot.deliveries.release_all_claims()
        await bot.actions.release_all_claims()
    bot.outbox.start()
    bot.deliveries.start()
    bot.actions.start()
    await bot.leadership.start()
    bot.loops.append(asyncio.create_task(bot.retention.run_forever(), name="retention"))
    traffic = bot.receiver.writer.traffic.run_forever(bot.clock)
    bot.loops.append(asyncio.create_task(traffic, name="hook traffic"))
    if bot.settings.heartbeat_url:
        bot.loops.append(asyncio.create_task(_heartbeat(bot, bot.settings.heartbeat_url)))
    bot.outbox.wake()
    bot.deliveries.wake()
    bot.actions.wake()
    if bot.socket_mode is not None:  # last: what arrives over it needs all of the above
        try:
            await bot.socket_mode.start()
        except ConfigError:
            await stop(bot)
            raise


async def stop(bot: Bot) -> None:
    """Stop the workers (finishing what is in flight), then close the database.

    Each worker stops after those that hand it work: deliveries before triggers (a
    delivery may start a trigger run, which would otherwise start after the runner
    stopped and run against a closed database), and the outbox last. Socket Mode goes
    first: what still arrives over it needs all of them.
    """
    if bot.socket_mode is not None:
        await bot.socket_mode.stop()
    for task in bot.loops:
        task.cancel()
    # Waited for: the secrets' watch may be mid-query, on a connection closed below.
    await asyncio.gather(*bot.loops, return_exceptions=True)
    bot.stop_redacting_logs()
    await bot.receiver.writer.flush()
    await bot.deliveries.stop()
    await bot.leadership.stop()
    await bot.scheduling.stop()
    await bot.background.stop()
    await bot.triggers.flush()
    await bot.actions.stop()
    await bot.triggers.usercode.close()
    await bot.ai.close()
    await bot.outbox.stop()
    await bot.fetcher.close()
    try:  # the last minute's hook request counts
        await bot.receiver.writer.traffic.flush()
    except Exception:
        log.exception("the last hook request counts could not be written")
    await bot.db.close()
