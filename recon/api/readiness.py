"""Readiness of the backing services, checked at most once per TTL however often it is asked.

`/readyz` and `/metrics` are polled by load balancers and scrapers, and `/readyz` by anyone:
checking Redis, the broker and the storage on every call would let any client multiply the
load on them. `ReadinessCache` keeps the last snapshot for `readiness_cache_s`; the first caller
after it expires starts one refresh and every caller meanwhile awaits that same refresh
(single flight). Each check runs in its own daemon thread and gets `CHECK_DEADLINE_S`: a backend
that hangs (a black-holed host, a client retrying) reads as unavailable within that time, and a
stuck check is awaited again rather than started twice, so a hanging backend piles up nothing;
only after `ABANDON_AFTER_S` is a stuck call given up for a fresh one (a client without a read
timeout may wait forever on a dead connection, and readiness must still come back).
Why a check failed goes to the log (once per change), never to the caller: exception text
names internal hosts and endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recon.api.context import ServiceContext

logger = logging.getLogger(__name__)

OK = "ok"
UNAVAILABLE = "unavailable"
CHECK_DEADLINE_S = 0.75
"""How long one refresh waits for its checks; keeps `/readyz` under a second when one hangs."""
ABANDON_AFTER_S = 30.0
"""A check call still running after this long is left to itself and a new one is started."""
BROKER_CHECK = "broker"
"""The check whose result is the queue depth (reading it proves the broker answers)."""

Probe = Callable[[], object]


@dataclass(frozen=True)
class Readiness:
    """One snapshot: each check's state ("ok" or "unavailable") and the queue depth."""

    checks: dict[str, str]
    queue_depth: int | None
    taken_at: float

    @property
    def ready(self) -> bool:
        """True when every check answered."""
        return all(state == OK for state in self.checks.values())


@dataclass(frozen=True)
class _Outcome:
    """What one probe call returned, or why it failed (a thread's result never raises)."""

    value: object = None
    error: str | None = None


class _Check:
    """One named probe and the call of it still running, if any."""

    def __init__(self, name: str, probe: Probe, clock: Callable[[], float]) -> None:
        self.name = name
        self.probe = probe
        self._clock = clock
        self._running: Future[_Outcome] | None = None
        self._started_at = 0.0

    def start(self) -> Future[_Outcome]:
        """The running call while it is stuck (up to `ABANDON_AFTER_S`), else a new call."""
        running = self._running
        if running is not None and not running.done():
            if self._clock() - self._started_at < ABANDON_AFTER_S:
                return running
            logger.warning("readiness: abandoning a %s check stuck for %.0f s", self.name,
                           self._clock() - self._started_at)
        future: Future[_Outcome] = Future()
        future.set_running_or_notify_cancel()

        def run() -> None:
            try:
                future.set_result(_Outcome(value=self.probe()))
            except Exception as exc:
                future.set_result(_Outcome(error=f"{type(exc).__name__}: {exc}"))

        self._running, self._started_at = future, self._clock()
        threading.Thread(target=run, name=f"readiness-{self.name}", daemon=True).start()
        return future


class ReadinessCache:
    """The latest `Readiness`, refreshed at most once per `ttl_s` by a single flight."""

    def __init__(
        self,
        probes: Mapping[str, Probe],
        *,
        ttl_s: float,
        deadline_s: float = CHECK_DEADLINE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._checks = [_Check(name, probe, clock) for name, probe in probes.items()]
        self.ttl_s = ttl_s
        self.deadline_s = deadline_s
        self._clock = clock
        self._snapshot: Readiness | None = None
        self._refresh: asyncio.Task[Readiness] | None = None
        self._lock = threading.Lock()  # test clients may call from several event loops
        self._last_errors: dict[str, str | None] = {}
        self.refreshes = 0
        """How many refreshes ran (each calls every probe at most once)."""

    @classmethod
    def for_context(cls, context: ServiceContext) -> ReadinessCache:
        """Checks of the job store, the storage and the broker (whose answer is the depth)."""
        probes: dict[str, Probe] = {
            "job_store": context.job_store.ping,
            "storage": context.storage.ping,
            BROKER_CHECK: context.queue.depth,
        }
        return cls(probes, ttl_s=context.settings.readiness_cache_s)

    async def current(self) -> Readiness:
        """The cached snapshot while fresh, else the result of the one refresh in flight."""
        snapshot = self._snapshot
        if snapshot is not None and self._clock() - snapshot.taken_at < self.ttl_s:
            return snapshot
        loop = asyncio.get_running_loop()
        with self._lock:
            task = self._refresh
            if task is None or task.done() or task.get_loop() is not loop:
                task = self._refresh = loop.create_task(self._take())
        return await asyncio.shield(task)

    async def _take(self) -> Readiness:
        self.refreshes += 1
        calls = {check.name: check.start() for check in self._checks}
        await asyncio.wait([asyncio.wrap_future(call) for call in calls.values()],
                           timeout=self.deadline_s)
        checks: dict[str, str] = {}
        depth: int | None = None
        for name, call in calls.items():
            outcome = call.result() if call.done() else _Outcome(
                error=f"no answer within {self.deadline_s:g} s"
            )
            checks[name] = OK if outcome.error is None else UNAVAILABLE
            self._log_change(name, outcome.error)
            if name == BROKER_CHECK and outcome.error is None and isinstance(outcome.value, int):
                depth = outcome.value
        snapshot = Readiness(checks, depth, self._clock())
        self._snapshot = snapshot
        return snapshot

    def _log_change(self, name: str, error: str | None) -> None:
        """Log a check going down (with why) or coming back, once per change."""
        previous = self._last_errors.get(name)
        self._last_errors[name] = error
        if error is not None and error != previous:
            logger.warning("readiness: %s is unavailable: %s", name, error[:500])
        elif error is None and previous is not None:
            logger.info("readiness: %s is available again", name)
