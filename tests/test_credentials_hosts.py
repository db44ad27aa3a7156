"""Host bindings: parsing patterns, matching request targets, the redirect rule."""

from __future__ import annotations

import pytest

from bot.credentials.hosts import (
    HostPattern,
    HostPatternError,
    Target,
    allowed,
    allowed_url,
    parse_host_pattern,
    parse_host_patterns,
    same_origin,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api.crm.example.com", HostPattern("api.crm.example.com", "name")),
        ("API.CRM.Example.COM", HostPattern("api.crm.example.com", "name")),
        ("EXAMPLE.com.", HostPattern("example.com", "name")),
        ("  example.com  ", HostPattern("example.com", "name")),
        ("ＥＸＡＭＰＬＥ．com", HostPattern("example.com", "name")),  # full-width
        ("bücher.de", HostPattern("xn--bcher-kva.de", "name")),
        ("XN--BCHER-KVA.de", HostPattern("xn--bcher-kva.de", "name")),
        ("例え.jp", HostPattern("xn--r8jz45g.jp", "name")),  # Han + Hiragana is one script mix
        ("*.example.com", HostPattern("example.com", "name", wildcard=True)),
        ("*.Example.com.:8443", HostPattern("example.com", "name", wildcard=True, port=8443)),
        ("imap.example.com:993", HostPattern("imap.example.com", "name", port=993)),
        ("192.0.2.7", HostPattern("192.0.2.7", "ipv4")),
        ("127.0.0.1:8080", HostPattern("127.0.0.1", "ipv4", port=8080)),
        ("[::1]:993", HostPattern("::1", "ipv6", port=993)),
        ("[2001:DB8:0:0::1]", HostPattern("2001:db8::1", "ipv6")),
        ("*.co.example", HostPattern("co.example", "name", wildcard=True)),  # not a ccTLD
        ("*.myapp.example.co.uk", HostPattern("myapp.example.co.uk", "name", wildcard=True)),
        ("*.example.co.uk", HostPattern("example.co.uk", "name", wildcard=True)),
    ],
)
def test_patterns_are_normalised(text: str, expected: HostPattern) -> None:
    pattern = parse_host_pattern(text)
    assert pattern == expected
    assert parse_host_pattern(str(pattern)) == pattern  # the canonical text reads back


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("https://api.example.com", "is a URL"),
        ("api.example.com/v1", "'/'"),
        ("user@api.example.com", "'@'"),
        ("user:pass@api.example.com", "'@'"),
        ("evil.com#.example.com", "'#'"),
        ("evil.com?.example.com", "'?'"),
        ("evil.com\\.example.com", "'\\\\'"),
        ("api.example.com%2f", "'%'"),
        ("api example.com", "' '"),
        ("api.example\n.com", "is not a host"),
        ("api.example\x00.com", "is not a host"),
        ("a..example.com", "not a host name"),
        (".example.com", "not a host name"),
        ("example.com..", "not a host name"),
        ("-api.example.com", "not a host name"),
        ("api_1.example.com", "not a host name"),
        ("a" * 64 + ".example.com", "not a host name"),
        ("*", "bare '*'"),
        ("*.", "not a host name"),
        ("**.example.com", "whole first label"),
        ("*example.com", "whole first label"),
        ("api.*.example.com", "whole first label"),
        ("*.*.example.com", "whole first label"),
        ("*.com", "public suffix"),
        ("*.COM.", "public suffix"),
        ("*.co.uk", "public suffix"),
        ("*.com.au", "public suffix"),
        ("*.github.io", "public suffix"),
        ("*.s3.amazonaws.com", "public suffix"),
        ("*.192.0.2.7", "IP address cannot have a wildcard"),
        ("*.[::1]", "IPv6"),
        ("2130706433", "ends in a number"),
        ("0x7f.1", "ends in a number"),
        ("127.1", "ends in a number"),
        ("example.123", "ends in a number"),
        ("256.0.0.1", "not an IPv4 address"),
        ("010.0.0.1", "not an IPv4 address"),
        ("::1", "in brackets"),
        ("[::1", "closing ']'"),
        ("[::1]x", "not a :port"),
        ("[not-v6]", "not an IPv6 address"),
        ("[fe80::1%eth0]", "'%'"),
        ("example.com:0", "not a port"),
        ("example.com:65536", "not a port"),
        ("example.com:+443", "not a port"),
        ("example.com:0443", "not a port"),
        ("example.com:", "not a port"),
        ("exаmple.com", "mixes alphabets"),  # Cyrillic а among Latin letters
        ("pаypal.com", "mixes alphabets"),
        ("αpple.com", "mixes alphabets"),  # Greek alpha
    ],
)
def test_hostile_or_malformed_patterns_are_refused(text: str, fragment: str) -> None:
    with pytest.raises(HostPatternError) as caught:
        parse_host_pattern(text)
    message = str(caught.value)
    assert fragment in message
    assert "Example: api.crm.example.com" in message
    assert caught.value.part == text


