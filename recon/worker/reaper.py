"""The reaper: lost jobs are found and sent again, or failed with a reason; deletions and
retention are finished.

A worker killed mid-job (SIGKILL, out of memory, machine lost) leaves its job `running` with a
heartbeat that no longer moves. Every worker process runs the reaper as a daemon thread (from
Celery's ``worker_ready`` signal); a Redis lock makes one pass at a time do the work, so many
workers never requeue a job twice. For each running job whose heartbeat is older than
`Settings.heartbeat_timeout_s` and whose lease has expired (its owner is really gone):

- a cancel (or delete) was asked meanwhile: `canceled` at once, without waiting for a worker;
- fewer than `Settings.max_attempts` lost runs: back to `queued` and the task is sent again
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

Then the sweeper half: jobs whose DELETE was recorded get their objects removed and then their
record (a storage failure leaves the deletion pending for the next pass, so nothing is
orphaned), and final jobs older than `Settings.job_retention_s` are deleted the same way.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import redis
from celery.signals import worker_ready, worker_shutdown

from recon.infra.job_store import JobStore
from recon.infra.settings import Settings
from recon.infra.storage import ObjectStorage, StorageError, job_prefix
from recon.infra.task_queue import JobQueue
from recon.schemas import JobStatus
from recon.worker.job_run import lost_message

logger = logging.getLogger(__name__)

LOCK_NAME = "reaper:lock"
"""Job-store key (after the prefix) of the lock that serialises reaper passes."""

RESEND_BATCH = 100
"""Most queued jobs one pass re-sends; the rest wait for the next pass, so passes stay short."""

SWEEP_BATCH = 100
"""Most deletions (and expiries) one pass finishes; the rest wait for the next pass."""

MIN_LOCK_TIMEOUT_S = 10.0
"""Shortest lifetime of the reaper lock, so a slow pass is not overtaken by the next one."""


class ReaperHost(Protocol):
    """What the reaper uses of the worker's Celery app (`recon.worker.celery_app.ReconCelery`)."""

    @property
    def recon_settings(self) -> Settings: ...

    @property
    def job_store(self) -> JobStore: ...

    @property
    def job_queue(self) -> JobQueue: ...

    @property
    def storage(self) -> ObjectStorage: ...


@dataclass
class ReapReport:
    """What one reaper pass did (job ids)."""

    requeued: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    """Queued jobs whose task was sent again (message never published or lost)."""
    canceled: list[str] = field(default_factory=list)
    """Jobs whose cancel was asked after their worker died."""
    deleted: list[str] = field(default_factory=list)
    """Jobs whose deletion (asked, or by retention) was finished."""
    expired: list[str] = field(default_factory=list)
    """Final jobs past their retention, now being deleted."""
    skipped_lock_held: bool = False


def reap_once(app: ReaperHost) -> ReapReport:
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
        expire_finished(app, report)
        sweep_deletions(app, report)
    finally:
        with contextlib.suppress(redis.RedisError):
            lock.release()
    return report


def reap_job(app: ReaperHost, job_id: str, report: ReapReport) -> None:
    """Requeue or fail one job whose heartbeat is stale."""
    settings, store = app.recon_settings, app.job_store
    record = store.get(job_id)
    if record is None or record.status != JobStatus.RUNNING:
        return
    if store.lease_owner(job_id) is not None:
        return  # the owner renewed its lease recently: slow, not dead (each change re-checks)
    if record.cancel_requested:
        if store.cancel_lost(job_id):
            logger.warning("job %s: worker %s gone with a cancel pending; canceled",
                           job_id, record.worker_id)
            report.canceled.append(job_id)
        return
    lost = record.lost_runs + 1
    if lost >= settings.max_attempts:
        if store.fail_lost(job_id, "worker_lost", lost_message(lost)):
            logger.error("job %s: worker lost %d times; failed", job_id, lost)
            report.failed.append(job_id)
        return
    if store.requeue_lost(job_id):
        app.job_queue.enqueue(job_id, record.tenant)
        logger.warning(
            "job %s: no heartbeat for %.0f s (worker %s); requeued (lost run %d of %d)",
            job_id, settings.heartbeat_timeout_s, record.worker_id, lost, settings.max_attempts,
        )
        report.requeued.append(job_id)


