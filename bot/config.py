"""Settings: built once from the environment at the entry point, then passed around frozen.

No other module reads ``os.environ``. A missing or malformed value raises `ConfigError`
naming the variable and what is expected; the CLI prints that one line and exits 2.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.errors import ConfigError

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_AI_DAILY_TOKENS = 200_000
DEFAULT_AI_TIMEOUT = 20.0
DEFAULT_DATABASE_URL = "sqlite:///chatops.db"
LOCAL_DATABASE_URL = "sqlite:///chatops-local.db"


class Secret(str):
    """A string whose ``repr`` never shows its value, so settings can be logged safely."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('**********')"


@dataclass(frozen=True)
class Settings:
    """Everything the bot is configured with. See `.env.example` for each variable."""

    slack_bot_token: Secret | None
    slack_signing_secret: Secret | None
    slack_app_token: Secret | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 3000
    public_url: str = "http://localhost:3000"
    webhook_max_body: int = 1 << 20
    webhook_rate_limit: int = 600
    webhook_max_bytes_per_day: int = 200 << 20
    retention_days: int = 30
    trigger_min_interval: int = 60
    check_timeout: float = 10.0
    check_max_bytes: int = 1 << 20
    check_allowlist: tuple[str, ...] = ()
    check_concurrency: int = 50
    slack_channel_rate: float = 1.0
    slack_channel_burst: int = 3
    bot_admins: frozenset[str] = field(default_factory=frozenset)
    log_level: str = "INFO"
    log_format: str = "text"
    heartbeat_url: str | None = None
    # SECRETS_KEY: Fernet keys (new,old) that encrypt credentials at rest.
    secrets_key: Secret | None = None
    # The optional AI step (bot.ai): on only when both the endpoint and the model are set.
    ai_base_url: str | None = None
    ai_api_key: Secret | None = None
    ai_model: str | None = None
    ai_daily_tokens: int = DEFAULT_AI_DAILY_TOKENS
    ai_timeout: float = DEFAULT_AI_TIMEOUT
    # A mail larger than this is summarised from its headers, never fetched.
    email_max_bytes: int = 10_000_000
    # Local mode only: Slack's requests reach the bot over Socket Mode, as with SLACK_APP_TOKEN.
    local_socket_mode: bool = False

    @property
    def local_mode(self) -> bool:
        """No Slack credentials at all: talk to the built-in fake Slack instead."""
        return self.slack_bot_token is None and self.slack_signing_secret is None

    def hook_url(self, token: str) -> str:
        """The URL a sender posts to for the hook with this token."""
        return f"{self.public_url.rstrip('/')}/hooks/{token}"


