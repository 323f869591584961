"""Infrastructure errors: which ones are worth retrying, and how to name one to a tenant.

Exception texts from redis-py and botocore carry endpoints and host names; they go to the
worker's log only. A job's error message names the kind of outage in plain words.
"""

from __future__ import annotations

import redis

from recon.infra.storage import StorageUnavailable


def transient_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean "infrastructure trouble, try again later"."""
    errors: list[type[BaseException]] = [
        redis.ConnectionError, redis.TimeoutError, StorageUnavailable,
        ConnectionError, TimeoutError,
    ]
    try:
        from botocore.exceptions import BotoCoreError, ClientError

        errors += [BotoCoreError, ClientError]
    except ImportError:  # an image without boto3 only ever uses local storage
        pass
    return tuple(errors)


TRANSIENT_ERRORS = transient_errors()


def describe_outage(exc: BaseException) -> str:
    """A sentence naming what was unreachable, without hosts, endpoints or credentials."""
    if isinstance(exc, redis.RedisError):
        return "the job store (Redis) was unreachable"
    return "object storage was unreachable"
