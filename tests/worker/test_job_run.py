"""One delivery of a job, through the real job store, local storage and engine."""

import json
import threading
from collections.abc import Callable

import pytest
import trimesh

from recon.infra.job_store import JobStore
from recon.infra.storage import job_object_key
from recon.schemas import JobStatus
from recon.worker.celery_app import ReconCelery
from recon.worker.job_run import JobContext, Outcome, run_job
from tests.conftest import binary_ply, sphere_points, wait_until

from .conftest import make_job

LONG_TRAINING = {"preset": "fast", "max_iterations": 100_000, "resolution": 32}
"""Parameters whose training outlasts any test: it ends only when the run is stopped."""
TRAINING_START_TIMEOUT_S = 60.0
REQUEUE_TRIES = 1000


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


def when_training(store: JobStore, job_id: str, action: Callable[[], None]) -> threading.Thread:
    """Run `action` on a side thread once job `job_id` reports the engine's training stage."""

    def training() -> bool:
        record = store.get(job_id)
        return record is not None and record.progress.get("stage") == "train"

    def watch() -> None:
        try:
            wait_until(training, TRAINING_START_TIMEOUT_S, "training", interval_s=0.02)
            action()
        except BaseException:
            store.request_cancel(job_id)  # never leave the test training forever
            raise

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_cancel_flag_during_training_cancels(ctx: JobContext, worker_store: JobStore) -> None:
    job_id = upload(ctx, worker_store, binary_ply(sphere_points(400)), LONG_TRAINING)
    side = when_training(worker_store, job_id, lambda: worker_store.request_cancel(job_id))
    assert run_job(ctx, job_id, "acme") is Outcome.CANCELED
    side.join()
    assert worker_store.get(job_id).status == JobStatus.CANCELED  # type: ignore[union-attr]


def test_job_requeued_under_a_cut_off_worker_is_not_canceled(
    ctx: JobContext, worker_store: JobStore
) -> None:
    """The worker lost Redis past its lease; the reaper requeued the job and re-sent it. The
    worker, back online, must stop without writing: the job stays queued for the new message."""
    job_id = upload(ctx, worker_store, binary_ply(sphere_points(400)), LONG_TRAINING)

    def lease_expires_and_reaper_requeues() -> None:
        lease_key = f"{worker_store.prefix}:lease:{job_id}"
        for _ in range(REQUEUE_TRIES):  # the live monitor may take the lease back first
            worker_store.redis.delete(lease_key)
            if worker_store.requeue(job_id):
                return
        raise AssertionError("the reaper never got to requeue the job")

    side = when_training(worker_store, job_id, lease_expires_and_reaper_requeues)
    outcome = run_job(ctx, job_id, "acme")
    side.join()
    record = worker_store.get(job_id)
    assert record is not None and record.status == JobStatus.QUEUED
    assert not record.cancel_requested and worker_store.lease_owner(job_id) is None
    assert outcome is Outcome.SUPERSEDED
    assert worker_store.mark_running(job_id, "next-delivery") is not None
