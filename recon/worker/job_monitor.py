"""The running job's side thread: heartbeat, lease renewal, progress writes and the cancel flag.

All job-store traffic of a running job happens here, so the engine's training loop never waits
on Redis: `on_progress` only records the latest `Progress`, and `should_cancel` only reads
events this thread sets. Three different reasons stop the engine, and only the first one may be
written as a cancel:

- `cancel_requested`: the job's cancel flag is set (or the job was deleted);
- `superseded`: a heartbeat, fenced by this run's token, found that the run no longer owns the
  job (the reaper requeued it while this worker was stalled or cut off, or it became final);
  nothing more is written for it;
- `draining`: this worker is shutting down; the run hands the job back for another worker.

Any Redis error (connection loss, READONLY during a failover, OOM) is logged and retried on the
next tick; the thread never dies of one, because a silent thread stops the heartbeat and lets
the reaper start a second run of a job this worker is still training.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import redis

from recon.schemas import JobProgress

if TYPE_CHECKING:
    from recon.engine import Progress
    from recon.infra.job_store import JobStore

logger = logging.getLogger(__name__)

STAGE_SPANS: dict[str, tuple[float, float]] = {
    "download": (0.0, 0.02),
    "prepare": (0.02, 0.07),
    "train": (0.07, 0.85),
    "mesh": (0.85, 0.93),
    "metrics": (0.93, 0.97),
    "upload": (0.97, 1.0),
}
"""Share of the whole job each stage covers, for the overall `fraction` a client sees."""


@dataclass(frozen=True)
class MonitorTiming:
    """How often the monitor thread does each of its chores (seconds)."""

    tick_s: float = 0.25
    """Loop period; the cancel flag is read every tick, so cancels land within ~2 ticks."""
    progress_interval_s: float = 1.0
    """Progress is written at most this often (and at every stage change)."""
    heartbeat_interval_s: float = 2.0
    """Heartbeat and lease renewal period (`Settings.heartbeat_interval_s`)."""
    lease_ttl_s: float = 30.0
    """Lease lifetime set at each renewal (`Settings.lease_ttl_s`)."""


def job_progress(progress: Progress) -> JobProgress:
    """The public progress view of an engine `Progress` (overall fraction and training ETA)."""
    low, high = STAGE_SPANS.get(progress.stage, (0.0, 1.0))
    within = progress.fraction
    if within is None:
        within = progress.step / progress.total if progress.total > 0 else 0.0
    within = min(max(within, 0.0), 1.0)
    eta = None
    if progress.stage == "train" and 0 < within < 1:
        # The fraction follows the time budget when there is one, so the ETA does too.
        eta = progress.elapsed_s * (1.0 - within) / within
    return JobProgress(
        stage=progress.stage,
        step=progress.step,
        total=progress.total,
        fraction=round(low + (high - low) * within, 4),
        loss=progress.loss if progress.loss is not None and math.isfinite(progress.loss) else None,
        eta_seconds=None if eta is None else round(eta, 1),
    )


def stage_progress(stage: str) -> JobProgress:
    """Progress at the start of a worker-side stage ("download", "upload")."""
    return JobProgress(stage=stage, fraction=STAGE_SPANS[stage][0])


class JobMonitor:
    """A daemon thread that keeps one running job alive in the job store.

    Use as a context manager around the engine call; `should_cancel` and `on_progress` are the
    callbacks the engine receives.
    """

    def __init__(
        self, store: JobStore, job_id: str, run_token: str, node: str, timing: MonitorTiming
    ) -> None:
        self.store = store
        self.job_id = job_id
        self.run_token = run_token
        """The run's fencing token, which is also the value of its lease."""
        self.node = node
        """The worker's node name, whose draining flag this thread watches."""
        self.timing = timing
        self.cancel_requested = threading.Event()
        self.superseded = threading.Event()
        self.draining = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: JobProgress | None = None
        self._last_stage: str | None = None
        self._last_write = 0.0
        self._last_beat = 0.0
        self._thread = threading.Thread(target=self._run, name=f"job-{job_id}", daemon=True)

    def __enter__(self) -> JobMonitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timing.heartbeat_interval_s + self.timing.tick_s)

    # --- engine callbacks (called on the engine's thread; no I/O) ------------------------------
    def should_cancel(self) -> bool:
        """True once the job was asked to cancel, the run lost the job, or the worker drains."""
        return (
            self.cancel_requested.is_set()
            or self.superseded.is_set()
            or self.draining.is_set()
        )

    def on_progress(self, progress: Progress) -> None:
        """Remember the engine's latest progress; the thread writes it out."""
        self.set_progress(job_progress(progress))

    def set_progress(self, progress: JobProgress) -> None:
        """Queue `progress` for writing (at once when the stage changed)."""
        with self._lock:
            self._pending = progress

    # --- the thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.wait(self.timing.tick_s):
            try:
                self._tick(time.monotonic())
            except redis.RedisError as exc:
                logger.warning("job %s: job store error (%s); retrying", self.job_id, exc)
            except Exception:
                logger.exception("job %s: monitor tick failed; retrying", self.job_id)
        try:
            self._flush_progress(time.monotonic(), force=True)
        except redis.RedisError as exc:
            logger.warning("job %s: last progress not written (%s)", self.job_id, exc)

    def _tick(self, now: float) -> None:
        if self.store.is_cancel_requested(self.job_id):
            self.cancel_requested.set()
        wrote = self._flush_progress(now, force=False)
        if now - self._last_beat < self.timing.heartbeat_interval_s:
            return
        self._last_beat = now
        if self.store.is_draining(self.node):
            self.draining.set()
        if not self.store.keep_lease(self.job_id, self.run_token, self.timing.lease_ttl_s):
            # The heartbeat below is fenced by the run token and decides whether the job is
            # still this run's; a lease held for a moment by a duplicate delivery is not a loss.
            logger.warning("job %s: lease not renewed (held by %s)",
                           self.job_id, self.store.lease_owner(self.job_id))
        if not wrote and not self.store.heartbeat(self.job_id, self.run_token):
            self._supersede()

    def _supersede(self) -> None:
        """The run no longer owns the job: stop the engine, write nothing more."""
        if not self.superseded.is_set():
            logger.warning("job %s: no longer owned by this run (requeued or final); stopping",
                           self.job_id)
        self.superseded.set()

    def _flush_progress(self, now: float, *, force: bool) -> bool:
        with self._lock:
            pending = self._pending
            due = pending is not None and (
                force
                or pending.stage != self._last_stage
                or now - self._last_write >= self.timing.progress_interval_s
            )
            if not due or pending is None:
                return False
            self._pending = None
        self._last_stage = pending.stage
        self._last_write = now
        if not self.store.heartbeat(self.job_id, self.run_token, pending):
            self._supersede()
        return True
