"""The reaper on a real Redis: stale running jobs are requeued (and re-sent) or failed; queued
jobs whose message never reached the broker are sent again; live leases, fresh heartbeats and a
held lock keep it away."""

import base64
import json
import threading
import time
import uuid
from typing import Any

import redis

from recon.infra.job_record import JobRecord
from recon.infra.job_store import JobStore
from recon.infra.settings import Settings
from recon.infra.storage import job_object_key, job_prefix
from recon.schemas import RECONSTRUCT_TASK_NAME, JobStatus, ReconstructTaskPayload
from recon.worker.celery_app import ReconCelery, create_celery_app
from recon.worker.reaper import LOCK_NAME, ReapReport, reap_job, reap_once

from .conftest import make_job

CONCURRENT_REAPERS = 4
SHORT_RESEND_AFTER_S = 1.5


def queued_messages(app: ReconCelery) -> int:
    client = redis.Redis.from_url(app.recon_settings.redis_url)
    return int(client.llen(app.recon_settings.celery_queue))


def sent_tasks(app: ReconCelery) -> list[dict[str, Any]]:
    """The kwargs of every reconstruction message waiting in the app's broker queue (Redis list)."""
    client = redis.Redis.from_url(app.recon_settings.redis_url)
    raw = client.lrange(app.recon_settings.celery_queue, 0, -1)
    client.close()
    found = []
    for message in map(json.loads, raw):
        assert message["headers"]["task"] == RECONSTRUCT_TASK_NAME
        _, kwargs, _ = json.loads(base64.b64decode(message["body"]))
        found.append(kwargs)
    return found


def unsent_job(store: JobStore, age_s: float) -> JobRecord:
    """A job accepted `age_s` ago whose message was never published (the API died first)."""
    job_id, created = uuid.uuid4().hex, time.time() - age_s
    record = JobRecord(
        id=job_id, tenant="acme", status=JobStatus.QUEUED,
        params={"preset": "fast", "max_iterations": 10, "resolution": 32},
        input_key=job_object_key("acme", job_id, "input.ply"),
        created_at=created, updated_at=created,
    )
    return store.create(record)


def start(store: JobStore, job_id: str, token: str, *, keep_lease: bool = False) -> None:
    """Start the job under `token`; without `keep_lease` its lease is gone, as a dead worker's."""
    assert store.acquire_lease(job_id, token, ttl_s=30)
    assert store.start_run(job_id, token, token.split("/")[0]) is not None
    if not keep_lease:
        store.release_lease(job_id, token)


def stale_running(store: JobStore, app: ReconCelery, lost_before: int = 0) -> str:
    """A running job whose worker vanished, after `lost_before` earlier lost runs."""
    record = make_job(store)
    for run in range(lost_before):
        start(store, record.id, f"gone-worker/{run}")
        assert store.requeue_lost(record.id)
    start(store, record.id, "gone-worker/last")
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
    job_id = stale_running(worker_store, worker_app, lost_before=1)
    report = reap_once(worker_app)
    assert report.failed == [job_id]
    record = worker_store.get(job_id)
    assert record is not None and record.status == JobStatus.FAILED
    assert record.error_code == "worker_lost" and "2 times" in (record.error_message or "")
    assert queued_messages(worker_app) == 0


def test_lease_taken_back_after_the_check_keeps_the_job_running(
    worker_app: ReconCelery, worker_store: JobStore
) -> None:
    """A worker back from an outage re-takes its expired lease just after the reaper looked:
    the requeue itself sees the lease and refuses, so the job is not run twice."""
    job_id = stale_running(worker_store, worker_app)
    report = ReapReport()
    real_lease_owner = worker_store.lease_owner

    def look_then_worker_returns(job: str) -> str | None:
        owner = real_lease_owner(job)
        assert worker_store.acquire_lease(job, "returning-worker", ttl_s=30)
        return owner

    worker_store.lease_owner = look_then_worker_returns  # type: ignore[method-assign]
    try:
        reap_job(worker_app, job_id, report)
    finally:
        del worker_store.lease_owner
    assert report.requeued == [] and queued_messages(worker_app) == 0
    assert worker_store.get(job_id).status == JobStatus.RUNNING  # type: ignore[union-attr]


def test_fresh_heartbeat_and_live_lease_are_left_alone(worker_app: ReconCelery,
                                                       worker_store: JobStore) -> None:
    leased = stale_running(worker_store, worker_app)
    assert worker_store.acquire_lease(leased, "slow-but-alive", ttl_s=30)
    fresh = make_job(worker_store)
    start(worker_store, fresh.id, "busy-worker/1")
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


def test_queued_job_whose_message_was_never_sent_is_sent(worker_app: ReconCelery,
                                                         worker_store: JobStore) -> None:
    window = worker_app.recon_settings.queued_resend_after_s
    lost = unsent_job(worker_store, age_s=2 * window)
    waiting = unsent_job(worker_store, age_s=window / 2)  # younger than the window: left alone
    report = reap_once(worker_app)
    assert report.resent == [lost.id] and report.requeued == [] and report.failed == []
    assert sent_tasks(worker_app) == [ReconstructTaskPayload(job_id=lost.id, tenant="acme")
                                      .model_dump()]
    assert worker_store.get(lost.id).status == JobStatus.QUEUED  # type: ignore[union-attr]
    assert reap_once(worker_app).resent == []  # at most once per window
    assert len(sent_tasks(worker_app)) == 1 and waiting.id not in str(sent_tasks(worker_app))