# (pattern, scheme, host, port, allowed)
MATCHES = [
    # A bare host: the default port of an encrypted scheme only.
    ("api.example.com", "https", "api.example.com", None, True),
    ("api.example.com", "https", "api.example.com", 443, True),
    ("api.example.com", "HTTPS", "API.Example.com.", None, True),
    ("api.example.com", "https", "api.example.com", 8443, False),
    ("api.example.com", "http", "api.example.com", None, False),
    ("api.example.com", "http", "api.example.com", 443, False),
    ("imap.example.com", "imaps", "imap.example.com", None, True),
    ("imap.example.com", "imap", "imap.example.com", None, False),
    ("imap.example.com", "imaps", "imap.example.com", 143, False),
    ("mail.example.com", "smtps", "mail.example.com", 465, True),
    ("api.example.com", "ftp", "api.example.com", 443, False),
    # An explicit port: exactly that port, any scheme.
    ("imap.example.com:993", "imaps", "imap.example.com", 993, True),
    ("imap.example.com:993", "imaps", "imap.example.com", None, True),
    ("imap.example.com:143", "imap", "imap.example.com", None, True),
    ("imap.example.com:993", "imaps", "imap.example.com", 994, False),
    ("127.0.0.1:8080", "http", "127.0.0.1", 8080, True),
    ("127.0.0.1:8080", "http", "127.0.0.1", 80, False),
    ("api.example.com:80", "http", "api.example.com", None, True),
    # Exact names do not extend to neighbours.
    ("example.com", "https", "example.com.evil.com", None, False),
    ("example.com", "https", "evilexample.com", None, False),
    ("example.com", "https", "api.example.com", None, False),
    ("example.com", "https", "evil.com#.example.com", None, False),
    ("example.com", "https", "example.com/evil", None, False),
    ("example.com", "https", "example.com@evil.com", None, False),
    ("example.com", "https", "exаmple.com", None, False),  # Cyrillic а
    ("example.com", "https", "ＥＸＡＭＰＬＥ.com", None, True),  # same host, full width
    ("example.com", "https", "", None, False),
    ("bücher.de", "https", "BÜCHER.de", None, True),
    ("bücher.de", "https", "xn--bcher-kva.de", None, True),
    ("xn--bcher-kva.de", "https", "bücher.de", None, True),
    ("bücher.de", "https", "bucher.de", None, False),
    # Wildcards: exactly one more label.
    ("*.example.com", "https", "api.example.com", None, True),
    ("*.example.com", "https", "API.EXAMPLE.COM.", None, True),
    ("*.example.com", "https", "example.com", None, False),
    ("*.example.com", "https", "a.b.example.com", None, False),
    ("*.example.com", "https", ".example.com", None, False),
    ("*.example.com", "https", "example.com.evil.com", None, False),
    ("*.example.com", "https", "api.example.com.evil.com", None, False),
    ("*.example.com", "https", "evilexample.com", None, False),
    ("*.example.com", "https", "evil.com#.example.com", None, False),
    ("*.example.com", "https", "evil.com\\.example.com", None, False),
    ("*.example.com:8443", "https", "api.example.com", 8443, True),
    ("*.example.com:8443", "https", "api.example.com", None, False),
    # IP literals: exact address, no numeric look-alikes.
    ("127.0.0.1:8080", "http", "2130706433", 8080, False),
    ("127.0.0.1:8080", "http", "127.1", 8080, False),
    ("127.0.0.1:8080", "http", "0x7f.0.0.1", 8080, False),
    ("127.0.0.1:8080", "http", "localhost", 8080, False),
    ("[::1]:993", "imaps", "::1", 993, True),
    ("[::1]:993", "imaps", "[::1]", 993, True),
    ("[::1]:993", "imaps", "0:0:0:0:0:0:0:1", 993, True),
    ("[::1]:993", "imaps", "127.0.0.1", 993, False),
    ("[::1]:993", "imaps", "::ffff:127.0.0.1", 993, False),
    ("[::1]:993", "imaps", "[::2]", 993, False),
    ("127.0.0.1:993", "imaps", "::ffff:127.0.0.1", 993, False),
    ("[2001:db8::1]", "https", "2001:DB8::1", None, True),
]


