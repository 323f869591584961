"""Turning a `JobRecord` into the public `JobPublic` view (timestamps, progress, links, webhook)."""

from datetime import UTC, datetime

from recon.infra.job_record import JobRecord
from recon.schemas import (
    JobError,
    JobLinks,
    JobProgress,
    JobPublic,
    JobStatus,
    ReconstructionParams,
)
from recon.schemas.jobs import CallbackPublic

API_PREFIX = "/v1"
"""The API version's path prefix; the unversioned paths are kept as aliases of the same routes."""
JOBS_PATH = "/reconstructions"


def job_path(job_id: str) -> str:
    """The job's versioned URL path, used for `Location`, `links` and webhook bodies."""
    return f"{API_PREFIX}{JOBS_PATH}/{job_id}"


def _time(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


def job_links(record: JobRecord) -> JobLinks:
    """Links to the job, its events, its cancel action, its input and (once succeeded) its mesh
    and preview."""
    base = job_path(record.id)
    succeeded = record.status is JobStatus.SUCCEEDED
    return JobLinks(
        self=base, mesh=f"{base}/mesh" if succeeded else None, events=f"{base}/events",
        cancel=f"{base}/cancel", preview=f"{base}/preview.png" if succeeded else None,
        input=f"{base}/input",
    )


def job_callback(record: JobRecord) -> CallbackPublic | None:
    """The job's webhook and how its delivery went; None without a `callback_url`."""
    if record.callback_url is None:
        return None
    return CallbackPublic.model_validate({
        "url": record.callback_url,
        "status": record.callback_status or "pending",  # pending until the job is final
        "delivery_id": record.callback_delivery_id,
        "attempts": record.callback_attempts,
        "last_error": record.callback_last_error,
        "delivered_at": _time(record.callback_delivered_at),
    })


def to_job_public(record: JobRecord) -> JobPublic:
    """The client's view of a job."""
    error = None
    if record.error_code:
        error = JobError(code=record.error_code, message=record.error_message or "")
    return JobPublic(
        id=record.id,
        status=record.status,
        params=ReconstructionParams.model_validate(record.params),
        progress=JobProgress.model_validate(record.progress),
        created_at=datetime.fromtimestamp(record.created_at, tz=UTC),
        started_at=_time(record.started_at),
        finished_at=_time(record.finished_at),
        metrics=record.metrics,
        warnings=list(record.warnings),
        error=error,
        formats=list(record.formats),
        links=job_links(record),
        callback=job_callback(record),
    )
