"""Sending one webhook attempt: POST the signed body, following a few redirects, each checked.

The URL rule (`recon.infra.webhooks.url_policy`) is applied where it cannot be dodged: the
connection's network backend resolves the host itself, refuses when any address is not public
(unless the host is allow-listed) and connects to the address it checked, so a DNS answer that
changes between the check and the connection (rebinding) reaches nothing else; TLS still
verifies the certificate against the host name. Redirects are followed by hand, re-POSTing the
same body and headers, and every hop goes through the same rule. No proxy variables are read.
The attempt's outcome says whether to stop, retry later or give up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import httpcore
import httpx

from recon.infra.webhooks.url_policy import (
    CallbackHostUnresolved,
    CallbackTarget,
    CallbackUrlRefused,
    checked_addresses,
    parse_target,
)

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "recon-webhooks/1"


@dataclass(frozen=True)
class DeliveryOutcome:
    """How one attempt ended: ``delivered`` (2xx), ``retry`` (try again later) or ``refused``
    (the URL rule forbids a hop: retrying cannot help). `detail` is a sentence for the job's
    view; `address` names a refused address for the logs only."""

    result: Literal["delivered", "retry", "refused"]
    detail: str
    status_code: int | None = None
    address: str | None = None


class CheckedBackend(httpcore.SyncBackend):
    """A network backend that connects only to addresses the URL rule accepts.

    `allow_any` is the allow-listed hosts' exemption from the address rule.
    """

    def __init__(self, *, allow_any: bool) -> None:
        self.allow_any = allow_any

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = checked_addresses(host, port, allow_any=self.allow_any)
        failure: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address to connect to for {host!r}")


def post_once(
    target: CallbackTarget, body: bytes, headers: Mapping[str, str], timeout_s: float
) -> tuple[int, str | None]:
    """POST `body` to one checked target; return the status and the Location header (the
    response body is not read)."""
    url = target.url
    request_url = httpcore.URL(
        scheme=url.raw_scheme, host=target.host.encode("ascii"), port=url.port,
        target=url.raw_path,
    )
    request_headers = [(b"Host", url.netloc), (b"User-Agent", USER_AGENT.encode())]
    request_headers += [(k.encode(), v.encode()) for k, v in headers.items()]
    timeouts = {"connect": timeout_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}
    backend = CheckedBackend(allow_any=target.allow_listed)
    with httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(), network_backend=backend, max_connections=1
    ) as pool, pool.stream(
        "POST", request_url, headers=request_headers, content=body,
        extensions={"timeout": timeouts},
    ) as response:
        location = next(
            (v.decode("latin-1") for k, v in response.headers if k.lower() == b"location"), None
        )
        return response.status, location


def deliver(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allowed_hosts: frozenset[str],
    timeout_s: float,
    max_redirects: int,
) -> DeliveryOutcome:
    """One delivery attempt of `body` to `url`, following up to `max_redirects` redirects."""
    current = url
    for hop in range(max_redirects + 1):
        where = "callback_url" if hop == 0 else f"redirect {hop} ({current})"
        try:
            target = parse_target(current, allowed_hosts)
            status, location = post_once(target, body, headers, timeout_s)
        except CallbackUrlRefused as exc:
            return DeliveryOutcome("refused", f"{where} refused: {exc.reason}",
                                   address=exc.address)
        except CallbackHostUnresolved as exc:
            return DeliveryOutcome("retry", f"{where}: {exc}")
        except httpcore.TimeoutException:
            return DeliveryOutcome("retry", f"{where}: no answer within {timeout_s:g} s")
        except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol,
                OSError) as exc:
            return DeliveryOutcome("retry", f"{where}: {type(exc).__name__}: {exc}")
        if 200 <= status < 300:
            return DeliveryOutcome("delivered", f"HTTP {status}", status)
        if status in REDIRECT_STATUSES and location:
            try:
                current = str(target.url.join(location))
            except httpx.InvalidURL:
                return DeliveryOutcome("retry", f"{where}: HTTP {status} to an invalid URL")
            continue
        return DeliveryOutcome("retry", f"{where}: HTTP {status}", status)
    return DeliveryOutcome("retry", f"more than {max_redirects} redirects")
