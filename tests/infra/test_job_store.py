"""JobStore on the real Redis: records, listing, idempotency, quota, transitions, leases."""

import threading
import time
import uuid

import pytest
import redis

from recon.infra.job_record import JobRecord
from recon.infra.job_store import (
    MAX_RESEND_DOUBLINGS,
    DuplicateIdempotencyKey,
    InvalidCursor,
    JobStore,
    QuotaExceeded,
)
from recon.infra.settings import Settings
from recon.schemas import JobProgress, JobStatus


@pytest.fixture
def store(settings: Settings) -> JobStore:
    return JobStore.from_settings(settings)


def new_record(tenant: str = "acme", created_at: float | None = None) -> JobRecord:
    now = time.time() if created_at is None else created_at
    job_id = uuid.uuid4().hex
    return JobRecord(
        id=job_id,
        tenant=tenant,
        status=JobStatus.QUEUED,
        params={"method": "nap", "preset": "fast"},
        input_key=f"tenants/{tenant}/jobs/{job_id}/input.ply",
        created_at=now,
        updated_at=now,
    )


def test_create_and_get_round_trip(store: JobStore, settings: Settings) -> None:
    record = store.create(new_record())
    again = JobStore.from_settings(settings).get(record.id)  # a fresh process sees it
    assert again == record
    assert store.get(uuid.uuid4().hex) is None
    assert store.get_for_tenant(record.id, "globex") is None
    assert store.active_count("acme") == 1


def test_listing_newest_first_with_cursor_and_ties(store: JobStore) -> None:
    base = time.time()
    created = [store.create(new_record(created_at=base + i)) for i in range(5)]
    ties = [store.create(new_record(created_at=base + 10)) for _ in range(3)]
    store.create(new_record(tenant="globex", created_at=base + 20))
    seen: list[str] = []
    cursor = None
    while True:
        page = store.list_for_tenant("acme", limit=2, cursor=cursor)
        seen += [r.id for r in page.items]
        assert all(r.tenant == "acme" for r in page.items)
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    expected_ties = sorted((r.id for r in ties), reverse=True)
    assert seen == expected_ties + [r.id for r in reversed(created)]
    with pytest.raises(InvalidCursor):
        store.list_for_tenant("acme", limit=2, cursor="not-a-cursor")


def test_idempotency_key_maps_to_one_job_per_tenant(store: JobStore) -> None:
    first = store.create(new_record(), idempotency_key="order-17")
    with pytest.raises(DuplicateIdempotencyKey) as duplicate:
        store.create(new_record(), idempotency_key="order-17")
    assert duplicate.value.job_id == first.id
    other = store.create(new_record(tenant="globex"), idempotency_key="order-17")
    found = store.find_idempotent("acme", "order-17")
    assert found is not None and found.id == first.id
    found_other = store.find_idempotent("globex", "order-17")
    assert found_other is not None and found_other.id == other.id
    store.delete(first.id)
    assert store.find_idempotent("acme", "order-17") is None


def test_quota_is_atomic_under_concurrency(store: JobStore) -> None:
    outcomes: list[str] = []

    def submit() -> None:
        try:
            store.create(new_record(), max_active=3)
            outcomes.append("created")
        except QuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("created") == 3
    assert store.active_count("acme") == 3


