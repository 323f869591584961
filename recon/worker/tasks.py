"""The Celery task: a thin adapter from a queue message (job id, tenant) to `run_job`.

Like a web view, it only translates: it builds the job context from its app, runs the job, and
turns failures into job states. Engine errors are final (handled in `recon.worker.job_run`).
Transient infrastructure errors (Redis or storage unreachable, S3 errors) are retried with
exponential backoff and jitter up to `Settings.max_attempts`, then the job fails with the
reason. A job killed by the hard time limit is failed from the worker's main process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import socket
from typing import Any

import redis
from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import worker_process_init

from recon.infra.storage import StorageUnavailable
from recon.schemas import RECONSTRUCT_TASK_NAME
from recon.worker.celery_app import ReconCelery
from recon.worker.job_run import JobContext, Outcome, run_job, time_limit_message

logger = logging.getLogger(__name__)

RETRY_BACKOFF_BASE_S = 2.0
"""Backoff before the first infrastructure retry; doubles per retry up to the settings' cap."""

_JITTER = random.SystemRandom()


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


def backoff_s(retry: int, cap_s: float) -> float:
    """Jittered exponential delay before retry number `retry` (1-based), at most `cap_s`."""
    ceiling = min(cap_s, RETRY_BACKOFF_BASE_S * 2 ** (retry - 1))
    return _JITTER.uniform(ceiling / 2, ceiling)


@worker_process_init.connect(weak=False)
def preload_engine(**_: Any) -> None:
    """Import the engine (torch) in each pool process once, before its first job.

    The worker's main process never imports torch: CUDA must not be initialised before fork.
    """
    import recon.engine.pipeline  # noqa: F401


class ReconstructTask(Task):
    """Task base: gives the job context and fails a job that the hard time limit killed."""

    def job_context(self) -> JobContext:
        app = self.app
        if not isinstance(app, ReconCelery):
            raise TypeError("the task needs an app from recon.worker.celery_app.create_celery_app")
        hostname = self.request.hostname or socket.gethostname()
        return JobContext(
            settings=app.recon_settings,
            store=app.job_store,
            storage=app.storage,
            worker_id=f"{hostname}:{os.getpid()}",
        )

    def on_failure(
        self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Runs in the worker's main process after a hard time-limit kill."""
        if not isinstance(exc, TimeLimitExceeded) or "job_id" not in (kwargs or {}):
            return
        ctx = self.job_context()
        with contextlib.suppress(*TRANSIENT_ERRORS):
            ctx.store.mark_failed(
                kwargs["job_id"], "time_limit", time_limit_message(ctx.settings)
            )


@shared_task(bind=True, base=ReconstructTask, name=RECONSTRUCT_TASK_NAME)
def reconstruct_job(self: ReconstructTask, job_id: str, tenant: str) -> str:
    """Run reconstruction job `job_id` of `tenant`; return what this delivery did."""
    ctx = self.job_context()
    try:
        return run_job(ctx, job_id, tenant).value
    except TRANSIENT_ERRORS as exc:
        return retry_or_fail(self, ctx, job_id, exc)
    except SoftTimeLimitExceeded:
        with contextlib.suppress(*TRANSIENT_ERRORS):
            ctx.store.mark_failed(job_id, "time_limit", time_limit_message(ctx.settings))
        return Outcome.FAILED.value
    except Exception as exc:
        logger.exception("job %s: unexpected error", job_id)
        with contextlib.suppress(*TRANSIENT_ERRORS):
            ctx.store.mark_failed(
                job_id, "internal_error", f"unexpected {type(exc).__name__}: {exc}"
            )
        return Outcome.FAILED.value


def retry_or_fail(
    task: ReconstructTask, ctx: JobContext, job_id: str, exc: BaseException
) -> str:
    """Put the job back in the queue after a jittered backoff, or fail it when out of tries."""
    attempt = task.request.retries + 1
    reason = f"{type(exc).__name__}: {exc}"
    if attempt >= ctx.settings.max_attempts:
        logger.error("job %s: giving up after %d attempts (%s)", job_id, attempt, reason)
        with contextlib.suppress(*TRANSIENT_ERRORS):
            ctx.store.mark_failed(
                job_id, "infrastructure_error",
                f"storage or job store kept failing; gave up after {attempt} attempts: {reason}",
            )
        return Outcome.FAILED.value
    delay = backoff_s(attempt, ctx.settings.retry_backoff_max_s)
    logger.warning("job %s: %s; retry %d in %.1f s", job_id, reason, attempt, delay)
    with contextlib.suppress(*TRANSIENT_ERRORS):
        ctx.store.requeue(job_id)  # refused while leased; `run_job` released ours already
    raise task.retry(exc=exc, countdown=delay, max_retries=None)
