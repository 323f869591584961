"""One delivery of a reconstruction job: take the lease, run the engine, publish, record the end.

The Celery task (`recon.worker.tasks`) is a thin adapter around `run_job`; this module knows
nothing about Celery except its soft time limit. A run is identified by its token (worker id
plus a fresh run id), which is both the value of its lease and the fencing token every one of
its writes is checked against (`recon.infra.job_states`): once the reaper requeued the job or
another run owns it, nothing this run writes lands, however late it wakes up.

Outputs go under the run's own prefix (`run_prefix`) and become visible only through the
`succeeded` transition, which names that prefix in the same atomic step; a run that fails, is
canceled or lost the job removes its prefix and serves nothing. Infrastructure errors before
the engine runs hand the job back for a retry (`RetryLater`); after it, uploads and the final
write are retried inside the run, so a short outage never costs the training.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from celery.exceptions import SoftTimeLimitExceeded

from recon.engine.errors import EngineError, ReconstructionCanceled
from recon.infra.storage import (
    METRICS_OBJECT_NAME,
    PREVIEW_OBJECT_NAME,
    ObjectNotFound,
    StorageFull,
    mesh_object_name,
    run_prefix,
)
from recon.schemas import JobStatus, ReconstructionParams
from recon.worker.engine_params import engine_config_for
from recon.worker.job_monitor import JobMonitor, MonitorTiming, stage_progress
from recon.worker.preview_image import PNG_MEDIA_TYPE, preview_png
from recon.worker.transient import TRANSIENT_ERRORS, describe_outage

if TYPE_CHECKING:
    from recon.infra.job_record import JobRecord
    from recon.infra.job_store import JobStore
    from recon.infra.settings import Settings
    from recon.infra.storage import ObjectStorage

logger = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_PAUSE_S = (0.5, 5.0)
"""Shortest and longest pause between in-run retries of an upload or of the final write."""


class Outcome(StrEnum):
    """What one delivery of a job did."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    HANDED_BACK = "handed_back"
    """The worker is shutting down: the job went back to the queue for another worker."""
    ALREADY_FINAL = "already_final"
    DUPLICATE = "duplicate"
    """Another delivery holds the job's lease or runs it: this copy exits."""
    SUPERSEDED = "superseded"
    """The job stopped being this run's (requeued by the reaper while this worker was stalled
    or cut off, or final): the run wrote nothing and removed its outputs."""
    MISSING = "missing"


class RetryLater(Exception):
    """The job went back to the queue after an infrastructure error; the task re-sends it."""

    def __init__(self, retries: int, cause: BaseException) -> None:
        super().__init__(describe_outage(cause))
        self.retries = retries
        self.cause = cause


@dataclass(frozen=True)
class JobContext:
    """What a job run needs from its process: settings, the shared clients and its identity."""

    settings: Settings
    store: JobStore
    storage: ObjectStorage
    worker_id: str
    """``node:pid`` of the process running the job."""
    node: str = ""
    """The worker's node name (its draining flag); empty outside a Celery worker."""


@dataclass(frozen=True)
class Run:
    """One run of one job: its record at start, its token and where its outputs go."""

    record: JobRecord
    token: str
    prefix: str

    @property
    def job_id(self) -> str:
        return self.record.id


@dataclass(frozen=True)
class JobOutputs:
    """What a finished reconstruction left in storage, under its run's prefix."""

    metrics: dict[str, Any]
    warnings: list[str]
    formats: list[str]


def monitor_timing(settings: Settings) -> MonitorTiming:
    """The job monitor's periods from the settings."""
    return MonitorTiming(
        heartbeat_interval_s=settings.heartbeat_interval_s, lease_ttl_s=settings.lease_ttl_s
    )


