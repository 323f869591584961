"""One delivery of a job, through the real job store, local storage and engine."""

import dataclasses
import json
import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Callable

import pytest
import redis
import trimesh
from celery.exceptions import TimeLimitExceeded

import recon.worker.tasks  # noqa: F401  (registers the task on the app)
from recon.infra.job_store import JobStore
from recon.infra.storage import job_prefix, run_prefix
from recon.schemas import RECONSTRUCT_TASK_NAME, JobStatus
from recon.worker.celery_app import ReconCelery
from recon.worker.job_run import (
    JobContext,
    JobOutputs,
    Outcome,
    Run,
    end_failed,
    publish,
    run_job,
)
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


def test_tiny_sphere_succeeds_with_outputs_under_its_run(ctx: JobContext,
                                                         worker_store: JobStore) -> None:
    params = {"preset": "fast", "max_iterations": 20, "resolution": 32, "formats": ["stl"]}
    job_id = upload(ctx, worker_store, binary_ply(sphere_points(400)), params)
    assert run_job(ctx, job_id, "acme") is Outcome.SUCCEEDED
    record = worker_store.get(job_id)
    assert record is not None and record.status == JobStatus.SUCCEEDED
    assert record.formats == ["glb", "stl"] and record.attempts == 1
    assert record.metrics is not None and record.metrics["run"]["iterations"] <= 20
    assert record.output_prefix is not None and "/runs/" in record.output_prefix
    stored = json.loads(ctx.storage.get_bytes(record.output_key("metrics.json")))
    assert stored["mesh"] == record.metrics["mesh"]
    assert ctx.storage.list_keys(record.output_prefix) == sorted(
        record.output_key(name)
        for name in ("mesh.glb", "mesh.stl", "metrics.json", "preview.png"))
    assert ctx.storage.get_bytes(record.output_key("preview.png")).startswith(b"\x89PNG")
    glb = ctx.storage.local_path(record.output_key("mesh.glb"))
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
    for crash in range(ctx.settings.max_attempts):  # started, then its worker vanished
        token = f"crashed-worker/{crash}"
        assert worker_store.acquire_lease(record.id, token, ttl_s=30)
        assert worker_store.start_run(record.id, token, "crashed-worker") is not None
        worker_store.release_lease(record.id, token)
        assert worker_store.requeue_lost(record.id)
    assert run_job(ctx, record.id, "acme") is Outcome.FAILED
    failed = worker_store.get(record.id)
    assert failed is not None and failed.error_code == "worker_lost"
    assert failed.lost_runs == ctx.settings.max_attempts and failed.retries == 0


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
            if worker_store.requeue_lost(job_id):
                return
        raise AssertionError("the reaper never got to requeue the job")

    side = when_training(worker_store, job_id, lease_expires_and_reaper_requeues)
    outcome = run_job(ctx, job_id, "acme")
    side.join()
    record = worker_store.get(job_id)
    assert record is not None and record.status == JobStatus.QUEUED
    assert not record.cancel_requested and worker_store.lease_owner(job_id) is None
    assert outcome is Outcome.SUPERSEDED
    assert worker_store.acquire_lease(job_id, "next-delivery", ttl_s=30)
    assert worker_store.start_run(job_id, "next-delivery", "w2") is not None


def started_run(ctx: JobContext, store: JobStore, token: str) -> Run:
    """A job started under `token`, its lease released as a dead worker's would expire."""
    record = make_job(store)
    assert store.acquire_lease(record.id, token, ttl_s=30)
    started = store.start_run(record.id, token, ctx.worker_id)
    assert started is not None
    return Run(started, token, run_prefix("acme", record.id, uuid.uuid4().hex))


def put_outputs(ctx: JobContext, run: Run) -> JobOutputs:
    ctx.storage.put_bytes(run.prefix + "mesh.glb", b"glTF-not-really")
    ctx.storage.put_bytes(run.prefix + "metrics.json", b"{}")
    return JobOutputs(metrics={}, warnings=[], formats=["glb"])