def resend_stale_queued(app: ReaperHost, report: ReapReport) -> None:
    """Send the task again for queued jobs whose message was never published or was lost."""
    settings, store = app.recon_settings, app.job_store
    for job_id in store.claim_stale_queued(settings.queued_resend_after_s, RESEND_BATCH):
        record = store.get(job_id)
        if record is None or record.status != JobStatus.QUEUED:
            continue  # deleted, canceled or started since the claim
        app.job_queue.enqueue(job_id, record.tenant)
        logger.warning(
            "job %s: still queued over %.0f s after its task was sent; sent it again",
            job_id, settings.queued_resend_after_s,
        )
        report.resent.append(job_id)


def expire_finished(app: ReaperHost, report: ReapReport) -> None:
    """Record the deletion of final jobs older than the retention (0: keep forever)."""
    settings, store = app.recon_settings, app.job_store
    if settings.job_retention_s <= 0:
        return
    cutoff = time.time() - settings.job_retention_s
    for job_id in store.finished_before(cutoff, SWEEP_BATCH):
        if store.mark_deleted(job_id) is not None:
            report.expired.append(job_id)
        else:  # already being deleted, or gone: the sweeper below or an earlier pass has it
            record = store.get(job_id)
            if record is None:
                store.purge(job_id)


def sweep_deletions(app: ReaperHost, report: ReapReport) -> None:
    """Finish recorded deletions: objects first, then the record; retried on the next pass."""
    store = app.job_store
    for job_id in store.deleting(SWEEP_BATCH):
        record = store.get(job_id)
        if record is None:
            store.purge(job_id)  # drops the stale index entry
            continue
        if not record.is_final:
            continue  # its worker stops at the next check (the cancel flag is set)
        try:
            app.storage.delete_prefix(job_prefix(record.tenant, job_id))
        except StorageError as exc:
            logger.warning("job %s: objects not deleted yet (%s); retrying next pass",
                           job_id, type(exc).__name__)
            continue
        store.purge(job_id)
        report.deleted.append(job_id)


class Reaper:
    """A daemon thread running `reap_once` every `Settings.reaper_interval_s`."""

    def __init__(self, app: ReaperHost) -> None:
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
            if report.requeued or report.failed or report.resent or report.canceled:
                logger.info(
                    "reaper: requeued %s, failed %s, re-sent %s, canceled %s",
                    report.requeued, report.failed, report.resent, report.canceled,
                )
            if report.deleted or report.expired:
                logger.info("sweeper: deleted %d jobs (%d past retention)",
                            len(report.deleted), len(report.expired))


_reapers: dict[int, Reaper] = {}


def install(app: ReaperHost) -> None:
    """Run a reaper thread in `app`'s worker from ``worker_ready`` until ``worker_shutdown``.

    Idempotent per app; an app that only publishes never gets ``worker_ready``.
    """

    def start(sender: Any = None, **_: Any) -> None:
        if getattr(sender, "app", None) is app and id(app) not in _reapers:
            _reapers[id(app)] = Reaper(app).start()
            logger.info("reaper started (every %.0f s)", app.recon_settings.reaper_interval_s)

    def stop(**_: Any) -> None:
        reaper = _reapers.pop(id(app), None)
        if reaper is not None:
            reaper.stop()

    worker_ready.connect(start, dispatch_uid=f"recon-reaper-start-{id(app)}", weak=False)
    worker_shutdown.connect(stop, dispatch_uid=f"recon-reaper-stop-{id(app)}", weak=False)
