"""Jobs for the client tests: a tiny one that finishes in seconds, a long one that holds the
worker until it is canceled, and a way to leave no job running."""

from __future__ import annotations

import time
from pathlib import Path

from recon.client import Client, ReconError
from recon.schemas import JobPublic, JobStatus

TINY_PARAMS = {"preset": "fast", "max_iterations": 60, "resolution": 32}
"""A sphere fit that a busy 2-core machine finishes in seconds."""
LONG_PARAMS = {"preset": "fast", "max_iterations": 100_000, "resolution": 32}
"""Trains until canceled (the fast preset stops training after 30 s at the latest)."""
RUN_TIMEOUT_S = 150.0
SETTLE_TIMEOUT_S = 30.0
FINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)


def wait_until_running(client: Client, job_id: str, timeout_s: float = RUN_TIMEOUT_S) -> JobPublic:
    """The job once the worker has started it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get(job_id)
        if job.status is not JobStatus.QUEUED:
            assert job.status is JobStatus.RUNNING, job
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} was not started within {timeout_s} s")


def start_long_job(client: Client, cloud: Path) -> JobPublic:
    """A job that keeps the worker busy until `settle` cancels it."""
    return wait_until_running(client, client.submit(cloud, LONG_PARAMS).id)


def settle(client: Client, *job_ids: str) -> None:
    """Cancel the jobs that have not ended and wait until they have, freeing worker and quota."""
    for job_id in job_ids:
        try:
            if client.get(job_id).status not in FINAL:
                client.cancel(job_id)
        except ReconError:
            pass  # it ended in between
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while client.get(job_id).status not in FINAL:
            assert time.monotonic() < deadline, f"job {job_id} did not end after its cancel"
            time.sleep(0.2)
