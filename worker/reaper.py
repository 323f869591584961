"""The reaper: lost jobs are found and sent again, or failed with a reason.

A worker killed mid-job (SIGKILL, out of memory, machine lost) leaves its job `running` with a
heartbeat that no longer moves. Every worker process runs the reaper as a daemon thread (from
Celery's ``worker_ready`` signal); a Redis lock makes one pass at a time do the work, so many
workers never requeue a job twice. For each running job whose heartbeat is older than
`Settings.heartbeat_timeout_s` and whose lease has expired (its owner is really gone):

- fewer than `Settings.max_attempts` attempts: back to `queued` and the task is sent again
  (the requeue itself re-checks the lease atomically, so a worker back from a Redis outage
  that re-took its lease after the reaper looked keeps its job);
- otherwise: `failed` with code ``worker_lost`` and a sentence saying what happened.

A redelivered copy of the original message (Redis visibility timeout) finds the job running
under a live lease or final, and exits: requeueing early never runs a job twice at once.

The same pass also finds jobs that are `queued` although their task was last sent more than
`Settings.queued_resend_after_s` ago and nobody holds their lease: the API process died after
storing the job but before publishing its message, a requeue's send failed, or the broker lost
the message. Their task is sent again. The job store claims each such job atomically and backs
it off: the n-th re-send makes it due again 2**n windows later, however many reapers run. A job
merely waiting in a long queue therefore gets a few duplicate messages (about log2 of its wait
in windows), which the lease and the final-state check make harmless.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from celery.signals import worker_ready, worker_shutdown

from api_schemas import RECONSTRUCT_TASK_NAME, JobStatus, ReconstructTaskPayload
from worker.job_run import lost_message

if TYPE_CHECKING:
    from worker.celery_app import ReconCelery

logger = logging.getLogger(__name__)

LOCK_NAME = "reaper:lock"
"""Job-store key (after the prefix) of the lock that serialises reaper passes."""

RESEND_BATCH = 100
"""Most queued jobs one pass re-sends; the rest wait for the next pass, so passes stay short."""

MIN_LOCK_TIMEOUT_S = 10.0
"""Shortest lifetime of the reaper lock, so a slow pass is not overtaken by the next one."""


@dataclass
class ReapReport:
    """What one reaper pass did (job ids)."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    """Queued jobs whose task was sent again (message never published or lost)."""
    skipped_lock_held: bool = False


def reap_once(app: ReconCelery) -> ReapReport:
    """One pass over stale running jobs, then stale queued ones (see the module docstring)."""
    settings, store = app.recon_settings, app.job_store
    report = ReapReport()
    lock = store.redis.lock(
        f"{store.prefix}:{LOCK_NAME}",
        timeout=max(settings.reaper_interval_s * 2, MIN_LOCK_TIMEOUT_S),
    )
    if not lock.acquire(blocking=False):
        report.skipped_lock_held = True
        return report
    try:
        for job_id in store.stale_running(settings.heartbeat_timeout_s):
            reap_job(app, job_id, report)
        resend_stale_queued(app, report)
    finally:
        with contextlib.suppress(redis.RedisError):
            lock.release()
    return report


def reap_job(app: ReconCelery, job_id: str, report: ReapReport) -> None:
    """Requeue or fail one job whose heartbeat is stale."""
    settings, store = app.recon_settings, app.job_store
    record = store.get(job_id)
    if record is None or record.status != JobStatus.RUNNING:
        return
    if store.lease_owner(job_id) is not None:
        return  # the owner renewed its lease recently: slow, not dead (requeue re-checks)
    if record.attempts >= settings.max_attempts:
        if store.mark_failed(job_id, "worker_lost", lost_message(record.attempts)):
            logger.error("job %s: worker lost %d times; failed", job_id, record.attempts)
            report.failed.append(job_id)
        return
    if store.requeue(job_id):
        send_job_task(app, job_id, record.tenant)
        logger.warning(
            "job %s: no heartbeat for %.0f s (worker %s); requeued (attempt %d of %d)",
            job_id, settings.heartbeat_timeout_s, record.worker_id,
            record.attempts + 1, settings.max_attempts,
        )
        report.requeued.append(job_id)


def resend_stale_queued(app: ReconCelery, report: ReapReport) -> None:
    """Send the task again for queued jobs whose message was never published or was lost."""
    settings, store = app.recon_settings, app.job_store
    for job_id in store.claim_stale_queued(settings.queued_resend_after_s, RESEND_BATCH):
        record = store.get(job_id)
        if record is None or record.status != JobStatus.QUEUED:
            continue  # deleted, canceled or started since the claim
        send_job_task(app, job_id, record.tenant)
        logger.warning(
            "job %s: still queued over %.0f s after its task was sent; sent it again",
            job_id, settings.queued_resend_after_s,
        )
        report.resent.append(job_id)


def send_job_task(app: ReconCelery, job_id: str, tenant: str) -> None:
    """Publish the reconstruction task of one job (its queue comes from the task routes)."""
    payload = ReconstructTaskPayload(job_id=job_id, tenant=tenant)
    app.send_task(RECONSTRUCT_TASK_NAME, kwargs=payload.model_dump())


class Reaper:
    """A daemon thread running `reap_once` every `Settings.reaper_interval_s`."""

    def __init__(self, app: ReconCelery) -> None:
        self.app = app
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="recon-reaper", daemon=True)

    def start(self) -> Reaper:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()

    def _run(self) -> None:
        interval = self.app.recon_settings.reaper_interval_s
        while not self.stop_event.wait(interval):
            try:
                report = reap_once(self.app)
            except redis.RedisError as exc:
                logger.warning("reaper: job store unreachable (%s)", exc)
                continue
            except Exception:
                logger.exception("reaper: pass failed")
                continue
            if report.requeued or report.failed or report.resent:
                logger.info(
                    "reaper: requeued %s, failed %s, re-sent %s",
                    report.requeued, report.failed, report.resent,
                )


_reapers: dict[int, Reaper] = {}


def _start_reaper(sender: Any = None, **_: Any) -> None:
    """``worker_ready`` handler: start this worker's reaper thread."""
    from worker.celery_app import ReconCelery

    app = getattr(sender, "app", None)
    if isinstance(app, ReconCelery) and id(app) not in _reapers:
        _reapers[id(app)] = Reaper(app).start()
        logger.info("reaper started (every %.0f s)", app.recon_settings.reaper_interval_s)


def _stop_reapers(**_: Any) -> None:
    """``worker_shutdown`` handler."""
    for reaper in _reapers.values():
        reaper.stop()


def install() -> None:
    """Connect the reaper to Celery's worker signals (idempotent)."""
    worker_ready.connect(_start_reaper, dispatch_uid="recon-reaper-start", weak=False)
    worker_shutdown.connect(_stop_reapers, dispatch_uid="recon-reaper-stop", weak=False)
