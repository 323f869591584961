"""One delivery of a job, through the real job store, local storage and engine."""

import json

import pytest
import trimesh

from api_schemas import JobStatus
from service.job_store import JobStore
from service.storage import job_object_key
from tests.conftest import binary_ply, sphere_points
from worker.celery_app import ReconCelery
from worker.job_run import JobContext, Outcome, run_job

from .conftest import make_job


@pytest.fixture
def ctx(worker_app: ReconCelery) -> JobContext:
    return JobContext(settings=worker_app.recon_settings, store=worker_app.job_store,
                      storage=worker_app.storage, worker_id="test-worker:1")


def upload(ctx: JobContext, store: JobStore, data: bytes, params: dict | None = None) -> str:
    record = make_job(store, params=params)
    ctx.storage.put_bytes(record.input_key, data)
    return record.id


def test_tiny_sphere_succeeds_with_outputs_at_fixed_keys(ctx: JobContext,
                                                         worker_store: JobStore) -> None:
    params = {"preset": "fast", "max_iterations": 20, "resolution": 32, "formats": ["stl"]}
    job_id = upload(ctx, worker_store, binary_ply(sphere_points(400)), params)
    assert run_job(ctx, job_id, "acme") is Outcome.SUCCEEDED
    record = worker_store.get(job_id)
    assert record is not None and record.status == JobStatus.SUCCEEDED
    assert record.formats == ["glb", "stl"] and record.attempts == 1
    assert record.metrics is not None and record.metrics["run"]["iterations"] <= 20
    stored = json.loads(ctx.storage.get_bytes(job_object_key("acme", job_id, "metrics.json")))
    assert stored["mesh"] == record.metrics["mesh"]
    glb = ctx.storage.local_path(job_object_key("acme", job_id, "mesh.glb"))
    assert glb is not None
    assert len(trimesh.load(glb, force="mesh").faces) == record.metrics["mesh"]["faces"]
    assert worker_store.lease_owner(job_id) is None
    assert run_job(ctx, job_id, "acme") is Outcome.ALREADY_FINAL


def test_engine_error_fails_the_job_with_its_code(ctx: JobContext,
                                                  worker_store: JobStore) -> None:
    job_id = upload(ctx, worker_store, b"\xff\xd8\xff\xe0 this is a JPEG, not a PLY")
    assert run_job(ctx, job_id, "acme") is Outcome.FAILED
    record = worker_store.get(job_id)
    assert record is not None and record.status == JobStatus.FAILED
    assert record.error_code == "invalid_point_cloud" and record.error_message


def test_missing_input_fails_cleanly(ctx: JobContext, worker_store: JobStore) -> None:
    record = make_job(worker_store)
    assert run_job(ctx, record.id, "acme") is Outcome.FAILED
    assert worker_store.get(record.id).error_code == "input_missing"  # type: ignore[union-attr]


def test_copy_without_the_lease_exits(ctx: JobContext, worker_store: JobStore) -> None:
    record = make_job(worker_store)
    assert worker_store.acquire_lease(record.id, "first-delivery", ttl_s=30)
    assert run_job(ctx, record.id, "acme") is Outcome.DUPLICATE
    assert worker_store.get(record.id).status == JobStatus.QUEUED  # type: ignore[union-attr]
    assert worker_store.lease_owner(record.id) == "first-delivery"


def test_unknown_foreign_and_canceled_jobs_do_nothing(ctx: JobContext,
                                                      worker_store: JobStore) -> None:
    record = make_job(worker_store)
    assert run_job(ctx, "0" * 32, "acme") is Outcome.MISSING
    assert run_job(ctx, record.id, "globex") is Outcome.MISSING
    assert worker_store.request_cancel(record.id) == JobStatus.CANCELED
    assert run_job(ctx, record.id, "acme") is Outcome.ALREADY_FINAL


def test_job_out_of_attempts_fails_as_worker_lost(ctx: JobContext,
                                                  worker_store: JobStore) -> None:
    record = make_job(worker_store)
    for _ in range(ctx.settings.max_attempts):
        worker_store.mark_running(record.id, "crashed-worker")
    assert run_job(ctx, record.id, "acme") is Outcome.FAILED
    assert worker_store.get(record.id).error_code == "worker_lost"  # type: ignore[union-attr]
