"""The Celery task: a thin adapter from a queue message (job id, tenant) to `run_job`.

Like a web view, it only translates: it builds the job context from its app, runs the job, and
turns what escapes into job states. Engine errors are final (handled in `recon.worker.job_run`).
A job handed back after an infrastructure error (`RetryLater`) is sent again after a jittered
exponential backoff. A job killed by the hard time limit is failed from the worker's main
process, fenced by the run token of the killed run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
from typing import Any

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import worker_process_init

from recon.schemas import RECONSTRUCT_TASK_NAME, JobStatus
from recon.worker.celery_app import ReconCelery
from recon.worker.job_run import JobContext, Outcome, RetryLater, run_job, time_limit_message
from recon.worker.transient import TRANSIENT_ERRORS

logger = logging.getLogger(__name__)

RETRY_BACKOFF_BASE_S = 2.0
"""Backoff before the first infrastructure retry; doubles per retry up to the settings' cap."""

_JITTER = random.SystemRandom()


def backoff_s(retry: int, cap_s: float) -> float:
    """Jittered exponential delay before retry number `retry` (1-based), at most `cap_s`."""
    ceiling = min(cap_s, RETRY_BACKOFF_BASE_S * 2 ** (retry - 1))
    return _JITTER.uniform(ceiling / 2, ceiling)


POOL_NICENESS = 10
"""Pool processes (the training) run at this lower CPU priority: where an API shares the machine
with workers (`recon serve`, a small VM) it keeps answering in milliseconds while jobs train, and
on a machine that only trains nothing changes."""


@worker_process_init.connect(weak=False)
def prepare_pool_process(**_: Any) -> None:
    """Lower the pool process's CPU priority and import the engine (torch) once, before its
    first job. The worker's main process never imports torch: CUDA must not be initialised
    before fork."""
    with contextlib.suppress(OSError):
        os.nice(POOL_NICENESS)
    import recon.engine.pipeline  # noqa: F401


class ReconstructTask(Task):
    """Task base: gives the job context and fails a job that the hard time limit killed."""

    def recon_app(self) -> ReconCelery:
        app = self.app
        if not isinstance(app, ReconCelery):
            raise TypeError("the task needs an app from recon.worker.celery_app.create_celery_app")
        return app

    def job_context(self) -> JobContext:
        app = self.recon_app()
        node = self.request.hostname or socket.gethostname()
        return JobContext(
            settings=app.recon_settings,
            store=app.job_store,
            storage=app.storage,
            worker_id=f"{node}:{os.getpid()}",
            node=node,
        )

    def on_failure(
        self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Runs in the worker's main process after a hard time-limit kill of a pool process.

        Only the killed run may be failed: the record must still be running under a process
        of this worker that no longer exists, and the write is fenced by that run's token.
        """
        if not isinstance(exc, TimeLimitExceeded) or "job_id" not in (kwargs or {}):
            return
        app = self.recon_app()
        store, job_id = app.job_store, kwargs["job_id"]
        with contextlib.suppress(*TRANSIENT_ERRORS):
            record = store.get(job_id)
            if (
                record is None
                or record.status is not JobStatus.RUNNING
                or record.run_token is None
                or not _is_dead_local_process(record.worker_id)
            ):
                return
            store.fail(job_id, record.run_token, "time_limit",
                       time_limit_message(app.recon_settings))


def _is_dead_local_process(worker_id: str | None) -> bool:
    """True when `worker_id` ("node@host:pid") names a process of this host that is gone."""
    if not worker_id or ":" not in worker_id:
        return False
    node, _, pid_text = worker_id.rpartition(":")
    if not node.endswith(f"@{socket.gethostname()}") or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@shared_task(bind=True, base=ReconstructTask, name=RECONSTRUCT_TASK_NAME)
def reconstruct_job(self: ReconstructTask, job_id: str, tenant: str) -> str:
    """Run reconstruction job `job_id` of `tenant`; return what this delivery did."""
    ctx = self.job_context()
    try:
        return run_job(ctx, job_id, tenant).value
    except RetryLater as retry:
        delay = backoff_s(retry.retries, ctx.settings.retry_backoff_max_s)
        logger.warning("job %s: %s; retry %d in %.1f s", job_id, retry, retry.retries, delay)
        raise self.retry(exc=retry.cause, countdown=delay, max_retries=None) from retry
    except SoftTimeLimitExceeded:
        # Raised outside the run (before the lease or while releasing it): nothing to fence.
        logger.error("job %s: soft time limit outside the run", job_id)
        return Outcome.FAILED.value
    except TRANSIENT_ERRORS as exc:
        # The job store failed before the run started: the message is acknowledged, and the
        # reaper re-sends a job that stays queued (or requeues one left running).
        logger.warning("job %s: job store unreachable before the run (%s)", job_id, exc)
        return Outcome.DUPLICATE.value
