"""Which callback URLs the service may call, so a webhook cannot be aimed at its own network.

The rule: https only, and every address the host resolves to must be public (not loopback,
private, link-local, shared, multicast, reserved or unspecified, nor such an IPv4 address
inside an IPv6 one: mapped, 6to4, NAT64, Teredo). A host on the operator's allow-list
(`Settings.callback_allowed_hosts`, exact and case-insensitive) may use plain http and any
address. No user info in the URL. The names are resolved with the system resolver, which also
reads the numeric forms of IPv4 (``2130706433``, ``0x7f.1``, ``127.1``) as the addresses they
are; delivery (`recon.infra.webhooks.delivery`) applies the address rule at connect time, on
the addresses it then connects to, for the first URL and every redirect.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

ALLOW_LIST_VARIABLE = "RECON_CALLBACK_ALLOWED_HOSTS"
NUMERIC_IPV4 = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+)){0,3}$")
"""Host spellings the IPv4 parser (inet_aton) reads as an address: 2130706433, 0x7f.1, 127.1."""
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
HOW_TO_FIX = (
    "use an https URL whose host resolves to public addresses only, or ask the operator to "
    f"allow-list the host ({ALLOW_LIST_VARIABLE})"
)


class CallbackUrlRefused(ValueError):
    """The URL, or an address its host resolves to, is not one the service may call.

    `reason` is for the client (it names no resolved address); `address` is for the logs.
    """

    def __init__(self, reason: str, address: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.address = address


class CallbackHostUnresolved(OSError):
    """The host name does not resolve (now): nothing can be checked, nothing is sent."""


@dataclass(frozen=True)
class CallbackTarget:
    """A URL that passed the syntactic part of the rule (no DNS yet)."""

    url: httpx.URL
    host: str
    """The host as the resolver takes it (IDNA-encoded, IPv6 without brackets)."""
    port: int
    allow_listed: bool


def canonical_host(host: str) -> str:
    """The host as the allow-list compares it: lower case, no brackets or trailing dot, and an
    IP address in its standard spelling (``2130706433`` -> ``127.0.0.1``, ``::FFFF:1`` ->
    ``::ffff:1``)."""
    name = host.strip().lower().strip("[]").rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if NUMERIC_IPV4.match(name):
        try:
            return str(ipaddress.IPv4Address(socket.inet_aton(name)))
        except OSError:
            pass
    return name


def parse_allowed_hosts(entries: Iterable[str]) -> frozenset[str]:
    """The operator's allow-list entries in the form `canonical_host` gives."""
    return frozenset(canonical_host(entry) for entry in entries if entry.strip())


def parse_target(url: str, allowed_hosts: frozenset[str]) -> CallbackTarget:
    """Check the URL's shape, scheme and user info against the rule (no DNS).

    Raises `CallbackUrlRefused` with a sentence saying what is wrong.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise CallbackUrlRefused(f"callback_url is not a valid URL ({exc})") from exc
    if parsed.scheme not in ("http", "https") or not parsed.raw_host:
        raise CallbackUrlRefused("callback_url must be an absolute http(s) URL with a host")
    if parsed.userinfo:
        raise CallbackUrlRefused("callback_url must not contain a user name or password")
    host = parsed.raw_host.decode("ascii")
    allow_listed = canonical_host(host) in allowed_hosts
    if parsed.scheme != "https" and not allow_listed:
        raise CallbackUrlRefused(
            f"callback_url uses {parsed.scheme}, and the host {parsed.host!r} is not "
            f"allow-listed; {HOW_TO_FIX}"
        )
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    return CallbackTarget(url=parsed, host=host, port=port, allow_listed=allow_listed)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, Teredo client), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]
    return None


def address_problem(address: str) -> str | None:
    """What makes `address` unfit for a callback (``"a loopback address"``), or None when it
    is a public unicast address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            problem = address_problem(str(embedded))
            if problem is not None:
                return f"{problem} inside an IPv6 address"
    checks = (
        (ip.is_loopback, "a loopback address"),
        (ip.is_unspecified, "an unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "a non-public address"),
    )
    return next((problem for failed, problem in checks if failed), None)


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to now, in the resolver's order, without duplicates.

    Raises `CallbackHostUnresolved` when it does not resolve.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise CallbackHostUnresolved(
            f"the host {host!r} does not resolve ({exc}); check the URL's host name"
        ) from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def checked_addresses(host: str, port: int, *, allow_any: bool) -> list[str]:
    """Resolve `host` and apply the address rule to every address it gives.

    `allow_any` (an allow-listed host) skips the rule. Raises `CallbackUrlRefused` when any
    address is not public (one is enough: the resolver's order can change) and
    `CallbackHostUnresolved` when the name does not resolve.
    """
    addresses = resolve(host, port)
    if allow_any:
        return addresses
    for address in addresses:
        problem = address_problem(address)
        if problem is not None:
            literal = canonical_host(host) == canonical_host(address)
            subject = f"the address {host!r} is" if literal else f"the host {host!r} resolves to"
            raise CallbackUrlRefused(f"{subject} {problem}; {HOW_TO_FIX}", address)
    return addresses


def check_callback_url(url: str, allowed_hosts: frozenset[str]) -> CallbackTarget:
    """The whole rule for one URL, DNS included (blocking: run it in a thread from async code).

    Raises `CallbackUrlRefused` or `CallbackHostUnresolved`.
    """
    target = parse_target(url, allowed_hosts)
    checked_addresses(target.host, target.port, allow_any=target.allow_listed)
    return target
