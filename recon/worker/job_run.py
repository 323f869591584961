"""One delivery of a reconstruction job: take the lease, run the engine, upload, record the end.

The Celery task (`recon.worker.tasks`) is a thin adapter around `run_job`; this module knows nothing
about Celery except its soft time limit. Outcomes are final job states (succeeded, failed,
canceled) or a reason this delivery did nothing (the job is final, another worker holds its
lease, the job was requeued under it, the job is gone). A job is written `canceled` only when
its cancel flag was seen, never because this run merely lost the job. Infrastructure errors
(Redis, storage) propagate to the task, which retries them; engine errors are final and become
the job's error code.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from celery.exceptions import SoftTimeLimitExceeded

from recon.engine.errors import EngineError, ReconstructionCanceled
from recon.infra.storage import (
    METRICS_OBJECT_NAME,
    ObjectNotFound,
    job_object_key,
    job_prefix,
    mesh_object_name,
)
from recon.schemas import ReconstructionParams
from recon.worker.engine_params import engine_config_for
from recon.worker.job_monitor import JobMonitor, MonitorTiming, stage_progress

if TYPE_CHECKING:
    from recon.infra.job_record import JobRecord
    from recon.infra.job_store import JobStore
    from recon.infra.settings import Settings
    from recon.infra.storage import ObjectStorage

logger = logging.getLogger(__name__)

class Outcome(StrEnum):
    """What one delivery of a job did."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"
    ALREADY_FINAL = "already_final"
    DUPLICATE = "duplicate"
    """Another delivery holds the job's lease and is alive: this copy exits."""
    LEASE_LOST = "lease_lost"
    """This delivery lost its lease mid-run; the new owner records the result."""
    SUPERSEDED = "superseded"
    """The job left `running` under this delivery (the reaper requeued it while the worker was
    cut off); the message sent with the requeue runs it, so this copy writes nothing."""
    MISSING = "missing"


@dataclass(frozen=True)
class JobContext:
    """What a job run needs from its process: settings and the shared clients."""

    settings: Settings
    store: JobStore
    storage: ObjectStorage
    worker_id: str


@dataclass(frozen=True)
class JobOutputs:
    """What a finished reconstruction left in storage."""

    metrics: dict[str, Any]
    warnings: list[str]
    formats: list[str]


def monitor_timing(settings: Settings) -> MonitorTiming:
    """The job monitor's periods from the settings."""
    return MonitorTiming(
        heartbeat_interval_s=settings.heartbeat_interval_s, lease_ttl_s=settings.lease_ttl_s
    )


def run_job(ctx: JobContext, job_id: str, tenant: str) -> Outcome:
    """Run one delivery of job `job_id` of `tenant` to its end."""
    record = ctx.store.get(job_id)
    if record is None or record.tenant != tenant:
        logger.warning("job %s of tenant %s is unknown; dropping the message", job_id, tenant)
        return Outcome.MISSING
    if record.is_final:
        return Outcome.ALREADY_FINAL
    owner = f"{ctx.worker_id}/{uuid.uuid4().hex}"
    if not ctx.store.acquire_lease(job_id, owner, ctx.settings.lease_ttl_s):
        logger.info("job %s is held by %s; this copy exits", job_id, ctx.store.lease_owner(job_id))
        return Outcome.DUPLICATE
    try:
        return _run_leased(ctx, record, owner)
    finally:
        with contextlib.suppress(redis.RedisError):
            ctx.store.release_lease(job_id, owner)