def test_lifecycle_running_progress_succeeded(store: JobStore) -> None:
    record = store.create(new_record())
    running = store.mark_running(record.id, "worker-1")
    assert running is not None and running.status is JobStatus.RUNNING
    assert running.attempts == 1 and running.worker_id == "worker-1"
    progress = JobProgress(stage="train", step=50, total=100, fraction=0.5, loss=0.1)
    assert store.update_progress(record.id, progress)
    current = store.get(record.id)
    assert current is not None and current.progress["step"] == 50
    assert store.mark_succeeded(
        record.id, metrics={"mesh": {"watertight": True}}, warnings=["w"], formats=["glb", "ply"]
    )
    done = store.get(record.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED
    assert done.formats == ["glb", "ply"] and done.finished_at is not None
    assert store.active_count("acme") == 0
    assert not store.update_progress(record.id, progress)
    assert not store.heartbeat(record.id)


@pytest.mark.parametrize("final", ["succeeded", "failed", "canceled"])
def test_final_jobs_never_run_again(store: JobStore, final: str) -> None:
    record = store.create(new_record())
    store.mark_running(record.id, "w")
    if final == "succeeded":
        assert store.mark_succeeded(record.id, metrics={}, warnings=[], formats=["glb"])
    elif final == "failed":
        assert store.mark_failed(record.id, "diverged", "training diverged")
    else:
        assert store.mark_canceled(record.id)
    assert store.mark_running(record.id, "w2") is None
    assert not store.requeue(record.id)
    assert not store.mark_failed(record.id, "x", "y")
    assert not store.mark_canceled(record.id)
    assert store.request_cancel(record.id) is None
    current = store.get(record.id)
    assert current is not None and current.status.value == final


def test_cancel_queued_is_immediate_running_is_cooperative(store: JobStore) -> None:
    queued = store.create(new_record())
    assert store.request_cancel(queued.id) is JobStatus.CANCELED
    assert store.mark_running(queued.id, "w") is None  # a late delivery does not start it
    running = store.create(new_record())
    store.mark_running(running.id, "w")
    assert not store.is_cancel_requested(running.id)
    assert store.request_cancel(running.id) is JobStatus.RUNNING
    assert store.is_cancel_requested(running.id)
    assert store.mark_canceled(running.id)
    assert store.active_count("acme") == 0
    assert store.is_cancel_requested(uuid.uuid4().hex)  # vanished job: stop working


def test_failed_job_keeps_its_reason(store: JobStore) -> None:
    record = store.create(new_record())
    assert store.mark_failed(record.id, "invalid_point_cloud", "NaN coordinates")
    failed = store.get(record.id)
    assert failed is not None
    assert (failed.error_code, failed.error_message) == ("invalid_point_cloud", "NaN coordinates")


def test_stale_running_and_requeue(store: JobStore) -> None:
    record = store.create(new_record())
    store.mark_running(record.id, "w")
    assert store.stale_running(heartbeat_timeout_s=60) == []
    time.sleep(0.05)
    assert store.stale_running(heartbeat_timeout_s=0.01) == [record.id]
    assert store.requeue(record.id)
    requeued = store.get(record.id)
    assert requeued is not None and requeued.status is JobStatus.QUEUED
    assert requeued.worker_id is None and store.stale_running(0) == []
    again = store.mark_running(record.id, "w2")
    assert again is not None and again.attempts == 2


def test_requeue_refuses_while_a_lease_is_held(store: JobStore) -> None:
    """The reaper's lease check and its requeue are one step: a worker that takes the lease
    back in between keeps its job."""
    record = store.create(new_record())
    store.mark_running(record.id, "slow-worker")
    assert store.acquire_lease(record.id, "slow-worker", ttl_s=30)
    assert not store.requeue(record.id)
    assert store.get(record.id).status is JobStatus.RUNNING  # type: ignore[union-attr]
    assert store.release_lease(record.id, "slow-worker")
    assert store.requeue(record.id)


def test_worker_cancel_needs_a_running_job(store: JobStore) -> None:
    """A stopped run cancels only a job still running: a requeued one is left to its message."""
    record = store.create(new_record())
    assert not store.mark_canceled(record.id)
    assert store.get(record.id).status is JobStatus.QUEUED  # type: ignore[union-attr]
    assert store.mark_canceled(record.id, also_queued=True)
    assert store.get(record.id).status is JobStatus.CANCELED  # type: ignore[union-attr]


def test_redelivery_of_a_running_job_needs_no_requeue(store: JobStore) -> None:
    record = store.create(new_record())
    store.mark_running(record.id, "dead-worker")
    taken = store.mark_running(record.id, "new-worker")
    assert taken is not None and taken.worker_id == "new-worker" and taken.attempts == 2


def test_lease_is_exclusive_and_owner_checked(store: JobStore) -> None:
    job_id = uuid.uuid4().hex
    assert store.acquire_lease(job_id, "a", ttl_s=5)
    assert not store.acquire_lease(job_id, "b", ttl_s=5)
    assert not store.renew_lease(job_id, "b", ttl_s=5)
    assert not store.release_lease(job_id, "b")
    assert store.lease_owner(job_id) == "a"
    assert store.renew_lease(job_id, "a", ttl_s=5)
    assert store.release_lease(job_id, "a")
    assert store.acquire_lease(job_id, "b", ttl_s=0.2)
    time.sleep(0.3)
    assert store.lease_owner(job_id) is None
    assert store.acquire_lease(job_id, "c", ttl_s=5)


def test_delete_removes_every_trace(store: JobStore, redis_client: redis.Redis) -> None:
    record = store.create(new_record(), idempotency_key="k")
    store.mark_running(record.id, "w")
    store.acquire_lease(record.id, "w", ttl_s=30)
    assert store.delete(record.id)
    assert not store.delete(record.id)
    leftovers = [k for k in redis_client.scan_iter("*") if record.id in k]
    members = redis_client.zrange(f"{store.prefix}:tenant:acme:jobs", 0, -1)
    assert leftovers == [] and record.id not in members
    assert store.active_count("acme") == 0 and store.stale_running(0) == []


def test_stale_queued_jobs_are_claimed_once_per_window(store: JobStore) -> None:
    lost = store.create(new_record(created_at=time.time() - 600))
    young = store.create(new_record())
    assert store.claim_stale_queued(unsent_for_s=300, limit=10) == [lost.id]
    assert store.claim_stale_queued(unsent_for_s=300, limit=10) == []  # restamped by the claim
    assert store.claim_stale_queued(unsent_for_s=0, limit=10) == [young.id]  # lost: backed off
    assert len(store.claim_stale_queued(unsent_for_s=0, limit=1)) == 1


def next_resend_in(store: JobStore, job_id: str, window: float) -> float:
    """Seconds until job `job_id` is due for its next re-send."""
    score = store.redis.zscore(f"{store.prefix}:queued", job_id)
    return float(score) + window - time.time()


def make_due(store: JobStore, job_id: str) -> None:
    """Skip the wait: the job's re-send is due now (its claim count stays)."""
    store.redis.zadd(f"{store.prefix}:queued", {job_id: 0})


def test_claims_of_a_waiting_job_back_off_geometrically(store: JobStore) -> None:
    """A job waiting behind long ones is re-sent after 2, 4, 8 ... windows, not every one, up
    to `MAX_RESEND_DOUBLINGS`."""
    window = 100.0
    record = store.create(new_record(created_at=time.time() - 2 * window))
    for claims in range(1, MAX_RESEND_DOUBLINGS + 3):
        assert store.claim_stale_queued(unsent_for_s=window, limit=10) == [record.id]
        assert store.claim_stale_queued(unsent_for_s=window, limit=10) == []
        expected = window * 2 ** min(claims, MAX_RESEND_DOUBLINGS)
        assert expected - 1 < next_resend_in(store, record.id, window) <= expected
        make_due(store, record.id)


def test_requeue_restarts_the_resend_backoff(store: JobStore) -> None:
    window = 100.0
    record = store.create(new_record(created_at=time.time() - 2 * window))
    for _ in range(3):
        assert store.claim_stale_queued(unsent_for_s=window, limit=10) == [record.id]
        make_due(store, record.id)
    store.mark_running(record.id, "w")
    assert store.requeue(record.id)  # sends a fresh message
    make_due(store, record.id)
    assert store.claim_stale_queued(unsent_for_s=window, limit=10) == [record.id]
    assert next_resend_in(store, record.id, window) <= 2 * window  # not 16 windows


def test_queued_index_follows_the_status(store: JobStore, redis_client: redis.Redis) -> None:
    index = f"{store.prefix}:queued"
    record = store.create(new_record())
    assert redis_client.zscore(index, record.id) == record.created_at
    store.mark_running(record.id, "w")
    assert redis_client.zscore(index, record.id) is None
    assert store.requeue(record.id)
    assert store.claim_stale_queued(0, limit=10) == [record.id]
    store.mark_running(record.id, "w2")
    assert store.mark_failed(record.id, "diverged", "training diverged")
    canceled = store.create(new_record())
    assert store.request_cancel(canceled.id) is JobStatus.CANCELED
    deleted = store.create(new_record())
    assert store.delete(deleted.id)
    assert redis_client.zcard(index) == 0  # removed by the transitions, not by a claim
    assert store.claim_stale_queued(0, limit=10) == []


def test_concurrent_claims_get_each_job_once(store: JobStore, settings: Settings) -> None:
    jobs = {store.create(new_record(created_at=time.time() - 600)).id for _ in range(20)}
    claimers = [JobStore.from_settings(settings) for _ in range(4)]
    claimed: list[str] = []
    start = threading.Barrier(len(claimers))

    def claim(claimer: JobStore) -> None:
        start.wait()
        for _ in range(5):
            claimed.extend(claimer.claim_stale_queued(unsent_for_s=300, limit=3))

    threads = [threading.Thread(target=claim, args=(c,)) for c in claimers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(jobs)
