"""A queued job with (or without) a `callback_url`, as the API stores it, for the webhook tests."""

import time
import uuid

from recon.infra.job_record import JobRecord
from recon.infra.job_store import JobStore
from recon.schemas import JobStatus


def create_job(store: JobStore, callback_url: str | None) -> str:
    """Store a queued job of tenant `acme` whose params name `callback_url`; return its id."""
    job_id, now = uuid.uuid4().hex, time.time()
    params = {"preset": "fast", "callback_url": callback_url}
    store.create(JobRecord(id=job_id, tenant="acme", status=JobStatus.QUEUED, params=params,
                           input_key=f"tenants/acme/jobs/{job_id}/input.ply",
                           created_at=now, updated_at=now))
    return job_id