def _run_leased(ctx: JobContext, record: JobRecord, owner: str) -> Outcome:
    store, job_id = ctx.store, record.id
    if record.attempts >= ctx.settings.max_attempts:
        store.mark_failed(job_id, "worker_lost", lost_message(record.attempts))
        return Outcome.FAILED
    running = store.mark_running(job_id, ctx.worker_id)
    if running is None:
        current = store.get(job_id)
        if current is None or current.is_final:
            return Outcome.ALREADY_FINAL
        store.mark_canceled(job_id, also_queued=True)  # refused above: the flag is set
        return Outcome.CANCELED
    logger.info("job %s: attempt %d on %s", job_id, running.attempts, ctx.worker_id)
    with (
        JobMonitor(store, job_id, owner, monitor_timing(ctx.settings)) as monitor,
        tempfile.TemporaryDirectory(prefix="recon-job-") as folder,
    ):
        try:
            outputs = reconstruct_and_upload(ctx, running, Path(folder), monitor)
        except ReconstructionCanceled:
            return stopped_outcome(store, job_id, monitor)
        except EngineError as exc:
            store.mark_failed(job_id, exc.code, exc.message)
            return Outcome.FAILED
        except ObjectNotFound as exc:
            store.mark_failed(job_id, "input_missing", f"the job's stored input is gone: {exc}")
            return Outcome.FAILED
        except SoftTimeLimitExceeded:
            store.mark_failed(job_id, "time_limit", time_limit_message(ctx.settings))
            return Outcome.FAILED
    if monitor.lease_lost.is_set():
        return Outcome.LEASE_LOST
    return record_success(ctx, record, outputs)


def record_success(ctx: JobContext, record: JobRecord, outputs: JobOutputs) -> Outcome:
    """Mark the job succeeded if it is still running here; say why not otherwise."""
    store, job_id = ctx.store, record.id
    if store.mark_succeeded(
        job_id, metrics=outputs.metrics, warnings=outputs.warnings, formats=outputs.formats
    ):
        return Outcome.SUCCEEDED
    current = store.get(job_id)
    if current is None:  # deleted while running: do not leave its files behind
        ctx.storage.delete_prefix(job_prefix(record.tenant, job_id))
        return Outcome.MISSING
    return Outcome.ALREADY_FINAL if current.is_final else Outcome.SUPERSEDED


def stopped_outcome(store: JobStore, job_id: str, monitor: JobMonitor) -> Outcome:
    """What a run the engine stopped early amounts to; only a real cancel flag is written.

    A stop caused by a lost lease or a requeue behind this run's back must not cancel: the job
    was accepted and another delivery will run it. The cancel is written only from `running`.
    """
    if monitor.lease_lost.is_set():
        return Outcome.LEASE_LOST
    if monitor.cancel_requested.is_set() or store.is_cancel_requested(job_id):
        store.mark_canceled(job_id)
        return Outcome.CANCELED
    return Outcome.SUPERSEDED


def reconstruct_and_upload(
    ctx: JobContext, record: JobRecord, folder: Path, monitor: JobMonitor
) -> JobOutputs:
    """Download the inputs into `folder`, run the engine, upload meshes and metrics."""
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
    config = engine_config_for(params, ctx.settings)
    result = reconstruct(
        cloud, config, ground_truth=ground_truth,
        on_progress=monitor.on_progress, should_cancel=monitor.should_cancel,
    )
    if monitor.should_cancel():
        raise ReconstructionCanceled("canceled after the mesh was extracted")
    monitor.set_progress(stage_progress("upload"))
    formats = [fmt.value for fmt in params.formats]
    for fmt in formats:
        key = job_object_key(record.tenant, record.id, mesh_object_name(fmt))
        ctx.storage.put_bytes(key, export_mesh(result.mesh, fmt, config.frame),
                              content_type=MEDIA_TYPES[fmt])
    metrics = finite_json(result.metrics)
    metrics_key = job_object_key(record.tenant, record.id, METRICS_OBJECT_NAME)
    body = json.dumps(metrics, indent=2, allow_nan=False).encode()
    ctx.storage.put_bytes(metrics_key, body, content_type="application/json")
    warnings = list(dict.fromkeys([*record.warnings, *cloud.warnings, *result.warnings]))
    return JobOutputs(metrics=metrics, warnings=warnings, formats=formats)


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


def lost_message(attempts: int) -> str:
    """The error message of a job whose workers kept disappearing."""
    return (
        f"the job was started {attempts} times and each time its worker stopped responding "
        "(killed, out of memory or shut down) before finishing; giving up"
    )


def time_limit_message(settings: Settings) -> str:
    """The error message of a job stopped by the soft time limit."""
    return (
        f"the job ran longer than the {settings.job_soft_time_limit_s} s time limit; "
        "try a faster preset, fewer iterations or a lower resolution"
    )