def run_job(ctx: JobContext, job_id: str, tenant: str) -> Outcome:
    """Run one delivery of job `job_id` of `tenant` to its end.

    Raises `RetryLater` when an infrastructure error handed the job back for a retry.
    """
    record = ctx.store.get(job_id)
    if record is None or record.tenant != tenant:
        logger.warning("job %s of tenant %s is unknown; dropping the message", job_id, tenant)
        return Outcome.MISSING
    if record.is_final:
        return Outcome.ALREADY_FINAL
    if record.status is JobStatus.RUNNING:
        logger.info("job %s already runs on %s; this copy exits", job_id, record.worker_id)
        return Outcome.DUPLICATE
    run_id = uuid.uuid4().hex
    token = f"{ctx.worker_id}/{run_id}"
    if not ctx.store.acquire_lease(job_id, token, ctx.settings.lease_ttl_s):
        logger.info("job %s is held by %s; this copy exits", job_id, ctx.store.lease_owner(job_id))
        return Outcome.DUPLICATE
    try:
        return _start_leased(ctx, job_id, token, run_prefix(tenant, job_id, run_id))
    finally:
        with contextlib.suppress(redis.RedisError):
            ctx.store.release_lease(job_id, token)


def _start_leased(ctx: JobContext, job_id: str, token: str, prefix: str) -> Outcome:
    store, limit = ctx.store, ctx.settings.max_attempts
    record = store.get(job_id)  # read again under the lease: the counters are current now
    if record is None:
        return Outcome.MISSING
    if record.status is not JobStatus.QUEUED:
        return Outcome.ALREADY_FINAL if record.is_final else Outcome.DUPLICATE
    if record.lost_runs >= limit:
        store.give_up_at_start(job_id, token, "worker_lost", lost_message(record.lost_runs))
        return Outcome.FAILED
    started = store.start_run(job_id, token, ctx.worker_id)
    if started is None:
        if store.is_cancel_requested(job_id) and store.refuse_start(job_id, token):
            return Outcome.CANCELED
        current = store.get(job_id)
        return Outcome.ALREADY_FINAL if current is None or current.is_final else Outcome.DUPLICATE
    logger.info("job %s: attempt %d on %s", job_id, started.attempts, ctx.worker_id)
    return _run(ctx, Run(started, token, prefix))


def _run(ctx: JobContext, run: Run) -> Outcome:
    store = ctx.store
    with (
        JobMonitor(store, run.job_id, run.token, ctx.node, monitor_timing(ctx.settings))
        as monitor,
        tempfile.TemporaryDirectory(prefix="recon-job-") as folder,
    ):
        try:
            outputs = reconstruct_and_upload(ctx, run, Path(folder), monitor)
            return publish(ctx, run, outputs)
        except ReconstructionCanceled:
            return stopped_outcome(ctx, run, monitor)
        except EngineError as exc:
            return end_failed(ctx, run, exc.code, exc.message)
        except ObjectNotFound:
            return end_failed(ctx, run, "input_missing", "the job's stored input is gone")
        except StorageFull:
            return end_failed(ctx, run, "storage_full", "object storage is out of space; the "
                              "results were not kept (ask the operator to free space)")
        except ResultsNotStored as exc:
            return end_failed(ctx, run, "storage_unavailable", str(exc))
        except SoftTimeLimitExceeded:
            return end_failed(ctx, run, "time_limit", time_limit_message(ctx.settings))
        except TRANSIENT_ERRORS as exc:
            return hand_back_for_retry(ctx, run, exc)
        except Exception as exc:  # a defect: fail the job now rather than crash-loop it
            logger.exception("job %s: unexpected error", run.job_id)
            return end_failed(ctx, run, "internal_error",
                              f"unexpected {type(exc).__name__} while reconstructing; "
                              "the operator's worker log has the details")


class ResultsNotStored(Exception):
    """Object storage kept refusing the results for the whole retry window."""


def end_failed(ctx: JobContext, run: Run, code: str, message: str) -> Outcome:
    """Fail the job (fenced by the run token) and drop whatever the run uploaded."""
    applied = ctx.store.fail(run.job_id, run.token, code, message)
    remove_outputs(ctx, run)
    return Outcome.FAILED if applied else Outcome.SUPERSEDED


