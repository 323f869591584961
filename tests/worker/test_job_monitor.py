"""The running job's side thread against a real job store: progress reaches Redis, a cancel
request, a job taken away from this run and a draining worker reach the engine's
`should_cancel` quickly; Redis errors of any kind never stop the thread."""

import time

from recon.engine.pipeline import Progress
from recon.infra.job_store import JobStore
from recon.schemas import JobProgress
from recon.worker.job_monitor import STAGE_SPANS, JobMonitor, MonitorTiming, job_progress

from .conftest import make_job

TIMING = MonitorTiming(tick_s=0.05, progress_interval_s=0.1, heartbeat_interval_s=0.1,
                       lease_ttl_s=0.3)
NOTICE_S = 1.0
"""A cancel or a lost lease must reach `should_cancel` within this time here."""


def wait_true(check, timeout_s: float = NOTICE_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


NODE = "recon-1@test-host"


def running_job(store: JobStore, owner: str) -> str:
    record = make_job(store)
    assert store.acquire_lease(record.id, owner, TIMING.lease_ttl_s)
    assert store.start_run(record.id, owner, "test-worker") is not None
    return record.id


def monitor(store: JobStore, job_id: str, owner: str) -> JobMonitor:
    return JobMonitor(store, job_id, owner, NODE, TIMING)


def test_progress_view_covers_the_whole_job() -> None:
    start = job_progress(Progress("train", 0, 100, None, 0.0))
    half = job_progress(Progress("train", 50, 100, 0.25, 10.0))
    meshing = job_progress(Progress("mesh", 0, 1, None, 30.0))
    assert start.fraction < half.fraction < meshing.fraction < 1.0
    assert half.loss == 0.25 and half.eta_seconds == 10.0
    assert job_progress(Progress("train", 5, 10, float("nan"), 1.0)).loss is None


def test_time_capped_training_reports_progress_and_eta_by_the_clock() -> None:
    """100 of 20,000 steps done, but 30 s into a 40 s budget: 3/4 done, about 10 s to go."""
    capped = job_progress(Progress("train", 100, 20_000, 0.1, 30.0, fraction=0.75))
    by_steps = job_progress(Progress("train", 100, 20_000, 0.1, 30.0))
    assert capped.eta_seconds == 10.0
    assert by_steps.eta_seconds > 5000
    low, high = STAGE_SPANS["train"]
    assert capped.fraction == round(low + (high - low) * 0.75, 4)


def test_progress_and_heartbeat_reach_the_store(worker_store: JobStore) -> None:
    job_id = running_job(worker_store, "owner-1")
    with monitor(worker_store, job_id, "owner-1") as run:
        run.on_progress(Progress("train", 7, 100, 0.5, 3.5))
        assert wait_true(lambda: worker_store.get(job_id).progress.get("step") == 7)
        first_beat = worker_store.get(job_id).heartbeat_at
        assert wait_true(lambda: worker_store.get(job_id).heartbeat_at > first_beat)
        assert not run.should_cancel()
    progress = JobProgress.model_validate(worker_store.get(job_id).progress)
    assert progress.stage == "train" and progress.loss == 0.5


def test_cancel_request_reaches_should_cancel(worker_store: JobStore) -> None:
    job_id = running_job(worker_store, "owner-2")
    with monitor(worker_store, job_id, "owner-2") as run:
        assert worker_store.request_cancel(job_id) == "running"
        assert wait_true(run.should_cancel)
        assert not run.superseded.is_set()


def test_lease_held_by_a_duplicate_delivery_is_not_a_loss(worker_store: JobStore) -> None:
    """A duplicate message's worker may hold the expired lease for a moment; the run token,
    not the lease, says whose job it is, so the run goes on."""
    job_id = running_job(worker_store, "owner-3")
    worker_store.release_lease(job_id, "owner-3")
    assert worker_store.acquire_lease(job_id, "someone-else", ttl_s=30)
    with monitor(worker_store, job_id, "owner-3") as run:
        time.sleep(3 * TIMING.heartbeat_interval_s)
        assert not run.should_cancel()


def test_requeued_job_stops_the_run_without_a_cancel(worker_store: JobStore) -> None:
    """The reaper requeued the job while this worker was cut off: stop, but cancel nothing,
    and do not take the lease back (the re-sent message's worker needs it)."""
    job_id = running_job(worker_store, "owner-4")
    worker_store.release_lease(job_id, "owner-4")  # expired during the outage
    assert worker_store.requeue_lost(job_id)
    with monitor(worker_store, job_id, "owner-4") as run:
        run.set_progress(JobProgress(stage="train", step=1, total=10))
        assert wait_true(run.should_cancel)
        assert run.superseded.is_set() and not run.cancel_requested.is_set()
    assert not worker_store.is_cancel_requested(job_id)
    assert worker_store.lease_owner(job_id) is None
    assert worker_store.get(job_id).status == "queued"


def test_draining_worker_reaches_should_cancel(worker_store: JobStore) -> None:
    job_id = running_job(worker_store, "owner-6")
    with monitor(worker_store, job_id, "owner-6") as run:
        time.sleep(2 * TIMING.heartbeat_interval_s)
        assert not run.should_cancel()
        worker_store.set_draining(NODE, ttl_s=10)
        assert wait_true(run.should_cancel)
        assert run.draining.is_set() and not run.superseded.is_set()


def test_redis_error_does_not_stop_the_heartbeat(worker_store: JobStore) -> None:
    """A Redis error other than a lost connection (here WRONGTYPE; in production READONLY
    during a failover or OOM) is retried on the next tick instead of ending the thread."""
    job_id = running_job(worker_store, "owner-5")
    lease_key = f"{worker_store.prefix}:lease:{job_id}"
    worker_store.redis.delete(lease_key)
    worker_store.redis.rpush(lease_key, "not-a-lease")  # renewing it raises ResponseError
    with monitor(worker_store, job_id, "owner-5") as run:
        time.sleep(3 * TIMING.heartbeat_interval_s)
        worker_store.redis.set(lease_key, "owner-5", px=int(TIMING.lease_ttl_s * 1000))
        beat = worker_store.get(job_id).heartbeat_at
        assert wait_true(lambda: worker_store.get(job_id).heartbeat_at > beat)
        assert not run.should_cancel()
