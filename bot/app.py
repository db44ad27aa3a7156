"""The composition root: the one place that builds the bot from its settings.

config → database → outbox → scheduler → Bolt app → aiohttp app. Nothing else creates
long-lived objects; every module receives what it needs as arguments.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.conversation.flows import Conversation
from bot.db import Database
from bot.net import AddressPolicy, SafeFetcher
from bot.outbox import Outbox, Pacing
from bot.permissions import Permissions
from bot.slack import listeners
from bot.slack.http import bolt_route
from bot.triggers.commands import TriggerCommands
from bot.triggers.runner import TriggerRunner
from bot.webhooks.commands import HookCommands
from bot.webhooks.hooks import HookCache
from bot.webhooks.ingest import DeliveryWriter
from bot.webhooks.processor import DeliveryProcessor, fast_message
from bot.webhooks.receiver import RateLimiter, Receiver

log = logging.getLogger(__name__)

LOCAL_BOT_TOKEN = "xoxb-local-mode"
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
    listeners: listeners.Listeners = field(init=False)
    web: web.Application = field(init=False)


def build(
    settings: Settings, *, clock: Clock | None = None, signing_secret: str | None = None
) -> Bot:
    """Wire the bot. ``signing_secret`` overrides the configured one (local mode)."""
    clock = clock or SystemClock()
    db = Database(settings.database_url)
    slack = AsyncWebClient(
        token=str(settings.slack_bot_token or LOCAL_BOT_TOKEN),
        base_url=settings.slack_api_url,
        retry_handlers=[],
    )
    outbox = Outbox(
        db=db,
        client=slack,
        clock=clock,
        pacing=Pacing(rate=settings.slack_channel_rate, burst=settings.slack_channel_burst),
    )
    policy = AddressPolicy.from_allowlist(settings.check_allowlist)
    fetcher = SafeFetcher(policy)
    triggers = TriggerRunner(
        db=db,
        clock=clock,
        outbox=outbox,
        fetcher=fetcher,
        check_timeout=settings.check_timeout,
        concurrency=settings.check_concurrency,
    )
    deliveries = DeliveryProcessor(db=db, clock=clock, outbox=outbox, run_trigger=triggers.run_now)
    receiver = Receiver(
        db=db,
        clock=clock,
        hooks=HookCache(db, clock),
        writer=DeliveryWriter(
            db, fast_path=fast_message, on_enqueued=outbox.wake, on_unprocessed=deliveries.wake
        ),
        limiter=RateLimiter(clock),
        max_body=settings.webhook_max_body,
        default_rate_limit=settings.webhook_rate_limit,
    )
    bolt = AsyncApp(
        client=slack,
        signing_secret=signing_secret or str(settings.slack_signing_secret or ""),
        process_before_response=True,
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
    )
    bot.listeners = _listeners(bot)
    listeners.register(bolt, bot.listeners, db, clock)
    bot.web = _web_app(bot)
    return bot


def _listeners(bot: Bot) -> listeners.Listeners:
    permissions = Permissions(bot.slack, bot.clock, bot.settings.bot_admins)
    hook = HookCommands(
        settings=bot.settings,
        db=bot.db,
        clock=bot.clock,
        cache=bot.receiver.hooks,
        writer=bot.receiver.writer,
        find_trigger=bot.triggers.find,
        permissions=permissions,
    )

    trigger = TriggerCommands(
        settings=bot.settings,
        db=bot.db,
        clock=bot.clock,
        runner=bot.triggers,
        outbox=bot.outbox,
        slack=bot.slack,
        policy=bot.policy,
        permissions=permissions,
    )
    talk = Conversation(
        settings=bot.settings,
        db=bot.db,
        clock=bot.clock,
        outbox=bot.outbox,
        slack=bot.slack,
        triggers=trigger,
        hooks=hook,
    )
    return listeners.Listeners(
        commands={"/hook": talk.hook_command, "/trigger": talk.trigger_command},
        events={
            "app_mention": talk.on_mention,
            "message": talk.on_direct_message,
            "app_home_opened": talk.on_home_opened,
        },
        actions=talk.actions(),
        views=talk.modals(),
    )


def _web_app(bot: Bot) -> web.Application:
    app = web.Application(client_max_size=bot.settings.webhook_max_body)
    app.add_routes(
        [
            web.post("/slack/events", bolt_route(bot.bolt)),
            web.post("/hooks/{token}", bot.receiver.handle),
            web.get("/healthz", _healthz(bot)),
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
    await bot.db.migrate()
    if bot.db.is_sqlite:
        await bot.outbox.release_all_leases()
    bot.outbox.start()
    bot.deliveries.start()
    await bot.triggers.start()
    bot.outbox.wake()
    bot.deliveries.wake()


async def stop(bot: Bot) -> None:
    """Stop the workers (finishing what is in flight), then close the database."""
    await bot.receiver.writer.flush()
    await bot.triggers.stop()
    await bot.deliveries.stop()
    await bot.outbox.stop()
    await bot.fetcher.close()
    await bot.db.close()