def to_async_driver(url: str) -> str:
    """Map ``postgresql://`` and ``sqlite:///`` URLs onto asyncpg and aiosqlite.

    libpq's ``sslmode=`` becomes asyncpg's ``ssl=`` (SQLAlchemy passes query parameters
    to asyncpg as keywords).
    """
    scheme, sep, rest = url.partition("://")
    drivers = {
        "postgres": "postgresql+asyncpg",
        "postgresql": "postgresql+asyncpg",
        "sqlite": "sqlite+aiosqlite",
    }
    driver = drivers.get(scheme, scheme)
    if driver.startswith("postgresql"):
        rest = rest.replace("sslmode=", "ssl=")
    return driver + sep + rest


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build `Settings` from environment variables, or raise `ConfigError` for the first bad one."""
    reader = _Reader(env)
    token = reader.secret("SLACK_BOT_TOKEN")
    signing = reader.secret("SLACK_SIGNING_SECRET")
    _require_both_or_neither(token, signing)
    port = reader.integer("PORT", 3000, low=1, high=65535)
    return Settings(
        slack_bot_token=token,
        slack_signing_secret=signing,
        slack_app_token=reader.secret("SLACK_APP_TOKEN"),
        slack_api_url=reader.url("SLACK_API_URL", DEFAULT_SLACK_API_URL, trailing_slash=True),
        database_url=reader.database_url(local=token is None and signing is None),
        host=reader.text("HOST", "127.0.0.1"),
        port=port,
        public_url=reader.url("PUBLIC_URL", f"http://localhost:{port}"),
        webhook_max_body=reader.integer("WEBHOOK_MAX_BODY", 1 << 20, low=1024, high=64 << 20),
        webhook_rate_limit=reader.integer("WEBHOOK_RATE_LIMIT", 600, low=1, high=1_000_000),
        webhook_max_bytes_per_day=reader.integer(
            "WEBHOOK_MAX_BYTES_PER_DAY", 200 << 20, low=1 << 20, high=1 << 40
        ),
        retention_days=reader.integer("RETENTION_DAYS", 30, low=1, high=3650),
        trigger_min_interval=reader.integer("TRIGGER_MIN_INTERVAL", 60, low=1, high=86_400),
        check_timeout=reader.number("CHECK_TIMEOUT", 10.0, low=0.1, high=120),
        check_max_bytes=reader.integer("CHECK_MAX_BYTES", 1 << 20, low=1024, high=64 << 20),
        check_allowlist=reader.allowlist("CHECK_ALLOWLIST"),
        check_concurrency=reader.integer("CHECK_CONCURRENCY", 50, low=1, high=1000),
        slack_channel_rate=reader.number("SLACK_CHANNEL_RATE", 1.0, low=0.01, high=1000),
        slack_channel_burst=reader.integer("SLACK_CHANNEL_BURST", 3, low=1, high=1000),
        bot_admins=frozenset(reader.words("BOT_ADMINS")),
        log_level=reader.choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        log_format=reader.choice("LOG_FORMAT", "text", ("text", "json")),
        heartbeat_url=reader.optional_url("HEARTBEAT_URL"),
        secrets_key=reader.secret("SECRETS_KEY"),
        **_ai_settings(reader),
        email_max_bytes=reader.integer("EMAIL_MAX_BYTES", 10_000_000, low=10_000, high=100_000_000),
        local_socket_mode=_local_socket_mode(reader, local=token is None and signing is None),
    )


def _ai_settings(reader: _Reader) -> dict[str, Any]:
    """The ``AI_*`` variables; an endpoint without a model (or the reverse) is an error."""
    base_url = reader.optional_url("AI_BASE_URL")
    model = reader.text("AI_MODEL", "") or None
    if base_url and not model:
        raise ConfigError(
            "AI_MODEL is missing: AI_BASE_URL is set, so the model to ask is needed too "
            "(e.g. gpt-4o-mini, or llama3.1 on Ollama), or unset AI_BASE_URL to turn AI off"
        )
    if model and not base_url:
        raise ConfigError(
            "AI_BASE_URL is missing: AI_MODEL is set, so the endpoint is needed too "
            "(e.g. https://api.openai.com/v1 or http://localhost:11434/v1), "
            "or unset AI_MODEL to turn AI off"
        )
    return {
        "ai_base_url": base_url,
        "ai_api_key": reader.secret("AI_API_KEY"),
        "ai_model": model,
        "ai_daily_tokens": reader.integer(
            "AI_DAILY_TOKENS", DEFAULT_AI_DAILY_TOKENS, low=0, high=1_000_000_000
        ),
        "ai_timeout": reader.number("AI_TIMEOUT", DEFAULT_AI_TIMEOUT, low=1, high=300),
    }


def _local_socket_mode(reader: _Reader, *, local: bool) -> bool:
    """LOCAL_SOCKET_MODE=1 tries Socket Mode against the fake Slack; with real credentials
    it would mean nothing, so it is an error there (SLACK_APP_TOKEN is the real switch)."""
    on = reader.flag("LOCAL_SOCKET_MODE")
    if on and not local:
        raise ConfigError(
            "LOCAL_SOCKET_MODE is for local mode (no Slack credentials); with a workspace, "
            "set SLACK_APP_TOKEN (xapp-…) to use Socket Mode"
        )
    return on


def _require_both_or_neither(token: Secret | None, signing: Secret | None) -> None:
    if token and not signing:
        raise ConfigError(
            "SLACK_SIGNING_SECRET is missing: SLACK_BOT_TOKEN is set, so the signing secret "
            "from your app's Basic Information page is needed too "
            "(or unset both to run in local mode)"
        )
    if signing and not token:
        raise ConfigError(
            "SLACK_BOT_TOKEN is missing: SLACK_SIGNING_SECRET is set, so the bot token "
            "(xoxb-…) from your app's OAuth & Permissions page is needed too "
            "(or unset both to run in local mode)"
        )


class _Reader:
    """Reads one variable at a time, turning a bad value into a one-line `ConfigError`."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def _raw(self, name: str) -> str | None:
        value = self._env.get(name, "").strip()
        return value or None

    def text(self, name: str, default: str) -> str:
        return self._raw(name) or default

    def secret(self, name: str) -> Secret | None:
        value = self._raw(name)
        return Secret(value) if value else None

    def flag(self, name: str) -> bool:
        """An on/off setting: 1, true, yes or on; 0, false, no, off or unset."""
        raw = (self._raw(name) or "0").lower()
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be 1 or 0 (on or off), got {raw!r}")

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def number(self, name: str, default: float, *, low: float, high: float) -> float:
        raw = self._raw(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if not low <= value <= high:
            raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        return value

    def url(self, name: str, default: str, *, trailing_slash: bool = False) -> str:
        raw = self._raw(name) or default
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"{name} must be an http(s) URL like https://example.com/, got {raw!r}"
            )
        if trailing_slash and not raw.endswith("/"):
            raw += "/"
        return raw

    def optional_url(self, name: str) -> str | None:
        return self.url(name, "") if self._raw(name) else None

    def database_url(self, *, local: bool) -> str:
        # Local mode keeps its data apart, so that what one tries there is not posted
        # once Slack is connected.
        raw = self._raw("DATABASE_URL") or (LOCAL_DATABASE_URL if local else DEFAULT_DATABASE_URL)
        scheme = raw.partition("://")[0].split("+")[0]
        if scheme not in ("sqlite", "postgresql", "postgres") or "://" not in raw:
            raise ConfigError(
                "DATABASE_URL must be sqlite:///path/to/file.db or "
                f"postgresql://user@host:5432/dbname, got {raw!r}"
            )
        return raw

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        raw = self._raw(name)
        if raw is None:
            return default
        for option in options:
            if raw.lower() == option.lower():
                return option
        raise ConfigError(f"{name} must be one of {', '.join(options)}, got {raw!r}")

    def words(self, name: str) -> list[str]:
        raw = self._raw(name) or ""
        return [word for word in raw.replace(",", " ").split() if word]

    def allowlist(self, name: str) -> tuple[str, ...]:
        entries = self.words(name)
        for entry in entries:
            if not (_is_network(entry) or _is_hostname(entry)):
                raise ConfigError(
                    f"{name} entries must be hosts or CIDRs like 10.0.0.0/8, got {entry!r}"
                )
        return tuple(entries)


def _is_network(entry: str) -> bool:
    try:
        ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
    return True


def _is_hostname(entry: str) -> bool:
    return all(part.isalnum() or "-" in part for part in entry.split(".")) and bool(entry)


def local_key_file(settings: Settings) -> Path | None:
    """Where local mode keeps its generated SECRETS_KEY: beside its SQLite database
    (``chatops-local.db`` → ``chatops-local.key``). None outside local mode, when
    SECRETS_KEY is set, or when the database is not a SQLite file."""
    if not settings.local_mode or settings.secrets_key is not None:
        return None
    database = sqlite_path(settings.database_url)
    return None if database is None else database.with_suffix(".key")


def sqlite_path(database_url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    scheme, _, rest = database_url.partition("://")
    if not scheme.startswith("sqlite"):
        return None
    path = rest[1:] if rest.startswith("/") else rest
    return None if path in ("", ":memory:") else Path(path)
