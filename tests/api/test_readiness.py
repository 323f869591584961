"""The readiness cache on its own: one probe call per TTL however many callers, a deadline for
hanging probes, stuck calls reused (then abandoned after `ABANDON_AFTER_S`), and failure
reasons logged once per change instead of answered. Probes are plain functions; the clock is a
hand-moved counter so TTLs are exact."""

import asyncio
import logging
import threading
import time

import pytest

from recon.api.readiness import ABANDON_AFTER_S, OK, UNAVAILABLE, ReadinessCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Probe:
    """Counts its calls; fails with `error` when set; blocks while `gate` is closed."""

    def __init__(self, result: object = None) -> None:
        self.calls = 0
        self.result = result
        self.error: Exception | None = None
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self) -> object:
        self.calls += 1
        self.gate.wait(timeout=30)
        if self.error is not None:
            raise self.error
        return self.result


def test_many_callers_share_one_check_per_ttl() -> None:
    clock, store, depth = Clock(), Probe(), Probe(result=7)
    cache = ReadinessCache({"job_store": store, "broker": depth}, ttl_s=2.0, clock=clock)

    async def burst() -> list:
        return list(await asyncio.gather(*(cache.current() for _ in range(50))))

    first = asyncio.run(burst())
    assert store.calls == depth.calls == 1 and cache.refreshes == 1
    assert all(s is first[0] for s in first)
    assert first[0].checks == {"job_store": OK, "broker": OK} and first[0].queue_depth == 7
    clock.now += 1.9
    asyncio.run(burst())
    assert store.calls == 1  # still fresh
    clock.now += 0.2
    asyncio.run(burst())
    assert store.calls == depth.calls == 2 and cache.refreshes == 2


def test_a_hanging_probe_is_unavailable_at_the_deadline_and_not_started_twice() -> None:
    clock, hanging = Clock(), Probe()
    hanging.gate.clear()
    cache = ReadinessCache({"job_store": hanging}, ttl_s=0, deadline_s=0.2, clock=clock)
    try:
        started = time.monotonic()
        snapshot = asyncio.run(cache.current())
        assert time.monotonic() - started < 1.0
        assert snapshot.checks == {"job_store": UNAVAILABLE} and not snapshot.ready
        asyncio.run(cache.current())
        assert hanging.calls == 1  # the stuck call is awaited again
        clock.now += ABANDON_AFTER_S
        asyncio.run(cache.current())
        assert hanging.calls == 2  # ... until it is given up for a fresh one
    finally:
        hanging.gate.set()
    assert asyncio.run(cache.current()).ready


def test_reasons_go_to_the_log_once_per_change(caplog: pytest.LogCaptureFixture) -> None:
    probe = Probe()
    probe.error = ConnectionError("Error 111 connecting to redis.internal:6379")
    cache = ReadinessCache({"job_store": probe}, ttl_s=0)
    with caplog.at_level(logging.INFO, logger="recon.api.readiness"):
        for _ in range(3):
            assert asyncio.run(cache.current()).checks == {"job_store": UNAVAILABLE}
        probe.error = None
        assert asyncio.run(cache.current()).ready
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "readiness: job_store is unavailable: ConnectionError: "
        "Error 111 connecting to redis.internal:6379",
        "readiness: job_store is available again",
    ]
