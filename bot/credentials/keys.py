"""The key that encrypts credentials at rest, and the hash that stores hook URL tokens.

``SECRETS_KEY`` holds one Fernet key, or several separated by commas (``new,old``): every
key decrypts, the first one encrypts (`cryptography`'s MultiFernet). Rotating is: put a
new key first, run ``chatops-bot rekey`` (which calls `Keyring.rekey` on every stored
token), then drop the old key.

Errors, none of which ever shows a key::

    ConfigError (bot.errors)       start-up stops with this one line, exit 2
    ├── MalformedKey               SECRETS_KEY (or the local key file) is not Fernet keys
    ├── MissingKey                 encrypted data exists but SECRETS_KEY is not set
    ├── WrongKey                   encrypted data exists that no key in SECRETS_KEY opens
    └── KeyFileError               the local key file cannot be created, read or is shared
    BotError
    └── UndecryptableToken         one stored token no key opens (corrupt or foreign)
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from bot.errors import BotError, ConfigError

KEY_SETTING: Final = "SECRETS_KEY"
KEYGEN_COMMAND: Final = "chatops-bot keygen"
KEY_FILE_MODE: Final = 0o600

# A Fernet key is 32 bytes in url-safe base64: 43 characters and one '='. Checked with a
# pattern because base64's decoder silently skips characters outside its alphabet.
_FERNET_KEY = re.compile(r"[A-Za-z0-9_-]{43}=")
_HOW_TO_GENERATE: Final = f"generate one with `{KEYGEN_COMMAND}`"


class MalformedKey(ConfigError):
    """The key text is not one or more comma-separated Fernet keys."""


class MissingKey(ConfigError):
    """Encrypted credentials are stored but no key was given."""


class WrongKey(ConfigError):
    """Encrypted credentials are stored that none of the given keys decrypts."""


class KeyFileError(ConfigError):
    """The local mode key file cannot be created or read, or others may read it."""


class UndecryptableToken(BotError):
    """A stored token that no key decrypts: the wrong key, or damaged data."""


def generate_key() -> str:
    """A new random Fernet key, as text for ``SECRETS_KEY``."""
    return Fernet.generate_key().decode("ascii")


def hash_token(token: str) -> str:
    """The SHA-256 hex digest of a hook URL token: what is stored and looked up.

    URL tokens carry 192 random bits, so a plain fast hash is enough (no salt or
    stretching needed); a stolen database then holds no working hook URL.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Keyring:
    """Encrypts with the first key of ``SECRETS_KEY``, decrypts with any of them."""

    __slots__ = ("_all", "_count", "_first")

    def __init__(self, keys: Sequence[str], *, source: str = KEY_SETTING) -> None:
        """Keys as text; ``source`` names where they came from in error messages."""
        fernets = [_fernet(key, index, len(keys), source) for index, key in enumerate(keys)]
        if not fernets:
            raise MalformedKey(f"{source} is empty: {_HOW_TO_GENERATE}")
        self._first = fernets[0]
        self._all = MultiFernet(fernets)
        self._count = len(fernets)

    @classmethod
    def from_setting(cls, text: str, *, source: str = KEY_SETTING) -> Keyring:
        """Parse ``"k1"`` or ``"k1,k2"`` (spaces around commas are ignored)."""
        return cls([part.strip() for part in text.split(",")], source=source)

    def __repr__(self) -> str:
        return f"Keyring({self._count} key{'s' if self._count != 1 else ''})"

    @property
    def key_count(self) -> int:
        """How many keys decrypt (the first of them also encrypts)."""
        return self._count

    def encrypt(self, plaintext: str) -> str:
        """A Fernet token (ASCII text) of ``plaintext`` under the first key."""
        return self._first.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The plaintext of a token made by any of the keys, or `UndecryptableToken`."""
        try:
            return self._all.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise _undecryptable() from exc

    def needs_rekey(self, token: str) -> bool:
        """True when the token opens only with an older key (not the first).

        Raises `UndecryptableToken` when no key opens it, so a rekey run never
        passes over damaged data in silence.
        """
        if self._opens_with_first(token):
            return False
        self.decrypt(token)
        return True

    def rekey(self, token: str) -> str:
        """The same plaintext encrypted under the first key (unchanged if it already is)."""
        if not self.needs_rekey(token):
            return token
        return self._all.rotate(token.encode("ascii")).decode("ascii")

    def verify_can_decrypt(self, sample_token: str | None) -> None:
        """Start-up check: raise `WrongKey` if a stored token (if any) does not open.

        ``sample_token`` is any one encrypted value from the database, or None when
        nothing is stored yet (then any well-formed key is right).
        """
        if sample_token is None:
            return
        try:
            self.decrypt(sample_token)
        except UndecryptableToken:
            raise WrongKey(
                f"{KEY_SETTING} does not decrypt the credentials already stored: set it to "
                "the key they were encrypted with (to rotate, give both: "
                f"{KEY_SETTING}=new,old); a new key can be made with `{KEYGEN_COMMAND}` "
                "but cannot read what is stored"
            ) from None

    def _opens_with_first(self, token: str) -> bool:
        try:
            self._first.extract_timestamp(token.encode("ascii"))
        except (InvalidToken, UnicodeError):
            return False
        return True


def keyring_for_startup(setting: str | None, sample_token: str | None) -> Keyring | None:
    """The start-up decision about ``SECRETS_KEY``, with its one-line errors.

    ``setting`` is the variable's text (None or blank when unset); ``sample_token`` is any
    one stored encrypted value (None when nothing is stored). Returns None when no key
    is set and nothing is encrypted yet: the bot runs, and storing a secret must ask
    for a key. Raises `MalformedKey`, `MissingKey` or `WrongKey` (all `ConfigError`).
    """
    if setting is None or not setting.strip():
        if sample_token is None:
            return None
        raise MissingKey(
            f"{KEY_SETTING} is not set, but the database holds encrypted credentials: set "
            f"it to the key they were encrypted with (`{KEYGEN_COMMAND}` makes a new key, "
            "which cannot read what is stored)"
        )
    keyring = Keyring.from_setting(setting)
    keyring.verify_can_decrypt(sample_token)
    return keyring


def load_or_create_key_file(path: Path) -> str:
    """The key kept in ``path`` for local mode, made on first use with mode 0600.

    Creation is atomic and safe against a concurrent start: the key is written to a
    private temporary file (O_CREAT|O_EXCL, fchmod 0600 before any byte is written),
    then hard-linked to ``path``, which fails if another process got there first; the
    loser reads the winner's complete file. A file others may read is refused.
    """
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from None
    try:
        _create_key_file(path, generate_key())
    except FileExistsError:
        pass  # another process won the race: its file is complete, read it
    except OSError as exc:
        raise KeyFileError(f"cannot create the key file {path}: {exc.strerror}") from None
    try:
        return _read_key_file(path)
    except FileNotFoundError:
        raise KeyFileError(f"the key file {path} vanished while starting") from None


def _fernet(key: str, index: int, count: int, source: str) -> Fernet:
    if not _FERNET_KEY.fullmatch(key):
        which = f"key {index + 1} of {count}" if count > 1 else "the key"
        problem = (
            "is empty" if not key else "is not a Fernet key (44 characters of url-safe base64)"
        )
        raise MalformedKey(
            f"{source}: {which} {problem}; {source} takes one key, or new,old to rotate; "
            f"{_HOW_TO_GENERATE}"
        )
    return Fernet(key)


def _undecryptable() -> UndecryptableToken:
    return UndecryptableToken(
        f"a stored credential does not decrypt with {KEY_SETTING}: the wrong key, or the "
        "data is damaged"
    )


def _read_key_file(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY)
    with os.fdopen(fd, "r", encoding="ascii", errors="replace") as file:
        _refuse_shared_file(path, os.fstat(file.fileno()))
        text = file.read().strip()
    Keyring.from_setting(text, source=f"the key file {path}")
    return text


def _refuse_shared_file(path: Path, info: os.stat_result) -> None:
    # Like ssh with its private keys: a key others can read is not a secret any more.
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise KeyFileError(f"the key file {path} can be read by others: run `chmod 600 {path}`")


def _create_key_file(path: Path, key: str) -> None:
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as file:
            os.fchmod(file.fileno(), KEY_FILE_MODE)  # exactly 0600, whatever the umask
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    _sync_directory(path.parent)


def _sync_directory(directory: Path) -> None:
    # A key lost in a crash makes everything encrypted with it unreadable.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
