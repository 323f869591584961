"""The Python client and the `recon submit/status/download/cancel/jobs` commands.

It speaks the service's wire contract (`recon.schemas`) over HTTP and imports nothing else of
the service, so a pipeline needs only the base install.
"""

from recon.client.client import Client
from recon.client.errors import (
    AuthenticationError,
    ConflictError,
    ConnectionFailed,
    InvalidRequestError,
    JobCanceledError,
    JobFailedError,
    NotFoundError,
    RateLimitedError,
    ReconError,
    ServerError,
    ServiceUnavailableError,
    WaitTimedOut,
)
from recon.client.retry import RetryNotice, RetryPolicy

__all__ = [
    "AuthenticationError",
    "Client",
    "ConflictError",
    "ConnectionFailed",
    "InvalidRequestError",
    "JobCanceledError",
    "JobFailedError",
    "NotFoundError",
    "RateLimitedError",
    "ReconError",
    "RetryNotice",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailableError",
    "WaitTimedOut",
]