def hand_back_for_retry(ctx: JobContext, run: Run, exc: BaseException) -> Outcome:
    """After an infrastructure error: back to the queue for a retry, or fail when out of tries."""
    retries = run.record.retries + 1
    logger.warning("job %s: %s (%s)", run.job_id, describe_outage(exc), exc)
    remove_outputs(ctx, run)
    if retries >= ctx.settings.max_attempts:
        message = (f"{describe_outage(exc)}; gave up after {retries} attempts. "
                   "Submit the job again later.")
        with contextlib.suppress(*TRANSIENT_ERRORS):
            if ctx.store.fail(run.job_id, run.token, "infrastructure_error", message):
                return Outcome.FAILED
        return Outcome.SUPERSEDED
    with contextlib.suppress(*TRANSIENT_ERRORS):
        if ctx.store.hand_back(run.job_id, run.token, retry=True):
            raise RetryLater(retries, exc) from exc
    # The job store is unreachable too: the job stays `running` under this run's token until
    # the reaper, once Redis answers again, finds its heartbeat stale and requeues it.
    return Outcome.SUPERSEDED


def publish(ctx: JobContext, run: Run, outputs: JobOutputs) -> Outcome:
    """Mark the job succeeded with this run's outputs, or say why not and remove them.

    The write is retried through a job-store outage (the outputs are safe under the run's
    prefix meanwhile); the run token keeps a stale run from publishing over another's.
    """
    store = ctx.store
    applied = retry_through_outage(
        lambda: store.succeed(
            run.job_id, run.token, metrics=outputs.metrics, warnings=outputs.warnings,
            formats=outputs.formats, output_prefix=run.prefix,
        ),
        ctx.settings.result_retry_s, (redis.ConnectionError, redis.TimeoutError),
        f"job {run.job_id}: recording success",
    )
    if applied:
        return Outcome.SUCCEEDED
    if applied.reason == "cancel_requested":  # asked (202) before the end: honour it
        canceled = store.cancel_run(run.job_id, run.token)
        remove_outputs(ctx, run)
        return Outcome.CANCELED if canceled else Outcome.SUPERSEDED
    remove_outputs(ctx, run)
    if applied.reason == "missing":
        return Outcome.MISSING
    return Outcome.SUPERSEDED if applied.reason == "fenced" else Outcome.ALREADY_FINAL


def stopped_outcome(ctx: JobContext, run: Run, monitor: JobMonitor) -> Outcome:
    """What a run the engine stopped early amounts to; each write is fenced by the run token.

    A stop caused by losing the job writes nothing: another delivery runs it. A cancel is
    written only when the flag was seen; a draining worker hands the job back at once.
    """
    store = ctx.store
    remove_outputs(ctx, run)
    if monitor.superseded.is_set():
        return Outcome.SUPERSEDED
    if monitor.cancel_requested.is_set() or store.is_cancel_requested(run.job_id):
        return Outcome.CANCELED if store.cancel_run(run.job_id, run.token) else Outcome.SUPERSEDED
    if monitor.draining.is_set() and store.hand_back(run.job_id, run.token, retry=False):
        from recon.infra.task_queue import JobQueue

        store.release_lease(run.job_id, run.token)  # free before the new message is taken
        JobQueue.from_settings(ctx.settings).enqueue(run.job_id, run.record.tenant)
        logger.info("job %s: handed back (worker shutting down)", run.job_id)
        return Outcome.HANDED_BACK
    return Outcome.SUPERSEDED


def remove_outputs(ctx: JobContext, run: Run) -> None:
    """Best effort: a leftover run prefix is removed with the job (retention, delete)."""
    try:
        ctx.storage.delete_prefix(run.prefix)
    except Exception as exc:  # storage down: nothing references the prefix, so it is inert
        logger.warning("job %s: run outputs not removed (%s)", run.job_id, describe_outage(exc))


