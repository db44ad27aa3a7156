"""The keyring (SECRETS_KEY), the start-up decision, the local key file and token hashes."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.credentials.keys import (
    KEY_SETTING,
    KeyFileError,
    Keyring,
    MalformedKey,
    MissingKey,
    UndecryptableToken,
    WrongKey,
    _create_key_file,
    generate_key,
    hash_token,
    keyring_for_startup,
    load_or_create_key_file,
)
from bot.errors import ConfigError

NEW = generate_key()
OLD = generate_key()


def test_generated_keys_are_fernet_keys_and_differ() -> None:
    assert NEW != OLD
    assert len(NEW) == 44
    Fernet(NEW)  # raises if not a key


def test_round_trip_with_unicode() -> None:
    keyring = Keyring.from_setting(NEW)
    token = keyring.encrypt("pässwörd ✓ s3cr3t")
    assert token != "pässwörd ✓ s3cr3t"
    assert "s3cr3t" not in token
    assert keyring.decrypt(token) == "pässwörd ✓ s3cr3t"


def test_each_encryption_is_fresh() -> None:
    keyring = Keyring.from_setting(NEW)
    assert keyring.encrypt("same") != keyring.encrypt("same")


def test_two_keys_decrypt_with_either_and_encrypt_with_the_first() -> None:
    old_only = Keyring.from_setting(OLD)
    both = Keyring.from_setting(f"{NEW}, {OLD}")
    assert both.key_count == 2
    old_token = old_only.encrypt("value")
    assert both.decrypt(old_token) == "value"
    new_token = both.encrypt("value")
    assert Keyring.from_setting(NEW).decrypt(new_token) == "value"
    with pytest.raises(UndecryptableToken):
        old_only.decrypt(new_token)


def test_needs_rekey_and_rekey() -> None:
    both = Keyring.from_setting(f"{NEW},{OLD}")
    old_token = Keyring.from_setting(OLD).encrypt("value")
    new_token = both.encrypt("value")
    assert both.needs_rekey(old_token) is True
    assert both.needs_rekey(new_token) is False
    rekeyed = both.rekey(old_token)
    assert both.needs_rekey(rekeyed) is False
    assert Keyring.from_setting(NEW).decrypt(rekeyed) == "value"
    assert both.rekey(new_token) == new_token


def test_rekey_refuses_a_token_no_key_opens() -> None:
    stranger = Keyring.from_setting(generate_key()).encrypt("value")
    keyring = Keyring.from_setting(f"{NEW},{OLD}")
    with pytest.raises(UndecryptableToken):
        keyring.needs_rekey(stranger)
    with pytest.raises(UndecryptableToken):
        keyring.rekey(stranger)


@pytest.mark.parametrize(
    "token",
    ["", "not a token", "gAAAAA", "ünïcode", Fernet(NEW).encrypt(b"x").decode()[:-4] + "AAAA"],
)
def test_damaged_tokens_are_undecryptable(token: str) -> None:
    with pytest.raises(UndecryptableToken) as caught:
        Keyring.from_setting(NEW).decrypt(token)
    assert KEY_SETTING in str(caught.value)


@pytest.mark.parametrize(
    ("setting", "fragment"),
    [
        ("", "the key is empty"),
        ("short", "the key is not a Fernet key"),
        (NEW[:-1] + "!", "the key is not a Fernet key"),  # outside the alphabet
        (NEW.replace("=", ""), "the key is not a Fernet key"),
        (f"{NEW},", "key 2 of 2 is empty"),
        (f"{NEW},{OLD[:20]}", "key 2 of 2 is not a Fernet key"),
        (f"{NEW[:30]}\n{NEW[30:]}", "the key is not a Fernet key"),
    ],
)
def test_malformed_keys_name_the_variable_and_keygen_and_never_the_key(
    setting: str, fragment: str
) -> None:
    with pytest.raises(MalformedKey) as caught:
        Keyring.from_setting(setting)
    message = str(caught.value)
    assert isinstance(caught.value, ConfigError)
    assert fragment in message
    assert message.startswith(KEY_SETTING)
    assert "chatops-bot keygen" in message
    for part in setting.split(","):
        if len(part) >= 5:
            assert part.strip()[:10] not in message
    assert caught.value.__cause__ is None


def test_repr_shows_no_key() -> None:
    keyring = Keyring.from_setting(f"{NEW},{OLD}")
    assert repr(keyring) == "Keyring(2 keys)"
    assert NEW[:8] not in repr(keyring)


def test_startup_without_key_and_without_data_runs() -> None:
    assert keyring_for_startup(None, None) is None
    assert keyring_for_startup("  ", None) is None


def test_startup_without_key_but_with_data_stops() -> None:
    token = Keyring.from_setting(NEW).encrypt("value")
    with pytest.raises(MissingKey) as caught:
        keyring_for_startup(None, token)
    assert str(caught.value).startswith(f"{KEY_SETTING} is not set")
    assert "chatops-bot keygen" in str(caught.value)


def test_startup_with_the_wrong_key_stops_without_showing_it() -> None:
    token = Keyring.from_setting(OLD).encrypt("value")
    with pytest.raises(WrongKey) as caught:
        keyring_for_startup(NEW, token)
    message = str(caught.value)
    assert isinstance(caught.value, ConfigError)
    assert message.startswith(KEY_SETTING)
    assert "chatops-bot keygen" in message
    assert NEW[:10] not in message and OLD[:10] not in message
    assert "\n" not in message


def test_startup_with_the_right_key_or_rotation_pair() -> None:
    token = Keyring.from_setting(OLD).encrypt("value")
    assert keyring_for_startup(OLD, token) is not None
    rotating = keyring_for_startup(f"{NEW},{OLD}", token)
    assert rotating is not None and rotating.needs_rekey(token)
    assert keyring_for_startup(NEW, None) is not None


def test_startup_with_a_malformed_key_stops_even_without_data() -> None:
    with pytest.raises(MalformedKey):
        keyring_for_startup("nonsense", None)


def test_hash_token_is_sha256_hex() -> None:
    assert hash_token("abc") == hashlib.sha256(b"abc").hexdigest()
    assert hash_token("abc") != hash_token("abd")
    assert len(hash_token("x" * 32)) == 64


# The local key file


def test_key_file_is_created_with_mode_0600_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "chatops-local.key"
    first = load_or_create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Fernet(first)
    assert load_or_create_key_file(path) == first
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left


def test_key_file_mode_does_not_depend_on_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o777)  # would leave a file nobody can read
    try:
        load_or_create_key_file(tmp_path / "k")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k"
    load_or_create_key_file(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError) as caught:
        load_or_create_key_file(path)
    assert "chmod 600" in str(caught.value)


def test_key_file_with_garbage_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "k"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not-a-key\n")
    os.close(fd)
    with pytest.raises(MalformedKey) as caught:
        load_or_create_key_file(path)
    assert str(path) in str(caught.value)
    assert "not-a-key" not in str(caught.value)


def test_key_file_in_a_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError) as caught:
        load_or_create_key_file(tmp_path / "nope" / "k")
    assert "cannot create" in str(caught.value)


def test_concurrent_creation_gives_every_caller_the_same_key(tmp_path: Path) -> None:
    # Threads reach the same system calls (open O_EXCL, link) truly in parallel: the
    # GIL is released around each of them.
    path = tmp_path / "race.key"
    workers = 8
    barrier = threading.Barrier(workers)

    def create() -> str:
        barrier.wait(timeout=60)
        return load_or_create_key_file(path)

    with ThreadPoolExecutor(workers) as pool:
        keys = list(pool.map(lambda _: create(), range(workers)))
    assert len(set(keys)) == 1
    assert path.read_text().strip() == keys[0]
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_losing_the_race_leaves_the_winners_file_untouched(tmp_path: Path) -> None:
    path = tmp_path / "k"
    winner = load_or_create_key_file(path)
    with pytest.raises(FileExistsError):
        _create_key_file(path, generate_key())
    assert load_or_create_key_file(path) == winner
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
