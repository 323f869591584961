"""The reaper on a real Redis: stale running jobs are requeued (and re-sent) or failed; live
leases, fresh heartbeats and a held lock keep it away."""

import time

import redis

from api_schemas import JobStatus
from service.job_store import JobStore
from worker.celery_app import ReconCelery
from worker.reaper import LOCK_NAME, reap_once

from .conftest import make_job


def queued_messages(app: ReconCelery) -> int:
    client = redis.Redis.from_url(app.recon_settings.redis_url)
    return int(client.llen(app.recon_settings.celery_queue))


def stale_running(store: JobStore, app: ReconCelery, attempts: int = 1) -> str:
    """A job marked running `attempts` times whose worker then vanished."""
    record = make_job(store)
    for _ in range(attempts):
        assert store.mark_running(record.id, "gone-worker") is not None
    time.sleep(app.recon_settings.heartbeat_timeout_s + 0.1)
    return record.id


def test_stale_job_is_requeued_and_sent_again(worker_app: ReconCelery,
                                              worker_store: JobStore) -> None:
    job_id = stale_running(worker_store, worker_app)
    report = reap_once(worker_app)
    assert report.requeued == [job_id] and report.failed == []
    record = worker_store.get(job_id)
    assert record is not None and record.status == JobStatus.QUEUED
    assert queued_messages(worker_app) == 1
    assert reap_once(worker_app).requeued == []  # queued now: nothing more to do


def test_job_out_of_attempts_fails_with_worker_lost(worker_app: ReconCelery,
                                                    worker_store: JobStore) -> None:
    job_id = stale_running(worker_store, worker_app, attempts=2)
    report = reap_once(worker_app)
    assert report.failed == [job_id]
    record = worker_store.get(job_id)
    assert record is not None and record.status == JobStatus.FAILED
    assert record.error_code == "worker_lost" and "2 times" in (record.error_message or "")
    assert queued_messages(worker_app) == 0


def test_fresh_heartbeat_and_live_lease_are_left_alone(worker_app: ReconCelery,
                                                       worker_store: JobStore) -> None:
    leased = stale_running(worker_store, worker_app)
    assert worker_store.acquire_lease(leased, "slow-but-alive", ttl_s=30)
    fresh = make_job(worker_store)
    worker_store.mark_running(fresh.id, "busy-worker")
    report = reap_once(worker_app)
    assert report.requeued == [] and report.failed == []
    assert worker_store.get(fresh.id).status == JobStatus.RUNNING  # type: ignore[union-attr]


def test_only_one_pass_at_a_time(worker_app: ReconCelery, worker_store: JobStore) -> None:
    job_id = stale_running(worker_store, worker_app)
    lock = worker_store.redis.lock(f"{worker_store.prefix}:{LOCK_NAME}", timeout=10)
    assert lock.acquire(blocking=False)
    try:
        assert reap_once(worker_app).skipped_lock_held
        assert worker_store.get(job_id).status == JobStatus.RUNNING  # type: ignore[union-attr]
    finally:
        lock.release()
    assert reap_once(worker_app).requeued == [job_id]