def reconstruct_and_upload(
    ctx: JobContext, run: Run, folder: Path, monitor: JobMonitor
) -> JobOutputs:
    """Download the inputs into `folder`, run the engine, upload meshes, metrics and preview."""
    record, started = run.record, time.monotonic()
    monitor.set_progress(stage_progress("download"))
    from recon.engine import export_mesh, load_ground_truth, load_point_cloud, reconstruct
    from recon.engine.export import MEDIA_TYPES

    params = ReconstructionParams.model_validate(record.params)
    cloud = load_point_cloud(
        fetch(ctx.storage, record.input_key, folder),
        max_points=ctx.settings.max_points,
        seed=params.seed,
    )
    ground_truth = None
    if record.ground_truth_key:
        ground_truth = load_ground_truth(fetch(ctx.storage, record.ground_truth_key, folder))
    config = engine_config_for(params, ctx.settings, elapsed_s=time.monotonic() - started)
    result = reconstruct(
        cloud, config, ground_truth=ground_truth,
        on_progress=monitor.on_progress, should_cancel=monitor.should_cancel,
    )
    if monitor.should_cancel():
        raise ReconstructionCanceled("stopped after the mesh was extracted")
    monitor.set_progress(stage_progress("upload"))
    formats = [fmt.value for fmt in params.formats]
    metrics = finite_json(result.metrics)
    objects = {
        mesh_object_name(fmt): (export_mesh(result.mesh, fmt, config.frame), MEDIA_TYPES[fmt])
        for fmt in formats
    }
    objects[METRICS_OBJECT_NAME] = (
        json.dumps(metrics, indent=2, allow_nan=False).encode(), "application/json"
    )
    preview, preview_warnings = preview_png(result.mesh, config.frame, run.job_id)
    if preview is not None:
        objects[PREVIEW_OBJECT_NAME] = (preview, PNG_MEDIA_TYPE)
    for name, (body, media_type) in objects.items():
        upload(ctx, run.prefix + name, body, media_type)
    warnings = list(dict.fromkeys(
        [*record.warnings, *cloud.warnings, *result.warnings, *preview_warnings]))
    return JobOutputs(metrics=metrics, warnings=warnings, formats=formats)


def upload(ctx: JobContext, key: str, body: bytes, media_type: str) -> None:
    """Store one result object, retrying through a storage outage of up to `result_retry_s`."""
    try:
        retry_through_outage(
            lambda: ctx.storage.put_bytes(key, body, content_type=media_type),
            ctx.settings.result_retry_s, upload_errors(), f"upload of {key}",
        )
    except StorageFull:
        raise
    except upload_errors() as exc:
        raise ResultsNotStored(
            f"object storage did not accept the results for {ctx.settings.result_retry_s:.0f} s "
            f"({describe_outage(exc)}); nothing was kept. Submit the job again later."
        ) from exc


def upload_errors() -> tuple[type[BaseException], ...]:
    """What a storage write raises when the backend is unreachable (not when it is full)."""
    return tuple(e for e in TRANSIENT_ERRORS if not issubclass(e, redis.RedisError))


def retry_through_outage(
    call: Callable[[], T], window_s: float, errors: tuple[type[BaseException], ...], what: str
) -> T:
    """`call()`, retried with jittered, growing pauses on `errors` for up to `window_s`."""
    deadline = time.monotonic() + window_s
    pause = RETRY_PAUSE_S[0]
    while True:
        try:
            return call()
        except StorageFull:
            raise
        except errors as exc:
            if time.monotonic() + pause > deadline:
                raise
            logger.warning("%s failed (%s); retrying in %.1f s", what, describe_outage(exc), pause)
            time.sleep(random.uniform(pause / 2, pause))
            pause = min(pause * 2, RETRY_PAUSE_S[1])


def finite_json(value: Any) -> Any:
    """`value` with every NaN or infinity replaced by None (JSON has no such numbers)."""
    if isinstance(value, dict):
        return {str(k): finite_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def fetch(storage: ObjectStorage, key: str, folder: Path) -> Path:
    """Download object `key` into `folder` under its own file name (which keeps the suffix)."""
    path = folder / Path(key).name
    storage.download_to(key, path)
    return path


def lost_message(lost_runs: int) -> str:
    """The error message of a job whose workers kept disappearing."""
    return (
        f"the job was started {lost_runs} times and each time its worker stopped responding "
        "(killed, out of memory or shut down) before finishing; giving up"
    )


def time_limit_message(settings: Settings) -> str:
    """The error message of a job stopped by the soft time limit."""
    return (
        f"the job ran longer than the {settings.job_soft_time_limit_s} s time limit; "
        "try a faster preset, fewer iterations or a lower resolution"
    )
