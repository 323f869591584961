"""The retry policy as pure functions: reading `Retry-After`, and the waits it leads to."""

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from recon.client.retry import RetryPolicy, parse_retry_after

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "seconds"), [
    ("1", 1.0),
    (" 30 ", 30.0),
    (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
    ("Sun, 01 Jun 2025 12:00:05 GMT", 5.0),
    (format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0),  # already past: now
    (None, None),
    ("", None),
    ("-5", None),
    ("1.5", None),
    ("soon", None),
])
def test_retry_after_is_seconds_or_an_http_date(header: str | None,
                                                seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW.timestamp()) == seconds


def test_retry_after_is_the_least_wait_with_a_little_jitter() -> None:
    policy, rng = RetryPolicy(), random.Random(0)
    waits = [policy.wait_before(1, 10.0, 0.0, rng) for _ in range(200)]
    assert all(w is not None and 10.0 <= w <= 11.0 for w in waits)
    assert len(set(waits)) > 100  # clients told the same number spread out


def test_backoff_doubles_up_to_its_cap_without_retry_after() -> None:
    policy, rng = RetryPolicy(retries=10, backoff_s=1.0, backoff_max_s=8.0), random.Random(0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        waits = [policy.wait_before(attempt, None, 0.0, rng) for _ in range(50)]
        assert all(w is not None and ceiling / 2 <= w <= ceiling for w in waits), attempt


def test_retries_end_after_their_count_or_their_time() -> None:
    policy, rng = RetryPolicy(retries=3, max_wait_s=60.0), random.Random(0)
    assert policy.wait_before(3, 1.0, 0.0, rng) is not None
    assert policy.wait_before(4, 1.0, 0.0, rng) is None
    assert policy.wait_before(1, 30.0, 35.0, rng) is None  # would pass 60 s in all
    assert policy.wait_before(1, 600.0, 0.0, rng) is None  # not worth waiting for
    assert RetryPolicy(retries=0).wait_before(1, 1.0, 0.0, rng) is None
