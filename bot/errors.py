"""The bot's own exceptions, in one place.

    BotError
    ├── ConfigError      a missing or malformed setting; start-up stops with one line
    └── AlreadyRunning   another process holds this SQLite database

Expected failures of user input are not exceptions here: each parser raises its own
``ValueError`` subclass carrying the part it could not understand (see
`bot.triggers.schedule`, `bot.slack.text`), which the command layer turns into a reply.
"""

from __future__ import annotations


class BotError(Exception):
    """Base class for the bot's own errors."""


class ConfigError(BotError):
    """A setting is missing or malformed. The message names the variable."""


class AlreadyRunning(BotError):
    """Another bot process already uses this SQLite database file."""