def test_resent_message_drives_the_real_task(worker_app: ReconCelery,
                                            worker_store: JobStore) -> None:
    """The message the reaper sends is one the worker's task runs (input missing: fails fast)."""
    record = unsent_job(worker_store, age_s=2 * worker_app.recon_settings.queued_resend_after_s)
    assert reap_once(worker_app).resent == [record.id]
    [kwargs] = sent_tasks(worker_app)
    worker_app.loader.import_default_modules()  # what `celery worker` does: registers the task
    outcome = worker_app.tasks[RECONSTRUCT_TASK_NAME].apply(kwargs=kwargs).get()
    assert outcome == "failed"
    finished = worker_store.get(record.id)
    assert finished is not None and finished.error_code == "input_missing"
    assert reap_once(worker_app).resent == []


def test_running_final_and_leased_jobs_are_never_resent(worker_app: ReconCelery,
                                                        worker_store: JobStore) -> None:
    age = 2 * worker_app.recon_settings.queued_resend_after_s
    jobs = [unsent_job(worker_store, age_s=age).id for _ in range(6)]
    running, succeeded, failed, canceled, deleted, starting = jobs
    start(worker_store, running, "alive-worker/1", keep_lease=True)
    start(worker_store, succeeded, "w/1")
    assert worker_store.succeed(succeeded, "w/1", metrics={}, warnings=[], formats=["glb"],
                                output_prefix="tenants/acme/jobs/x/runs/y/")
    start(worker_store, failed, "w/2")
    assert worker_store.fail(failed, "w/2", "diverged", "training diverged")
    assert worker_store.request_cancel(canceled) is JobStatus.CANCELED
    assert worker_store.mark_deleted(deleted) is JobStatus.CANCELED
    assert worker_store.acquire_lease(starting, "worker-taking-it-now", ttl_s=30)
    report = reap_once(worker_app)
    assert report.resent == [] and report.requeued == [] and sent_tasks(worker_app) == []


def test_many_reapers_send_a_lost_job_once(worker_settings: Settings, worker_app: ReconCelery,
                                           worker_store: JobStore) -> None:
    record = unsent_job(worker_store, age_s=2 * worker_settings.queued_resend_after_s)
    apps = [create_celery_app(worker_settings) for _ in range(CONCURRENT_REAPERS)]
    resent: list[str] = []
    start = threading.Barrier(len(apps))

    def run(app: ReconCelery) -> None:
        start.wait()
        resent.extend(reap_once(app).resent)

    threads = [threading.Thread(target=run, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert resent == [record.id] and len(sent_tasks(worker_app)) == 1


def test_a_resent_message_lost_again_is_sent_again_two_windows_later(
    worker_settings: Settings, worker_store: JobStore
) -> None:
    """Re-sends back off (1, 2, 4 ... windows), so a job merely waiting in a long queue gets
    few duplicates while a lost message is still sent again."""
    short = Settings(**{**worker_settings.model_dump(), "retry_backoff_max_s": 1,
                        "queued_resend_after_s": SHORT_RESEND_AFTER_S})
    app = create_celery_app(short)
    record = unsent_job(worker_store, age_s=2 * SHORT_RESEND_AFTER_S)
    assert reap_once(app).resent == [record.id]
    assert reap_once(app).resent == []
    time.sleep(SHORT_RESEND_AFTER_S + 0.1)
    assert reap_once(app).resent == []  # one window later: still backing off
    time.sleep(SHORT_RESEND_AFTER_S)
    assert reap_once(app).resent == [record.id]
    assert len(sent_tasks(app)) == 2


def test_cancel_asked_after_the_worker_died_is_done_at_once(worker_app: ReconCelery,
                                                           worker_store: JobStore) -> None:
    """Not requeued (which would wait for a worker and use a try): canceled by the reaper."""
    job_id = stale_running(worker_store, worker_app)
    assert worker_store.request_cancel(job_id) is JobStatus.RUNNING
    report = reap_once(worker_app)
    assert report.canceled == [job_id] and report.requeued == []
    record = worker_store.get(job_id)
    assert record is not None and record.status == JobStatus.CANCELED
    assert queued_messages(worker_app) == 0


def test_sweeper_finishes_deletions_objects_first(worker_app: ReconCelery,
                                                  worker_store: JobStore) -> None:
    record = make_job(worker_store)
    worker_app.storage.put_bytes(record.input_key, b"ply")
    start(worker_store, record.id, "w/1", keep_lease=True)
    assert worker_store.mark_deleted(record.id) is JobStatus.RUNNING
    assert reap_once(worker_app).deleted == []  # still running: its worker stops it first
    assert worker_store.cancel_run(record.id, "w/1")
    worker_store.release_lease(record.id, "w/1")
    assert reap_once(worker_app).deleted == [record.id]
    assert worker_store.get(record.id) is None and worker_store.deleting(10) == []
    assert worker_app.storage.list_keys(job_prefix("acme", record.id)) == []


def test_retention_deletes_old_final_jobs(worker_settings: Settings) -> None:
    settings = worker_settings.model_copy(update={"job_retention_s": 1})
    app = create_celery_app(settings)
    store = app.job_store
    old, live = make_job(store), make_job(store)
    app.storage.put_bytes(old.input_key, b"ply")
    assert store.request_cancel(old.id) is JobStatus.CANCELED
    time.sleep(1.2)
    report = reap_once(app)
    assert report.expired == [old.id] and report.deleted == [old.id]
    assert store.get(old.id) is None and app.storage.list_keys(job_prefix("acme", old.id)) == []
    current = store.get(live.id)
    assert current is not None and current.status == JobStatus.QUEUED