def test_stale_run_forced_to_publish_after_a_requeue_writes_nothing(
    ctx: JobContext, worker_store: JobStore
) -> None:
    """A run stalled past its lease; the reaper requeued the job and a second run started it.
    The first run then wakes up and publishes: refused by its token, its outputs removed."""
    stale = started_run(ctx, worker_store, "worker-a/1")
    worker_store.release_lease(stale.job_id, stale.token)
    assert worker_store.requeue_lost(stale.job_id)
    assert worker_store.acquire_lease(stale.job_id, "worker-b/2", ttl_s=30)
    assert worker_store.start_run(stale.job_id, "worker-b/2", "worker-b") is not None
    before = worker_store.get(stale.job_id)
    assert publish(ctx, stale, put_outputs(ctx, stale)) is Outcome.SUPERSEDED
    assert end_failed(ctx, stale, "internal_error", "stale") is Outcome.SUPERSEDED
    after = worker_store.get(stale.job_id)
    assert after == before and after is not None and after.status == JobStatus.RUNNING
    assert after.run_token == "worker-b/2"
    assert ctx.storage.list_keys(stale.prefix) == []


def test_cancel_asked_just_before_the_end_wins(ctx: JobContext, worker_store: JobStore) -> None:
    run = started_run(ctx, worker_store, "worker-a/3")
    outputs = put_outputs(ctx, run)
    assert worker_store.request_cancel(run.job_id) == JobStatus.RUNNING  # answered 202
    assert publish(ctx, run, outputs) is Outcome.CANCELED
    record = worker_store.get(run.job_id)
    assert record is not None and record.status == JobStatus.CANCELED
    assert record.output_prefix is None and ctx.storage.list_keys(run.prefix) == []


def test_failure_after_uploads_leaves_no_outputs(ctx: JobContext, worker_store: JobStore) -> None:
    run = started_run(ctx, worker_store, "worker-a/4")
    put_outputs(ctx, run)
    assert end_failed(ctx, run, "invalid_point_cloud", "bad") is Outcome.FAILED
    record = worker_store.get(run.job_id)
    assert record is not None and record.status == JobStatus.FAILED
    assert ctx.storage.list_keys(job_prefix("acme", run.job_id)) == []


def test_draining_worker_hands_its_job_back(ctx: JobContext, worker_store: JobStore) -> None:
    """SIGTERM flags the worker as draining: the run stops and the job is queued again, with a
    new message, without using up a try."""
    node_ctx = dataclasses.replace(ctx, node="recon-9@test-host")
    job_id = upload(ctx, worker_store, binary_ply(sphere_points(400)), LONG_TRAINING)
    side = when_training(worker_store, job_id,
                         lambda: worker_store.set_draining(node_ctx.node, ttl_s=30))
    assert run_job(node_ctx, job_id, "acme") is Outcome.HANDED_BACK
    side.join()
    record = worker_store.get(job_id)
    assert record is not None and record.status == JobStatus.QUEUED
    assert record.run_token is None and record.retries == 0 and record.lost_runs == 0
    queue = redis.Redis.from_url(ctx.settings.redis_url)
    assert queue.llen(ctx.settings.celery_queue) == 1


def test_hard_time_limit_fails_only_the_killed_run(worker_app: ReconCelery,
                                                   worker_store: JobStore) -> None:
    """`on_failure` runs in the worker's main process after the pool process was killed: it
    fails a job still running under that dead process, and leaves a live run alone."""
    task = worker_app.tasks[RECONSTRUCT_TASK_NAME]
    dead = subprocess.Popen(["true"])
    dead.wait()
    node = f"recon-1@{socket.gethostname()}"
    for worker_pid, expected in ((dead.pid, JobStatus.FAILED), (os.getpid(), JobStatus.RUNNING)):
        record = make_job(worker_store)
        token = f"{node}:{worker_pid}/run"
        assert worker_store.acquire_lease(record.id, token, ttl_s=30)
        assert worker_store.start_run(record.id, token, f"{node}:{worker_pid}") is not None
        task.on_failure(TimeLimitExceeded(5), "task-id", (), {"job_id": record.id,
                                                             "tenant": "acme"}, None)
        after = worker_store.get(record.id)
        assert after is not None and after.status == expected
        if expected is JobStatus.FAILED:
            assert after.error_code == "time_limit"
