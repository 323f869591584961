"""Sending requests to the service: one httpx client, the key, typed errors and retries.

Every request is rebuilt for each attempt (`files` is a factory), so an upload re-opens its
file and re-sends it whole, with the same headers, Idempotency-Key included. The key goes only
to the service's own origin: a redirect elsewhere (a presigned S3 URL) is fetched without it.
"""

import random
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx

from recon.client.errors import ConnectionFailed, ReconError, error_from_response
from recon.client.retry import RETRY_STATUSES, RetryNotice, RetryPolicy

T = TypeVar("T")
FilesFactory = Callable[[ExitStack], dict[str, Any]]
"""Builds the multipart files of one attempt; files it opens go on the given stack."""
RetryCallback = Callable[[RetryNotice], None]

RETRIED_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
"""Connection failures worth another attempt (a bad URL or a local protocol error is not)."""
CONNECT_TIMEOUT_S = 10.0


def same_origin(first: str, second: str) -> bool:
    """Whether two absolute URLs share scheme, host and port (the browser's origin rule)."""
    a, b = urlsplit(first), urlsplit(second)
    default = {"http": 80, "https": 443}
    port_a = a.port or default.get(a.scheme.lower())
    port_b = b.port or default.get(b.scheme.lower())
    return (a.scheme.lower(), (a.hostname or "").lower(), port_a) == (
        b.scheme.lower(), (b.hostname or "").lower(), port_b)


class Transport:
    """The client's connection to one service, with its key and retry policy."""

    def __init__(self, base_url: str, key: str | None, *, timeout_s: float, policy: RetryPolicy,
                 on_retry: RetryCallback | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self.on_retry = on_retry
        self.sleep = sleep
        self.rng = random.Random()
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.http = httpx.Client(
            base_url=self.base_url, headers=headers, follow_redirects=False,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S)),
        )

    def close(self) -> None:
        self.http.close()

    def url(self, path: str) -> str:
        """`path` (absolute, or relative to the service) as an absolute URL."""
        return urljoin(self.base_url + "/", path)

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        """`send` with retries: the first answer under 400, or the typed error of the last."""
        return self.retrying(lambda: self.send(method, path, **options))

    def send(self, method: str, path: str, *, files: FilesFactory | None = None,
             stream: bool = False, timeout: httpx.Timeout | None = None,
             **options: Any) -> httpx.Response:
        """One attempt: the answer when under 400 (redirects included), else its typed error.

        A streamed answer must be closed by the caller. Without the service's origin, the key
        is left out.
        """
        url = self.url(path)
        with ExitStack() as opened:
            request = self.http.build_request(
                method, url, files=None if files is None else files(opened),
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT, **options)
            if not same_origin(url, self.base_url):
                request.headers.pop("Authorization", None)
            response = self.http.send(request, stream=stream)
        if response.status_code >= 400:
            try:
                response.read()
            finally:
                response.close()
            raise error_from_response(response)
        return response

    def retrying(self, operation: Callable[[], T]) -> T:
        """Run `operation`, again after a wait when it fails in a way worth retrying.

        Retried: the statuses of `RETRY_STATUSES` (honouring `Retry-After`) and broken
        connections. The last failure is raised as a typed error (`ConnectionFailed` for
        transport errors).
        """
        attempt, waited = 0, 0.0
        while True:
            attempt += 1
            try:
                return operation()
            except ReconError as exc:
                if exc.status not in RETRY_STATUSES:
                    raise
                error: ReconError = exc
                retry_after = getattr(exc, "retry_after_s", None)
            except RETRIED_TRANSPORT_ERRORS as exc:
                error = self.connection_failed(exc)
                error.__cause__ = exc
                retry_after = None
            except httpx.TransportError as exc:
                raise self.connection_failed(exc) from exc
            wait = self.policy.wait_before(attempt, retry_after, waited, self.rng)
            if wait is None:
                raise error
            if self.on_retry is not None:
                self.on_retry(RetryNotice(attempt, wait, error, self.policy.retries))
            self.sleep(wait)
            waited += wait

    def connection_failed(self, exc: httpx.TransportError) -> ConnectionFailed:
        """The typed error for a transport failure talking to this service."""
        reason = str(exc) or type(exc).__name__
        return ConnectionFailed(f"cannot reach {self.base_url}: {reason}",
                                code="connection_failed")
