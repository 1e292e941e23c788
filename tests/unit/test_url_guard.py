"""The target URL SSRF guard (DESIGN §3 ``target_url``): syntax, addresses, DNS."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from unittest import mock

import pytest

from oms_webhooks.delivery.request import url_guard
from oms_webhooks.delivery.request.url_guard import (
    TargetURLRefused,
    check_address,
    normalize_target_url,
    resolve_host,
    validate_target_url,
)
from tests.dns import fake_dns

# Addresses Python's ipaddress considers global. Tests only ever resolve them
# (fakely); the suite's conftest fails any test that would connect to them.
PUBLIC_V4 = "93.184.215.14"
PUBLIC_V4_OTHER = "8.8.8.8"
PUBLIC_V6 = "2606:4700:4700::1111"


def test_fake_public_addresses_are_global() -> None:
    # GIVEN the addresses the tests use as "public" THEN ipaddress agrees
    for address in (PUBLIC_V4, PUBLIC_V4_OTHER, PUBLIC_V6):
        assert ipaddress.ip_address(address).is_global
    # and TEST-NET-3 is not (a trap for a "public" fake)
    assert not ipaddress.ip_address("203.0.113.5").is_global


# --- odd spellings of loopback: refused unless allow_private -----------------

LOOPBACK_SPELLINGS = [
    "http://127.0.0.1/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0X7F000001/",
    "http://127.1/",
    "http://0177.0.0.1/",
    "http://0x7f.0.0.1/",
    "http://127.0.0.1./",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[0:0:0:0:0:ffff:127.0.0.1]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b::127.0.0.1]/",
    "http://[2002:7f00:1::]/",
    "http://localhost/",
    "http://LOCALHOST./",
    "http://foo.localhost/",
    "http://localhost:8080/hook",
    "http://１２７。０。０。１/",  # fullwidth: IDNA maps it to 127.0.0.1
    "http://ⓛⓞⓒⓐⓛⓗⓞⓢⓣ/",  # circled letters: IDNA maps it to localhost
]


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
def test_loopback_spellings_are_refused(url: str) -> None:
    # GIVEN a loopback target in any spelling a client would accept
    # WHEN private targets are not allowed THEN it is refused as loopback
    with fake_dns({}), pytest.raises(TargetURLRefused, match="loopback") as caught:
        validate_target_url(url, allow_private=False)
    assert caught.value.category == "loopback"
    assert str(caught.value).startswith("target_url host ")


@pytest.mark.parametrize("url", LOOPBACK_SPELLINGS)
def test_loopback_spellings_are_allowed_with_allow_private(url: str) -> None:
    with fake_dns({}) as queried:
        assert validate_target_url(url, allow_private=True) == normalize_target_url(url)
    assert queried == []  # literals and localhost names never reach DNS


PRIVATE_URLS = [
    "http://10.0.0.1/",
    "http://10.255.255.255:8080/x",
    "http://172.16.0.1/",
    "http://172.31.255.254/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # shared address space
    "http://100.127.255.254/",
    "http://012.0.0.1/",  # octal 10.0.0.1
    "http://167772161/",  # decimal 10.0.0.1
    "http://[fc00::1]/",
    "http://[fd12:3456:789a::1]/",
    "http://[::ffff:10.0.0.1]/",
    "http://[::ffff:192.168.0.1]/",
    "http://[64:ff9b::10.0.0.1]/",  # NAT64 of a private address
]


@pytest.mark.parametrize("url", PRIVATE_URLS)
def test_private_targets_refused_unless_allowed(url: str) -> None:
    with fake_dns({}), pytest.raises(TargetURLRefused, match="private") as caught:
        validate_target_url(url, allow_private=False)
    assert caught.value.category == "private"
    with fake_dns({}):
        assert validate_target_url(url, allow_private=True) == url


ALWAYS_REFUSED = [
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://169.254.0.1/", "link-local"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[fe80::a9fe:a9fe]/", "link-local"),
    ("http://[::ffff:169.254.169.254]/", "link-local"),
    ("http://[64:ff9b::169.254.169.254]/", "link-local"),
    ("http://2852039166/", "link-local"),  # decimal 169.254.169.254
    ("http://0xa9fea9fe/", "link-local"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://0/", "unspecified"),
    ("http://[::]/", "unspecified"),
    ("http://[::ffff:0.0.0.0]/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://239.255.255.250/", "multicast"),
    ("http://[ff02::1]/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://255.255.255.255/", "reserved"),
    ("http://0.1.2.3/", "reserved"),
    ("http://192.0.2.1/", "reserved"),  # TEST-NET-1
    ("http://198.18.0.1/", "reserved"),  # benchmarking
    ("http://[2001:db8::1]/", "reserved"),  # documentation
    ("http://[fec0::1]/", "reserved"),  # deprecated site-local
    ("http://[64:ff9b:1::1]/", "reserved"),  # local-use NAT64
]


@pytest.mark.parametrize(("url", "category"), ALWAYS_REFUSED)
@pytest.mark.parametrize("allow_private", [False, True])
def test_special_addresses_always_refused(url: str, category: str, allow_private: bool) -> None:
    with fake_dns({}), pytest.raises(TargetURLRefused, match=category) as caught:
        validate_target_url(url, allow_private=allow_private)
    assert caught.value.category == category
    if allow_private:
        assert "never allowed" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        f"http://{PUBLIC_V4}/",
        f"https://{PUBLIC_V4_OTHER}:8443/hooks?x=1",
        f"http://[{PUBLIC_V6}]/",
        "http://[::ffff:8.8.8.8]/",
        "http://[64:ff9b::808:808]/",  # NAT64 of a public address
    ],
)
def test_public_literals_accepted(url: str) -> None:
    with fake_dns({}):
        assert validate_target_url(url, allow_private=False) == url


# --- resolved names ------------------------------------------------------------


def test_public_name_accepted() -> None:
    # GIVEN a name resolving (fakely) to a public address
    with fake_dns({"partner.example": [PUBLIC_V4, PUBLIC_V6]}) as queried:
        # WHEN validated THEN the URL comes back with its host lowercased
        url = "https://Partner.example/webhooks/oms"
        assert validate_target_url(url, allow_private=False) == url.replace("Partner", "partner")
    assert queried == ["partner.example"]


def test_name_resolving_to_private_refused_with_message() -> None:
    with (
        fake_dns({"internal.example": ["10.0.0.5"]}),
        pytest.raises(TargetURLRefused) as caught,
    ):
        validate_target_url("http://internal.example/", allow_private=False)
    assert str(caught.value) == (
        "target_url host 'internal.example' resolves to 10.0.0.5, a private address"
    )
    assert caught.value.category == "private"


def test_name_resolving_to_private_allowed_with_allow_private() -> None:
    with fake_dns({"internal.example": ["10.0.0.5"]}):
        assert validate_target_url("http://internal.example/", allow_private=True)


@pytest.mark.parametrize("allow_private", [False, True])
def test_name_resolving_to_metadata_always_refused(allow_private: bool) -> None:
    with (
        fake_dns({"metadata.example": ["169.254.169.254"]}),
        pytest.raises(TargetURLRefused, match=r"169\.254\.169\.254, a link-local"),
    ):
        validate_target_url("http://metadata.example/", allow_private=allow_private)


@pytest.mark.parametrize(
    "answers",
    [
        [PUBLIC_V4, "10.0.0.5"],
        ["10.0.0.5", PUBLIC_V4],
        [PUBLIC_V4, "127.0.0.1"],
        [PUBLIC_V6, "fd00::5"],
        [PUBLIC_V4, "::ffff:10.0.0.5"],
    ],
)
def test_mixed_public_and_private_answers_refused(answers: list[str]) -> None:
    # GIVEN a name with one public and one private address: every one must pass
    with (
        fake_dns({"mixed.example": answers}),
        pytest.raises(TargetURLRefused, match=r"mixed\.example' resolves to"),
    ):
        validate_target_url("http://mixed.example/", allow_private=False)


def test_scoped_link_local_answer_refused() -> None:
    with (
        fake_dns({"scoped.example": ["fe80::1%lo"]}),
        pytest.raises(TargetURLRefused, match="link-local"),
    ):
        validate_target_url("http://scoped.example/", allow_private=True)


def test_unresolvable_name_accepted() -> None:
    # GIVEN a name that does not resolve (now): the guard runs again at send time
    with fake_dns({}):
        url = "https://not-yet-registered.example/hook"
        assert validate_target_url(url, allow_private=False) == url


def test_resolver_error_other_than_gaierror_accepted() -> None:
    def broken() -> Sequence[str]:
        raise OSError("resolver unreachable")

    with fake_dns({"flaky.example": broken}):
        assert validate_target_url("http://flaky.example/", allow_private=False)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """An event a blocked fake resolver waits for; set at teardown to free its thread."""
    event = threading.Event()
    yield event
    event.set()


def test_dns_timeout_counts_as_unresolved(release: threading.Event) -> None:
    # GIVEN a resolver that answers (with a private address) only after 10 s
    def slow() -> Sequence[str]:
        release.wait(10)
        return ["10.0.0.5"]

    with fake_dns({"slow.example": slow}):
        started = time.monotonic()
        # WHEN validated with a short timeout THEN it is accepted, quickly
        assert validate_target_url("http://slow.example/", allow_private=False, timeout=0.2)
        assert time.monotonic() - started < 8  # well before the 10 s answer, on a loaded machine


def test_resolve_host_times_out(release: threading.Event) -> None:
    def slow() -> Sequence[str]:
        release.wait(10)
        return [PUBLIC_V4]

    with fake_dns({"slow.example": slow}), pytest.raises(TimeoutError):
        resolve_host("slow.example", 80, timeout=0.1)


def test_resolve_host_returns_distinct_addresses() -> None:
    with fake_dns({"partner.example": [PUBLIC_V4, PUBLIC_V4, PUBLIC_V6]}):
        assert resolve_host("partner.example", 443, timeout=1) == [PUBLIC_V4, PUBLIC_V6]


def test_resolve_host_raises_gaierror_for_unknown_name() -> None:
    with fake_dns({}), pytest.raises(socket.gaierror):
        resolve_host("nowhere.example", 443, timeout=1)


def test_resolve_host_can_be_patched_directly() -> None:
    # Other code's tests may patch the module-level lookup instead of getaddrinfo.
    with (
        mock.patch.object(url_guard, "resolve_host", return_value=["192.168.0.9"]) as fake,
        pytest.raises(TargetURLRefused, match="private"),
    ):
        validate_target_url("https://partner.example:8443/", allow_private=False, timeout=1)
    fake.assert_called_once_with("partner.example", 8443, timeout=1)


def test_resolve_false_skips_dns_but_still_judges_literals() -> None:
    with fake_dns({"internal.example": ["10.0.0.5"]}) as queried:
        url = "http://internal.example/"
        assert validate_target_url(url, allow_private=False, resolve=False) == url
        with pytest.raises(TargetURLRefused):
            validate_target_url("http://0x0a000005/", allow_private=False, resolve=False)
        with pytest.raises(TargetURLRefused):
            validate_target_url("http://localhost/", allow_private=False, resolve=False)
    assert queried == []


def test_default_ports_used_for_lookup() -> None:
    with mock.patch.object(url_guard, "resolve_host", return_value=[PUBLIC_V4]) as fake:
        validate_target_url("https://partner.example/", allow_private=False, timeout=1)
        validate_target_url("http://partner.example/", allow_private=False, timeout=1)
    assert [c.args[1] for c in fake.call_args_list] == [443, 80]


def test_idn_name_resolved_by_its_ascii_form() -> None:
    with (
        fake_dns({"xn--bcher-kva.example": ["10.0.0.7"]}) as queried,
        pytest.raises(TargetURLRefused, match="private"),
    ):
        validate_target_url("http://bücher.example/", allow_private=False)
    assert queried and all(name == "xn--bcher-kva.example" for name in queried)


# --- URL syntax ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://partner.example/", "absolute http or https"),
        ("file:///etc/passwd", "absolute http or https"),
        ("gopher://partner.example/", "absolute http or https"),
        ("//partner.example/hook", "absolute http or https"),
        ("/hooks/oms", "absolute http or https"),
        ("partner.example/hook", "absolute http or https"),
        ("", "must not be empty"),
        ("http://", "must have a host"),
        ("http:///path", "must have a host"),
        ("http:partner.example", "must have a host"),
        ("http://:80/", "must have a host"),
        ("http://user:pass@partner.example/", "user info"),
        ("http://user@partner.example/", "user info"),
        ("http://partner.example@127.0.0.1/", "user info"),
        ("http://partner.example /", "whitespace"),
        (" http://partner.example/", "whitespace"),
        ("http://partner.example/\r\nX-Evil: 1", "whitespace"),
        ("http://partner.example/\n", "whitespace"),
        ("http://partner.example/\t", "whitespace"),
        ("http://partner.example/\x00", "control"),
        ("http://partner.example/\u200b", "control"),  # zero-width space
        ("http://partner.example/\u00a0", "whitespace"),
        ("http://partner.example:0/", "port"),
        ("http://partner.example:65536/", "port"),
        ("http://partner.example:99999999/", "port"),
        ("http://partner.example:http/", "port"),
        ("http://partner.example:-1/", "port"),
        ("http://partner.example:+80/", "port"),
        ("http://partner.example:80:80/", "invalid authority"),
        ("http://[::1/", "IPv6"),
        ("http://[127.0.0.1]/", "valid"),
        ("http://[fe80::1%25eth0]/", "'%'"),
        ("http://127%2E0%2E0%2E1/", "'%'"),
        ("http://127.0.0.1\\@partner.example/", "user info"),
        ("http://partner.example\\.127.0.0.1/", "'\\\\'"),
        ("http://part*ner.example/", "not a valid host name"),
        ("http://-partner.example/", "not a valid host name"),
        ("http://a..example/", "not a valid host name"),
        ("http://" + "a" * 64 + ".example/", "not a valid host name"),
        ("http://bü..example/", "internationalised"),
    ],
)
def test_malformed_urls_refused(url: str, reason: str) -> None:
    with fake_dns({}), pytest.raises(TargetURLRefused, match=reason):
        validate_target_url(url, allow_private=True)


def test_length_limit() -> None:
    base = "https://partner.example/"
    at_limit = base + "a" * (2048 - len(base))
    with fake_dns({"partner.example": [PUBLIC_V4]}):
        assert validate_target_url(at_limit, allow_private=False) == at_limit
        with pytest.raises(TargetURLRefused, match="at most 2048"):
            validate_target_url(at_limit + "a", allow_private=False)


def test_non_string_refused() -> None:
    with pytest.raises(TargetURLRefused, match="string"):
        validate_target_url(b"http://x/", allow_private=True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("HTTPS://Partner.Example:443/Path?q=1#frag", "https://partner.example/Path?q=1"),
        ("http://partner.example:8080", "http://partner.example:8080/"),
        ("http://partner.example.:1/", "http://partner.example:1/"),
        ("http://under_score.example/", "http://under_score.example/"),
        ("http://partner.example:80/a", "http://partner.example/a"),
        ("http://partner.example:/", "http://partner.example/"),
        ("http://[2606:4700:4700::1111]:443/", "http://[2606:4700:4700::1111]:443/"),
        ("https://[2606:4700:4700::1111]:443/", "https://[2606:4700:4700::1111]/"),
        ("http://partner.example:0080/", "http://partner.example/"),
    ],
)
def test_valid_urls_are_returned_normalised(url: str, stored: str) -> None:
    # One target, one spelling: the uniqueness rule compares the stored form.
    with fake_dns({}):
        assert validate_target_url(url, allow_private=False) == stored
        assert validate_target_url(stored, allow_private=False) == stored


def test_aws_ipv6_metadata_refused_even_with_private_allowed() -> None:
    for url in ("http://[fd00:ec2::254]/", "http://100.100.100.200/"):
        with pytest.raises(TargetURLRefused, match="metadata"):
            validate_target_url(url, allow_private=True)


def test_refusal_is_a_value_error() -> None:
    assert issubclass(TargetURLRefused, ValueError)


# --- check_address --------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("100.64.0.1", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff05::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("2002:a9fe:a9fe::1", "link-local"),
    ],
)
def test_check_address_categories(address: str, category: str) -> None:
    ip = ipaddress.ip_address(address)
    with pytest.raises(TargetURLRefused, match=category) as caught:
        check_address(ip, allow_private=False)
    assert caught.value.category == category
    if category in ("loopback", "private"):
        check_address(ip, allow_private=True)
    else:
        with pytest.raises(TargetURLRefused):
            check_address(ip, allow_private=True)


@pytest.mark.parametrize("address", [PUBLIC_V4, PUBLIC_V4_OTHER, PUBLIC_V6, "::ffff:8.8.8.8"])
def test_check_address_accepts_global(address: str) -> None:
    check_address(ipaddress.ip_address(address), allow_private=False)
