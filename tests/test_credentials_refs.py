"""Secret references in options: parsing, showing, and building request headers."""

from __future__ import annotations

import base64

import pytest

from bot.credentials.refs import (
    AuthRef,
    HeaderBuildError,
    HeaderRef,
    LiteralValue,
    RefError,
    ResolvedSecret,
    SecretRef,
    build_headers,
    check_basic_user,
    describe,
    is_credential_option,
    parse_option,
    parse_options,
    parse_secret_name,
    secret_header_names,
    secret_names,
)

STORED = {
    "crm-token": ResolvedSecret("tok_live_12345678"),
    "crm-key": ResolvedSecret("key_abcdefgh"),
    "crm-login": ResolvedSecret("pa55word!", user="ops-bot"),
}


def _resolve(name: str) -> ResolvedSecret:
    return STORED[name]


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("auth", "bearer:crm-token", AuthRef("bearer", SecretRef("crm-token"))),
        ("AUTH", " Bearer:CRM-Token ", AuthRef("bearer", SecretRef("crm-token"))),
        ("auth", "basic:crm-login", AuthRef("basic", SecretRef("crm-login"))),
        ("header.X-Api-Key", "secret:crm-key", HeaderRef("X-Api-Key", SecretRef("crm-key"))),
        ("header.X-Api-Key", "SECRET:crm-key", HeaderRef("X-Api-Key", SecretRef("crm-key"))),
        ("header.Authorization", "secret:raw", HeaderRef("Authorization", SecretRef("raw"))),
        ("header.X-Trace", "chatops", HeaderRef("X-Trace", LiteralValue("chatops"))),
        (
            "header.Accept",
            "application/json",
            HeaderRef("Accept", LiteralValue("application/json")),
        ),
        ("header.X-Empty", "", HeaderRef("X-Empty", LiteralValue(""))),
        ("header.X-Monkey", "banana", HeaderRef("X-Monkey", LiteralValue("banana"))),
        ("header.Cookie", "secret:sess", HeaderRef("Cookie", SecretRef("sess"))),
    ],
)
def test_parse_option(key: str, value: str, expected: AuthRef | HeaderRef) -> None:
    ref = parse_option(key, value)
    assert ref == expected
    assert parse_option(*ref.as_option()) == ref  # the option text reads back


@pytest.mark.parametrize(
    ("key", "value", "fragment", "example"),
    [
        ("auth", "crm-token", "auth takes bearer:NAME or basic:NAME", "auth=bearer:crm-token"),
        ("auth", "token:crm-token", "auth takes bearer:NAME", "auth=bearer:crm-token"),
        ("auth", "digest:x", "auth takes bearer:NAME", "auth=bearer:crm-token"),
        ("auth", "bearer:", "is not a secret name", "auth=bearer:crm-token"),
        ("auth", "bearer:crm token", "is not a secret name", "auth=bearer:crm-token"),
        ("auth", "bearer:-x", "is not a secret name", "auth=bearer:crm-token"),
        ("auth", "bearer:" + "a" * 65, "is not a secret name", "auth=bearer:crm-token"),
        ("header.", "x", "is not a header name", "header.X-Api-Key=secret:crm-key"),
        ("header.X Api", "x", "is not a header name", "header.X-Api-Key=secret:crm-key"),
        ("header.X:Api", "x", "is not a header name", "header.X-Api-Key=secret:crm-key"),
        ("header.X\r\nEvil", "x", "is not a header name", "header.X-Api-Key=secret:crm-key"),
        ("header.Host", "evil.com", "set by the bot itself", "header.X-Api-Key=secret:crm-key"),
        ("header.content-length", "0", "set by the bot itself", "header.X-Api-Key"),
        ("header.Transfer-Encoding", "chunked", "set by the bot itself", "header.X-Api-Key"),
        ("header.Connection", "close", "set by the bot itself", "header.X-Api-Key"),
        ("header.Proxy-Authorization", "secret:x1", "set by the bot itself", "header.X-Api"),
        ("header.X-Trace", "a\r\nX-Evil: 1", "cannot carry", "header.X-Trace=chatops"),
        ("header.X-Trace", "a\nb", "cannot carry", "header.X-Trace=chatops"),
        ("header.X-Trace", "a\x00b", "cannot carry", "header.X-Trace=chatops"),
        ("header.X-Trace", "ünïcode", "cannot carry", "header.X-Trace=chatops"),
        ("header.X-Api", "secret:bad name", "is not a secret name", "header.X-Api-Key"),
        ("header.X-Api", "secret:", "is not a secret name", "header.X-Api-Key"),
        ("body", "x", "is not auth or header.NAME", "auth=bearer:crm-token"),
    ],
)
def test_parse_option_errors_name_the_part_and_give_an_example(
    key: str, value: str, fragment: str, example: str
) -> None:
    with pytest.raises(RefError) as caught:
        parse_option(key, value)
    assert fragment in str(caught.value)
    assert "Example: " in str(caught.value)
    assert example in caught.value.example
    assert caught.value.part