@pytest.mark.parametrize(("pattern", "scheme", "host", "port", "expected"), MATCHES)
def test_allows(pattern: str, scheme: str, host: str, port: int | None, expected: bool) -> None:
    assert parse_host_pattern(pattern).allows(scheme, host, port) is expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.example.com/v1/leads", True),
        ("https://api.example.com:443/v1", True),
        ("https://API.example.com./v1", True),
        ("https://user:pw@api.example.com/", True),  # user-info does not change the host
        ("https://evil.com#.api.example.com/", False),
        ("https://evil.com?.api.example.com/", False),
        ("https://evil.com\\@api.example.com/", False),
        ("https://api.example.com@evil.com/", False),
        ("https://api.example.com.evil.com/", False),
        ("https://api.example.com:8443/", False),
        ("http://api.example.com/", False),
        ("https://exаmple.com/", False),
        ("https://a.b.example.com/", False),
        ("https://hooks.example.com/x", True),
        ("https://example.com/x", False),
        ("imaps://imap.example.com", True),
        ("imaps://imap.example.com:993", True),
        ("imap://imap.example.com", False),
        ("http://[::1]:8080/x", True),
        ("http://[::1]:8081/x", False),
        ("not a url", False),
        ("/relative/path", False),
        ("https:///nohost", False),
    ],
)
def test_allowed_url(url: str, expected: bool) -> None:
    patterns = parse_host_patterns("api.example.com, *.example.com, imap.example.com, [::1]:8080")
    assert allowed_url(patterns, url) is expected


def test_parse_several_keeps_order_and_drops_repeats() -> None:
    patterns = parse_host_patterns("b.example.com,a.example.com , B.EXAMPLE.COM")
    assert [str(p) for p in patterns] == ["b.example.com", "a.example.com"]
    assert allowed(patterns, "https", "a.example.com", None)
    assert not allowed(patterns, "https", "c.example.com", None)


@pytest.mark.parametrize("text", ["", " , ", "a.example.com,,b.example.com", "a.example.com,"])
def test_parse_several_refuses_empty_parts(text: str) -> None:
    with pytest.raises(HostPatternError):
        parse_host_patterns(text)


def test_describe_shows_the_unicode_form_of_an_idn() -> None:
    assert parse_host_pattern("bücher.de:8443").describe() == "xn--bcher-kva.de:8443 (bücher.de)"
    assert parse_host_pattern("*.example.com").describe() == "*.example.com"
    assert str(parse_host_pattern("[2001:db8::1]:993")) == "[2001:db8::1]:993"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("https://api.example.com/a", "https://api.example.com/b?x=1", True),
        ("https://api.example.com/a", "https://api.example.com:443/b", True),
        ("https://api.example.com/a", "https://API.EXAMPLE.COM./b", True),
        ("https://api.example.com/a", "http://api.example.com/b", False),
        ("https://api.example.com/a", "https://api.example.com:8443/b", False),
        ("https://api.example.com/a", "https://other.example.com/b", False),
        ("https://api.example.com/a", "https://api.example.com.evil.com/b", False),
        ("https://api.example.com/a", "https://evil.com#@api.example.com/", False),
        ("http://[::1]:80/a", "http://[0::1]/b", True),
        ("https://api.example.com/a", "/relative", False),
        ("garbage", "garbage", False),
    ],
)
def test_same_origin(a: str, b: str, expected: bool) -> None:
    assert same_origin(a, b) is expected
    assert same_origin(b, a) is expected


def test_target_of_url_uses_the_connection_port() -> None:
    assert Target.of_url("https://api.example.com/") == Target(
        "https", "api.example.com", 443, "name"
    )
    assert Target.of_url("imaps://imap.example.com") == Target(
        "imaps", "imap.example.com", 993, "name"
    )
    assert Target.of_url("gopher://example.com/") is None  # no known default port
    assert Target.of_url("gopher://example.com:70/") == Target("gopher", "example.com", 70, "name")
