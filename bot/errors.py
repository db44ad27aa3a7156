"""The bot's own exceptions, in one place.

    BotError
    ├── ConfigError      a missing or malformed setting; start-up stops with one line
    └── AlreadyRunning   another process holds this SQLite database

    UsageError           what a person asked cannot be done; answered privately
    └── SpecError        a definition (trigger, hook) that cannot be saved, with its field

Parsers of user input raise their own ``ValueError`` subclasses carrying the part they
could not understand (see `bot.triggers.schedule`, `bot.slack.text`); the front door that
called them turns those into a `UsageError` or `SpecError`, and the slash-command layer
(or a form, or a button) turns that into a reply.
"""

from __future__ import annotations


class BotError(Exception):
    """Base class for the bot's own errors."""


class ConfigError(BotError):
    """A setting is missing or malformed. The message names the variable."""


class AlreadyRunning(BotError):
    """Another bot process already uses this SQLite database file."""


class UsageError(ValueError):
    """What the user asked cannot be done; the message says why and shows a working example."""


class SpecError(UsageError):
    """A definition that cannot be saved.

    ``field`` is the form field it belongs to (``name``, ``schedule``, ``target``,
    ``condition``, ``channel``, ``timezone``, ``options``, ``preset``, ``secret``) so a
    modal can show it there; ``part`` is the fragment of typed text at fault, if any.
    """

    def __init__(self, message: str, *, field: str, part: str = "") -> None:
        super().__init__(message)
        self.field = field
        self.part = part
