"""What /secret reads from typed words, and the specs it builds (pure: no bot, no network)."""

from __future__ import annotations

import pytest

from bot.credentials.service import secrets_in_options
from bot.credentials.slash import parse_set, parse_test
from bot.credentials.spec import (
    SecretSpec,
    SecretTarget,
    parse_target_hosts,
    secret_target_from_dict,
)
from bot.errors import SpecError, UsageError
from bot.slack.text import tokenize

VALUE = "tok-0123456789abcdef"


def words(text: str) -> list[str]:
    return tokenize(text)


@pytest.mark.parametrize(
    ("typed", "name", "hosts", "basic", "user", "value"),
    [
        ("crm for api.crm.example.com", "crm", ["api.crm.example.com"], False, None, None),
        ("CRM for api.crm.example.com", "crm", ["api.crm.example.com"], False, None, None),
        (
            "crm for api.example.com,*.example.com",
            "crm",
            ["api.example.com", "*.example.com"],
            False,
            None,
            None,
        ),
        (
            "crm for api.example.com, *.example.com imap.example.com",
            None,
            None,
            None,
            None,
            None,
        ),
        (
            "crm for <http://api.example.com|api.example.com>, imap.example.com:993",
            "crm",
            ["api.example.com", "imap.example.com:993"],
            False,
            None,
            None,
        ),
        ("mail for imap.example.com:993 basic", "mail", ["imap.example.com:993"], True, None, None),
        (
            "mail for imap.example.com:993 user=ops-bot",
            "mail",
            ["imap.example.com:993"],
            True,
            "ops-bot",
            None,
        ),
        (f"crm for api.example.com {VALUE}", "crm", ["api.example.com"], False, None, VALUE),
        (
            f'crm for api.example.com "{VALUE} x"',
            "crm",
            ["api.example.com"],
            False,
            None,
            f"{VALUE} x",
        ),
        (
            f"mail for imap.example.com:993 user=bot {VALUE}",
            "mail",
            ["imap.example.com:993"],
            True,
            "bot",
            VALUE,
        ),
    ],
)
def test_set_reads_name_hosts_options_and_an_optional_value(
    typed: str,
    name: str | None,
    hosts: list[str] | None,
    basic: bool | None,
    user: str | None,
    value: str | None,
) -> None:
    if name is None:  # a word that is neither an option nor the one value
        with pytest.raises(UsageError, match="Separate the hosts with commas"):
            parse_set(words(typed))
        return
    parsed = parse_set(words(typed))
    assert parsed.target.name == name
    assert [str(host) for host in parsed.target.hosts] == hosts
    assert (parsed.target.basic, parsed.target.user, parsed.value) == (basic, user, value)


@pytest.mark.parametrize(
    ("typed", "field", "said"),
    [
        ("crm api.example.com", None, "which host"),
        ("crm for", None, "which host"),
        ("bad/name for api.example.com", "name", "not a secret name"),
        ("crm for https://api.example.com/v1", "hosts", "is a URL"),
        ("crm for *.com", "hosts", "public suffix"),
        ("crm for *", "hosts", "anywhere"),
        ("crm for api.example.com <@U123|sam>", None, "Slack changed that value"),
        ("crm for api.example.com a-value b-value", None, "one word"),
    ],
)
def test_set_refuses_what_it_cannot_read(typed: str, field: str | None, said: str) -> None:
    with pytest.raises(UsageError, match=f"(?i){said}") as caught:
        parse_set(words(typed))
    if field is not None:
        assert isinstance(caught.value, SpecError) and caught.value.field == field


def test_a_spec_refuses_a_value_it_cannot_store_without_repeating_it() -> None:
    target = parse_set(words("crm for api.example.com")).target
    for bad in ("s3cr3t!", " padded-value ", "line\nbreak-value"):
        with pytest.raises(SpecError) as caught:
            target.with_value(bad)
        assert caught.value.field == "value" and bad.strip() not in str(caught.value)
    with pytest.raises(SpecError, match="user name") as no_user:
        SecretTarget("m", target.hosts, basic=True).with_value(VALUE)
    assert no_user.value.field == "user"
    with pytest.raises(SpecError) as colon:
        target.with_value(VALUE, "a:b")
    assert colon.value.field == "user"
    spec = target.with_value(VALUE)
    assert VALUE not in repr(spec) and VALUE not in str(spec.to_dict())
    with pytest.raises(SpecError):
        SecretSpec("crm", (), VALUE)


def test_a_target_survives_the_form_s_metadata() -> None:
    target = SecretTarget(
        "mail", parse_target_hosts("imap.example.com:993,*.example.com"), True, "u"
    )
    assert secret_target_from_dict(target.to_dict()) == target
    for broken in (None, {}, {"name": "x", "hosts": "not-a-list"}):
        with pytest.raises(SpecError):
            secret_target_from_dict(broken)
    with pytest.raises(SpecError):
        secret_target_from_dict({"name": "x", "hosts": ["*"]})  # checked again, not trusted


def test_test_reads_a_url_and_the_options_every_feature_uses() -> None:
    parsed = parse_test(
        words(
            "<https://api.example.com/me> auth=bearer:crm header.X-Trace=t1 header.X-Key=secret:k"
        )
    )
    assert parsed.url == "https://api.example.com/me"
    assert [ref.describe() for ref in parsed.refs] == [
        "Authorization: Bearer ••••(crm)",
        "X-Trace: t1",
        "X-Key: ••••(k)",
    ]
    for typed, said in (
        ("api.example.com auth=bearer:crm", "Which URL"),
        ("https://api.example.com/ header.X-Trace=t1", "Name the secret"),
        ("https://api.example.com/ auth=token:crm", "bearer:NAME or basic:NAME"),
        ("https://api.example.com/ header.X-Api-Key=abc", "looks like a credential"),
        ("https://api.example.com/ crm", "not an option"),
    ):
        with pytest.raises(UsageError, match=said):
            parse_test(words(typed))


def test_the_secrets_that_stored_options_refer_to() -> None:
    options = {
        "auth": "bearer:crm",
        "header.X-Api-Key": "secret:KEY",
        "header.X-Trace": "abc",
        "retries": "3",
        "auth2": "bearer:nope",
        "header.Bad Name": "secret:ignored",
    }
    assert secrets_in_options(options) == frozenset({"crm", "key"})
