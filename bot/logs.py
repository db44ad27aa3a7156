"""Logging: readable lines by default, one JSON object a line with LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from bot.credentials.redact import RedactingFilter, Redactor

# Attributes every LogRecord has; anything else was passed with ``extra=`` and is context.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra=`` context (delivery_id, trigger_id…)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {k: v for k, v in record.__dict__.items() if k not in _STANDARD}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str, fmt: str) -> None:
    """Send logs to stderr in the chosen format. Called once, at the entry point."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Bolt, aiohttp and APScheduler (a line per job run) are chatty at INFO; their
    # warnings still show. The database drivers' INFO and DEBUG lines carry SQL with its
    # parameters (tokens, secrets), which are never logged.
    chatty = ("slack_bolt", "aiohttp.access", "slack_sdk", "apscheduler")
    drivers = ("aiosqlite", "asyncpg", "sqlalchemy.engine")
    for name in (*chatty, *drivers):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # The app hands Bolt this logger (see bot.app.build).
    logging.getLogger("slack_bolt").addFilter(_drop_client_and_token_warning)


def _drop_client_and_token_warning(record: logging.LogRecord) -> bool:
    # The bot hands Bolt its own Web API client (timeouts, SLACK_API_URL, no retries: the
    # outbox retries), and Bolt also reads SLACK_BOT_TOKEN from the environment; it then
    # warns at every start that the token is unused, which is expected here.
    return not record.getMessage().startswith("As you gave `client` as well")


def redact_records(current: Callable[[], Redactor]) -> Callable[[], None]:
    """Hide every secret's value (``••••(NAME)``) in what the root logger's handlers write.

    ``current`` returns the redactor for the secrets as they are now. The filter goes on
    the handlers, not a logger: a logger's filter misses its children's records. Returns
    the function that takes it off again.
    """
    redacting = RedactingFilter(current)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redacting)

    def remove() -> None:
        for handler in handlers:
            handler.removeFilter(redacting)

    return remove
