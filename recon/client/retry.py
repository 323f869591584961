"""When the client tries a request again, and how long it waits first.

Answers that say "not now" (429, 502, 503, 504) and broken connections are retried; anything
else is the caller's to fix. The service's `Retry-After` (seconds or an HTTP date) is honoured
as the least wait, with a little jitter on top so that many clients told the same number do not
come back in the same instant; without it the wait doubles from `backoff_s` up to
`backoff_max_s`, half of it random. Retries end after `retries` attempts or once the waits
would pass `max_wait_s` in all, so a pipeline never hangs on a service that stays away.
"""

import random
import time
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Statuses that mean "try again later"; the request itself was fine."""
RETRY_AFTER_JITTER = 0.1
"""Share of a `Retry-After` wait added at random on top (at most `RETRY_AFTER_JITTER_MAX_S`)."""
RETRY_AFTER_JITTER_MAX_S = 1.0


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date.

    `now` is the current Unix time (default: the clock). A date in the past means 0; a value
    that is neither form means None (no advice).
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an obsolete date form without zone: HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long the client retries; `RetryPolicy(retries=0)` never does."""

    retries: int = 5
    """Attempts after the first."""
    backoff_s: float = 0.5
    """The first wait when the service gave no `Retry-After`."""
    backoff_max_s: float = 30.0
    """The longest wait without `Retry-After`."""
    max_wait_s: float = 300.0
    """The most time spent waiting between attempts of one request, all waits together; a
    `Retry-After` that would pass it ends the retries at once."""

    def wait_before(self, attempt: int, retry_after_s: float | None, waited_s: float,
                    rng: random.Random) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up.

        `attempt` counts from 1 (the attempt that just failed); `waited_s` is what this request
        already waited.
        """
        if attempt > self.retries:
            return None
        if retry_after_s is not None:
            jitter = min(RETRY_AFTER_JITTER * retry_after_s, RETRY_AFTER_JITTER_MAX_S)
            wait = retry_after_s + rng.uniform(0.0, jitter)
        else:
            ceiling = min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))
            wait = ceiling / 2 + rng.uniform(0.0, ceiling / 2)
        if waited_s + wait > self.max_wait_s:
            return None
        return wait


@dataclass(frozen=True)
class RetryNotice:
    """What a retry callback is told: which attempt failed, why, and the wait before the next."""

    attempt: int
    wait_s: float
    error: Exception
    """The typed error that would have been raised (a `ReconError`)."""
    retries: int
    """The policy's number of retries, so a message can say "retry 2 of 5"."""
