"""HTTP-facing errors: each carries a status, a stable code and a message for the client.

The app's exception handlers turn every one of them (and FastAPI's own 404/405/422) into the
single error body ``{"error": {"code", "message", "detail"}}``.
"""

from typing import Any


class ApiError(Exception):
    """Base of every error the service answers on purpose."""

    status_code = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or type(self).code
        self.detail = detail
        self.headers = headers or {}


class BadRequest(ApiError):
    """400: the request is malformed (bad JSON, missing part, bad cursor)."""

    status_code = 400
    code = "bad_request"


class Unauthorized(ApiError):
    """401: no API key, or one that matches no tenant."""

    status_code = 401
    code = "unauthorized"


class NotFound(ApiError):
    """404: unknown id, another tenant's id, or a mesh format that was not produced."""

    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    """409: the job is in the wrong state for this request."""

    status_code = 409
    code = "conflict"


class PayloadTooLarge(ApiError):
    """413: the body exceeds the configured limit (declared or counted while streaming)."""

    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    """415: not multipart, or a file that is not a supported point-cloud type."""

    status_code = 415
    code = "unsupported_media_type"


class Unprocessable(ApiError):
    """422: the point cloud (or params, or ground truth) is unreadable or invalid."""

    status_code = 422
    code = "invalid_request"


class TooManyRequests(ApiError):
    """429: the tenant is over its concurrent-job quota."""

    status_code = 429
    code = "too_many_jobs"


class ServiceUnavailable(ApiError):
    """503: a dependency (job store, storage, broker) is down."""

    status_code = 503
    code = "dependency_unavailable"