@pytest.mark.parametrize(
    "header",
    ["Authorization", "X-Api-Key", "X-Auth-Token", "api_key", "X-Session-Id", "Cookie", "x-secret"],
)
def test_literal_credentials_are_refused_without_repeating_them(header: str) -> None:
    with pytest.raises(RefError) as caught:
        parse_option(f"header.{header}", "Bearer sk_live_abcdef123456")
    message = str(caught.value)
    assert "looks like a credential" in message
    assert f"header.{header}=secret:NAME" in message
    assert "sk_live" not in message and "sk_live" not in caught.value.part


@pytest.mark.parametrize(
    "pairs",
    [
        [("auth", "bearer:a1"), ("auth", "basic:b1")],
        [("auth", "bearer:a1"), ("header.Authorization", "secret:b1")],
        [("header.authorization", "secret:b1"), ("auth", "bearer:a1")],
        [("header.X-Api-Key", "secret:a1"), ("header.x-api-key", "secret:b1")],
        [("header.X-Trace", "1"), ("header.X-TRACE", "2")],
    ],
)
def test_parse_options_refuses_a_header_set_twice(pairs: list[tuple[str, str]]) -> None:
    with pytest.raises(RefError) as caught:
        parse_options(pairs)
    assert "a second time" in str(caught.value)


def test_describe_shows_names_never_values() -> None:
    refs = parse_options(
        [
            ("auth", "bearer:crm-token"),
            ("header.X-Api-Key", "secret:crm-key"),
            ("header.X-Trace", "chatops"),
        ]
    )
    assert describe(refs) == [
        "Authorization: Bearer ••••(crm-token)",
        "X-Api-Key: ••••(crm-key)",
        "X-Trace: chatops",
    ]
    assert (
        parse_option("auth", "basic:crm-login").describe() == "Authorization: Basic ••••(crm-login)"
    )


def test_build_headers() -> None:
    refs = parse_options(
        [("auth", "basic:crm-login"), ("header.X-Api-Key", "secret:crm-key"), ("header.X-T", "1")]
    )
    assert build_headers(refs, _resolve) == {
        "Authorization": "Basic " + base64.b64encode(b"ops-bot:pa55word!").decode(),
        "X-Api-Key": "key_abcdefgh",
        "X-T": "1",
    }
    bearer = parse_options([("auth", "bearer:crm-token")])
    assert build_headers(bearer, _resolve) == {"Authorization": "Bearer tok_live_12345678"}


def test_build_headers_basic_needs_a_user() -> None:
    with pytest.raises(HeaderBuildError) as caught:
        build_headers([parse_option("auth", "basic:crm-token")], _resolve)
    assert caught.value.secret == "crm-token"
    assert "tok_live" not in str(caught.value)


@pytest.mark.parametrize("value", ["abc\r\nX-Evil: 1", "abc\ndef", "ab\x00cdefg", "pässwörd"])
def test_build_headers_refuses_values_a_header_cannot_carry(value: str) -> None:
    def resolve(name: str) -> ResolvedSecret:
        return ResolvedSecret(value)

    for ref in (parse_option("auth", "bearer:bad"), parse_option("header.X-K", "secret:bad")):
        with pytest.raises(HeaderBuildError) as caught:
            build_headers([ref], resolve)
        assert caught.value.secret == "bad"
        assert value not in str(caught.value)


def test_build_headers_basic_encodes_non_ascii_as_utf8() -> None:
    def resolve(name: str) -> ResolvedSecret:
        return ResolvedSecret("pässwörd", user="üser")

    headers = build_headers([parse_option("auth", "basic:x1")], resolve)
    assert (
        headers["Authorization"] == "Basic " + base64.b64encode("üser:pässwörd".encode()).decode()
    )


def test_unknown_secrets_raise_what_resolve_raises() -> None:
    with pytest.raises(KeyError):
        build_headers([parse_option("auth", "bearer:nope")], _resolve)


def test_resolved_secret_repr_hides_the_value() -> None:
    assert "pa55word" not in repr(STORED["crm-login"])
    assert "ops-bot" in repr(STORED["crm-login"])


def test_secret_names_and_secret_header_names() -> None:
    refs = parse_options(
        [("auth", "bearer:a1"), ("header.X-Api-Key", "secret:b1"), ("header.X-Trace", "t")]
    )
    assert secret_names(refs) == frozenset({"a1", "b1"})
    assert secret_header_names(refs) == frozenset({"authorization", "x-api-key"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [("crm-token", "crm-token"), ("CRM_Token", "crm_token"), (" a1 ", "a1"), ("a" * 64, "a" * 64)],
)
def test_secret_names(text: str, expected: str) -> None:
    assert parse_secret_name(text) == expected


@pytest.mark.parametrize("text", ["", "-a", "a-", "a b", "a.b", "a/b", "••••", "a" * 65, "ä1"])
def test_bad_secret_names(text: str) -> None:
    with pytest.raises(RefError) as caught:
        parse_secret_name(text)
    assert "Example: crm-token" in str(caught.value)


@pytest.mark.parametrize("user", ["", "a:b", "a\nb"])
def test_bad_basic_users(user: str) -> None:
    with pytest.raises(RefError):
        check_basic_user(user)


def test_good_basic_user() -> None:
    check_basic_user("ops-bot@example.com")


def test_is_credential_option() -> None:
    assert is_credential_option("auth")
    assert is_credential_option("Header.X-Api-Key")
    assert not is_credential_option("timeout")
    assert not is_credential_option("authx")
