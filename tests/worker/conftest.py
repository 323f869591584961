"""Fixtures for the worker tests: a Celery app on Redis DB 12 with a private key prefix and queue.

Nothing is mocked: the job store, the broker and local storage are the real ones; each test gets
its own key prefix and queue so tests never see each other's jobs.
"""

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from recon.infra.job_record import JobRecord
from recon.infra.job_store import JobStore
from recon.infra.settings import Settings
from recon.infra.storage import job_object_key
from recon.schemas import JobStatus
from recon.worker.celery_app import ReconCelery, create_celery_app

WORKER_TEST_REDIS_URL = os.environ.get("RECON_E2E_REDIS_URL", "redis://127.0.0.1:6379/12")


@pytest.fixture
def worker_settings(tmp_path: Path) -> Settings:
    """Fast heartbeats and reaping, local storage in tmp_path, a private prefix and queue."""
    tag = uuid.uuid4().hex[:8]
    return Settings(
        redis_url=WORKER_TEST_REDIS_URL,
        redis_key_prefix=f"wt{tag}",
        celery_queue=f"wt-{tag}",
        data_dir=tmp_path / "data",
        heartbeat_interval_s=0.1,
        heartbeat_timeout_s=0.5,
        lease_ttl_s=0.4,
        reaper_interval_s=0.2,
        max_attempts=2,
    )


@pytest.fixture
def worker_app(worker_settings: Settings) -> Iterator[ReconCelery]:
    """The worker's Celery app; its Redis keys are removed afterwards."""
    app = create_celery_app(worker_settings)
    yield app
    client = redis.Redis.from_url(WORKER_TEST_REDIS_URL)
    for pattern in (f"{worker_settings.redis_key_prefix}:*", f"{worker_settings.celery_queue}*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    client.close()


@pytest.fixture
def worker_store(worker_app: ReconCelery) -> JobStore:
    return worker_app.job_store


def make_job(store: JobStore, tenant: str = "acme", params: dict | None = None) -> JobRecord:
    """A queued job whose input key points at `input.ply` (not uploaded)."""
    job_id = uuid.uuid4().hex
    now = time.time()
    record = JobRecord(
        id=job_id, tenant=tenant, status=JobStatus.QUEUED,
        params=params or {"preset": "fast", "max_iterations": 10, "resolution": 32},
        input_key=job_object_key(tenant, job_id, "input.ply"),
        created_at=now, updated_at=now,
    )
    return store.create(record)
