"""Settings from the environment: defaults, drivers, and one clear error per bad value."""

from __future__ import annotations

import pytest

from bot.config import ConfigError, load_settings, to_async_driver
from bot.leader import postgres_dsn


@pytest.mark.parametrize(
    ("url", "engine_url", "dsn"),
    [
        ("sqlite:///chatops.db", "sqlite+aiosqlite:///chatops.db", None),
        (
            "postgresql://u@db:5432/bot",
            "postgresql+asyncpg://u@db:5432/bot",
            "postgresql://u@db:5432/bot",
        ),
        (
            "postgres://u@db/bot?sslmode=require",
            "postgresql+asyncpg://u@db/bot?ssl=require",
            "postgresql://u@db/bot?sslmode=require",
        ),
    ],
)
def test_database_urls_get_their_async_drivers(url: str, engine_url: str, dsn: str | None) -> None:
    assert to_async_driver(url) == engine_url
    assert postgres_dsn(to_async_driver(url)) == dsn


def test_defaults_are_local_mode_on_sqlite() -> None:
    settings = load_settings({})
    assert settings.local_mode and settings.port == 3000
    assert settings.database_url == "sqlite:///chatops-local.db"  # kept apart from Slack's
    assert settings.hook_url("abc") == "http://localhost:3000/hooks/abc"


def test_with_slack_credentials_the_default_database_is_chatops_db() -> None:
    settings = load_settings({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert settings.database_url == "sqlite:///chatops.db"
    assert load_settings({"DATABASE_URL": "sqlite:///x.db"}).database_url == "sqlite:///x.db"


def test_secrets_never_show_in_repr() -> None:
    settings = load_settings(
        {"SLACK_BOT_TOKEN": "xoxb-secret-value", "SLACK_SIGNING_SECRET": "shh-secret"}
    )
    assert "xoxb-secret-value" not in repr(settings) and "shh-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"WEBHOOK_MAX_BODY": "12"}, "WEBHOOK_MAX_BODY"),
        ({"CHECK_ALLOWLIST": "10.0.0.0/8 not/a/host"}, "CHECK_ALLOWLIST"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"HEARTBEAT_URL": "ftp://x"}, "HEARTBEAT_URL"),
        ({"CHECK_TIMEOUT": "soon"}, "CHECK_TIMEOUT"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)
