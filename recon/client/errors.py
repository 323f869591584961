"""Typed errors of the client: each carries the API's status, code, message and detail.

The classes follow the HTTP status so that a pipeline can catch broadly (`ReconError`) or
narrowly (`NotFoundError`, `RateLimitedError`); `code` is the API's stable machine code
(`job_not_found`, `invalid_params`, ...), which is what a program should branch on. A job that
ends badly is an error of `Client.wait` too, carrying the job's own code and message.
"""

from typing import Any

import httpx
from pydantic import ValidationError

from recon.client.retry import parse_retry_after
from recon.schemas import ErrorBody, JobPublic

DETAIL_ITEMS_SHOWN = 3
"""Invalid fields named in an error's text; the rest stay in `detail`."""


class ReconError(Exception):
    """Base of every error the client raises.

    `status` is the HTTP status of the answer (None when there was none: a connection failure,
    a job that failed); `code` and `message` are the API's; `detail` its structured detail.
    """

    def __init__(self, message: str, *, code: str, status: int | None = None,
                 detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.detail = detail

    def __str__(self) -> str:
        fields = invalid_fields(self.detail)
        return f"{self.message}: {fields}" if fields else self.message


class AuthenticationError(ReconError):
    """401 or 403: no API key, or one the service does not know."""


class InvalidRequestError(ReconError):
    """400, 413, 415, 422: the request itself is wrong (params, file, size); do not retry it."""


class NotFoundError(ReconError):
    """404: no such job for this key (or it was deleted), or a mesh format not produced."""


class ConflictError(ReconError):
    """409: the job is in the wrong state (mesh before success, cancel after the end), or an
    Idempotency-Key reused for another request."""


class RateLimitedError(ReconError):
    """429: too many jobs or uploads in flight; `retry_after_s` is the service's advice."""

    retry_after_s: float | None = None


class ServerError(ReconError):
    """5xx: the service failed to answer; `ServiceUnavailableError` when it says to retry."""


class ServiceUnavailableError(ServerError):
    """502, 503, 504: a dependency or a proxy is down for now; retried with backoff."""

    retry_after_s: float | None = None


class ConnectionFailed(ReconError):
    """The service could not be reached, or the connection broke, after every retry."""


class JobFailedError(ReconError):
    """The awaited job ended `failed`: `code` and `message` are the job's error."""

    def __init__(self, job: JobPublic) -> None:
        error = job.error
        super().__init__(error.message if error else "the job failed",
                         code=error.code if error else "failed")
        self.job = job


class JobCanceledError(ReconError):
    """The awaited job ended `canceled`."""

    def __init__(self, job: JobPublic) -> None:
        super().__init__("the job was canceled", code="canceled")
        self.job = job


class WaitTimedOut(ReconError, TimeoutError):
    """`Client.wait` gave up before the job ended; the job itself goes on."""


STATUS_ERRORS: dict[int, type[ReconError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: InvalidRequestError,
    415: InvalidRequestError,
    422: InvalidRequestError,
    429: RateLimitedError,
    502: ServiceUnavailableError,
    503: ServiceUnavailableError,
    504: ServiceUnavailableError,
}


def invalid_fields(detail: Any) -> str:
    """`field: reason; ...` from a validation detail list (pydantic's shape), else ``""``."""
    if not isinstance(detail, list):
        return ""
    named = []
    for item in detail:
        if isinstance(item, dict) and "msg" in item:
            where = ".".join(str(part) for part in item.get("loc") or ())
            named.append(f"{where}: {item['msg']}" if where else str(item["msg"]))
    shown = "; ".join(named[:DETAIL_ITEMS_SHOWN])
    more = len(named) - DETAIL_ITEMS_SHOWN
    return f"{shown}; and {more} more" if more > 0 else shown


def error_from_response(response: httpx.Response) -> ReconError:
    """The typed error for a non-2xx answer; the body must have been read.

    Answers without the API's error body (a proxy's HTML page) get the code `http_<status>`.
    """
    status = response.status_code
    try:
        body = ErrorBody.model_validate_json(response.content).error
        code, message, detail = body.code, body.message, body.detail
    except ValidationError:
        code, detail = f"http_{status}", None
        message = f"HTTP {status} {response.reason_phrase}".strip()
    kind = STATUS_ERRORS.get(status, ServerError if status >= 500 else ReconError)
    error = kind(message, code=code, status=status, detail=detail)
    if isinstance(error, RateLimitedError | ServiceUnavailableError):
        error.retry_after_s = parse_retry_after(response.headers.get("Retry-After"))
    return error
