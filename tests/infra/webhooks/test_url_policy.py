"""The callback URL rule: https to public addresses only, unless the operator allow-lists the
host; every spelling of a loopback or private address is refused, DNS included."""

import pytest

from recon.infra.webhooks.url_policy import (
    CallbackHostUnresolved,
    CallbackUrlRefused,
    address_problem,
    canonical_host,
    check_callback_url,
    parse_allowed_hosts,
)

NOTHING_ALLOWED: frozenset[str] = frozenset()

REFUSED = [
    ("http://localhost/hook", "http"),
    ("http://[::1]/hook", "http"),
    ("http://2130706433/hook", "http"),
    ("https://2130706433/hook", "loopback"),
    ("https://0x7f.1/hook", "loopback"),
    ("https://127.1/hook", "loopback"),
    ("https://localhost/hook", "loopback"),
    ("https://[::1]/hook", "loopback"),
    ("https://10.0.0.1/hook", "private"),
    ("https://192.168.1.20/hook", "private"),
    ("https://169.254.169.254/latest/meta-data", "link-local"),
    ("https://[fe80::1]/hook", "link-local"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://[::ffff:10.1.2.3]/hook", "private"),
    ("https://[2002:7f00:1::]/hook", "loopback"),  # 6to4 of 127.0.0.1
    ("https://[64:ff9b::a00:1]/hook", "private"),  # NAT64 of 10.0.0.1
    ("https://0.0.0.0/hook", "unspecified"),
    ("https://224.0.0.1/hook", "multicast"),
    ("https://100.64.0.1/hook", "non-public"),
    ("https://user:secret@203.0.113.9/hook", "user name"),
    ("ftp://203.0.113.9/hook", "http(s)"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_refused_without_an_allow_list(url: str, reason: str) -> None:
    with pytest.raises(CallbackUrlRefused) as refused:
        check_callback_url(url, NOTHING_ALLOWED)
    assert reason in refused.value.reason
    if reason not in ("user name", "http(s)"):
        assert "RECON_CALLBACK_ALLOWED_HOSTS" in refused.value.reason  # says how to fix it


def test_the_reason_names_no_resolved_address_but_the_log_field_does() -> None:
    with pytest.raises(CallbackUrlRefused) as refused:
        check_callback_url("https://localhost:8443/hook", NOTHING_ALLOWED)
    assert refused.value.address in ("127.0.0.1", "::1")
    assert "127.0.0.1" not in refused.value.reason and "::1" not in refused.value.reason


def test_public_https_addresses_pass() -> None:
    for url in ("https://93.184.216.34/hook", "https://[2606:4700::1111]:8443/hook"):
        target = check_callback_url(url, NOTHING_ALLOWED)
        assert not target.allow_listed


def test_allow_listed_loopback_may_use_http_in_any_spelling() -> None:
    allowed = parse_allowed_hosts(["127.0.0.1", "LocalHost", "::1"])
    for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook", "http://LOCALHOST/x",
                "http://2130706433/hook", "http://[::1]:9/hook", "https://127.1/hook"):
        assert check_callback_url(url, allowed).allow_listed, url
    with pytest.raises(CallbackUrlRefused):  # the allow-list is per host, not per network
        check_callback_url("http://127.0.0.2/hook", allowed)


def test_an_allow_listed_host_must_still_be_a_plain_url() -> None:
    with pytest.raises(CallbackUrlRefused, match="user name"):
        check_callback_url("http://me:pw@localhost/hook", parse_allowed_hosts(["localhost"]))


def test_a_name_that_does_not_resolve_is_reported_as_such() -> None:
    with pytest.raises(CallbackHostUnresolved, match="does not resolve"):
        check_callback_url("https://no-such-host.invalid/hook", NOTHING_ALLOWED)


def test_canonical_hosts() -> None:
    assert canonical_host("2130706433") == canonical_host("0x7f.1") == "127.0.0.1"
    assert canonical_host("[::FFFF:7F00:1]") == canonical_host("::ffff:127.0.0.1")
    assert canonical_host("Hooks.Example.COM.") == "hooks.example.com"
    assert canonical_host("cafe.example") == "cafe.example"  # hex-looking names stay names
    assert parse_allowed_hosts([" LocalHost. ", "", "0x7f.0.0.1"]) == {"localhost", "127.0.0.1"}


def test_address_problems() -> None:
    assert address_problem("8.8.8.8") is None
    assert address_problem("2001:4860:4860::8888") is None
    assert address_problem("127.0.0.1") == "a loopback address"
    assert address_problem("172.16.0.1") == "a private address"
    assert address_problem("fe80::1%1") == "a link-local address"
    mapped = address_problem("::ffff:169.254.169.254")
    assert mapped == "a link-local address inside an IPv6 address"
