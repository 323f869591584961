"""Failures a worker turns into clean job states, with real worker processes and no API:
object storage down -> retried with backoff, then `infrastructure_error` with the reason;
a job over its soft time limit -> `time_limit`. Never a silent loss, never `running` forever."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from e2e_support import BUNNY, Stack, free_port, stack_env, wait_for

from recon.infra.job_record import JobRecord
from recon.infra.job_store import JobStore
from recon.infra.storage import build_storage, job_object_key
from recon.infra.task_queue import JobQueue
from recon.schemas import JobStatus

pytestmark = pytest.mark.e2e

FINAL_TIMEOUT_S = 90
UNUSED_KEYS = {"acme": "unused-key-0123456789"}


def queue_job(stack: Stack, params: dict, points: Path | None = None) -> tuple[JobStore, str]:
    """Create a queued job straight in the job store (uploading `points` if given), enqueue it."""
    settings = stack.settings()
    store = JobStore.from_settings(settings)
    job_id, now = uuid.uuid4().hex, time.time()
    key = job_object_key("acme", job_id, "input.ply")
    if points is not None:
        build_storage(settings).put_file(key, points)
    store.create(JobRecord(id=job_id, tenant="acme", status=JobStatus.QUEUED, params=params,
                           input_key=key, created_at=now, updated_at=now))
    JobQueue.from_settings(settings).enqueue(job_id, "acme")
    return store, job_id


def run_until_final(stack: Stack, store: JobStore, job_id: str) -> JobRecord:
    """Start one worker, wait for the job to end, stop the worker."""
    try:
        stack.start_worker()
        return wait_for(lambda: (r := store.get(job_id)) is not None and r.is_final and r,
                        FINAL_TIMEOUT_S, f"job {job_id} to end", logs=stack.logs)
    finally:
        stack.stop()


def test_storage_outage_is_retried_then_failed_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    dead_s3 = {
        "RECON_STORAGE_BACKEND": "s3",
        "RECON_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",  # nothing listens here
        "RECON_S3_ACCESS_KEY_ID": "nobody",
        "RECON_S3_SECRET_ACCESS_KEY": "nothing-at-all-here",
        "RECON_RETRY_BACKOFF_MAX_S": "1",
    }
    stack = Stack(stack_env(tmp_path / "data", free_port(), UNUSED_KEYS, dead_s3),
                  tmp_path / "logs", "http://127.0.0.1:0", {})
    store, job_id = queue_job(stack, {"preset": "fast"})
    record = run_until_final(stack, store, job_id)
    assert record.status == JobStatus.FAILED
    assert record.error_code == "infrastructure_error"
    message = record.error_message or ""
    assert "3 attempts" in message and "object storage" in message
    # Tenants see the kind of outage, never the endpoint (only the worker's log names it).
    endpoint = dead_s3["RECON_S3_ENDPOINT_URL"].removeprefix("http://")
    assert endpoint not in message and endpoint in stack.logs()
    assert record.attempts == stack.settings().max_attempts == 3 and record.retries == 2
    assert stack.logs().count("retry") >= 2


def test_job_over_its_soft_time_limit_fails_with_time_limit(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    limits = {
        "RECON_JOB_SOFT_TIME_LIMIT_S": "2",
        "RECON_JOB_HARD_TIME_LIMIT_S": "3",
        "RECON_BROKER_VISIBILITY_TIMEOUT_S": "4",
    }
    stack = Stack(stack_env(tmp_path / "data", free_port(), UNUSED_KEYS, limits),
                  tmp_path / "logs", "http://127.0.0.1:0", {})
    # 20,000 points with the paper preset cannot be prepared, trained and meshed in 2 s on CPU.
    store, job_id = queue_job(stack, {"preset": "paper"}, BUNNY / "dense" / "points.ply")
    record = run_until_final(stack, store, job_id)
    assert record.status == JobStatus.FAILED and record.error_code == "time_limit"
    assert "2 s time limit" in (record.error_message or "")
    assert record.attempts == 1
