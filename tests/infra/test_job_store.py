"""JobStore on the real Redis: records, listing, idempotency, quota, transitions, leases.

Every status change goes through the one table of `recon.infra.job_states.TRANSITIONS`; the
tests below walk that table (each transition applied from its sources only, each guard
enforced) and then the stories that matter: a stale run fenced out after a requeue, a lease
that a requeued job's next delivery can take, cancel and delete requests, versions, counters.
"""

import dataclasses
import threading
import time
import uuid

import pytest
import redis

from recon.infra.job_record import JobRecord
from recon.infra.job_states import FINAL, TRANSITIONS
from recon.infra.job_store import (
    MAX_RESEND_DOUBLINGS,
    DuplicateIdempotencyKey,
    InvalidCursor,
    JobStore,
    QuotaExceeded,
)
from recon.infra.settings import Settings
from recon.schemas import JobProgress, JobStatus

STATUSES = [status.value for status in JobStatus]


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


def new_token(worker: str = "worker-1") -> str:
    """A run token the way the worker makes one: ``worker/run id``."""
    return f"{worker}/{uuid.uuid4().hex}"


def begin(store: JobStore, job_id: str, token: str | None = None, ttl_s: float = 30) -> str:
    """Take the lease and start the run, as a worker does; return the run token."""
    token = token or new_token()
    assert store.acquire_lease(job_id, token, ttl_s)
    assert store.start_run(job_id, token, token.split("/")[0]) is not None
    return token


def lose_worker(store: JobStore, job_id: str, token: str) -> None:
    """The run's worker is gone: its lease is no longer held."""
    store.release_lease(job_id, token)
    assert store.lease_owner(job_id) is None


def succeed(store: JobStore, job_id: str, token: str):  # type: ignore[no-untyped-def]
    prefix = f"tenants/acme/jobs/{job_id}/runs/{token.split('/')[1]}/"
    return store.succeed(
        job_id, token, metrics={"mesh": {"watertight": True}}, warnings=["w"],
        formats=["glb"], output_prefix=prefix,
    )


def status_of(store: JobStore, job_id: str) -> str:
    record = store.get(job_id)
    assert record is not None
    return record.status.value


def job_in(store: JobStore, status: str) -> str:
    """A new job brought to `status` through the store's own transitions; its id."""
    record = store.create(new_record())
    if status == "queued":
        return record.id
    if status == "canceled":
        assert store.request_cancel(record.id) is JobStatus.CANCELED
        return record.id
    token = begin(store, record.id)
    if status == "succeeded":
        assert succeed(store, record.id, token)
    elif status == "failed":
        assert store.fail(record.id, token, "diverged", "training diverged")
    assert status_of(store, record.id) == status
    return record.id


def proof(store: JobStore, job_id: str, guard: str) -> str:
    """The token that satisfies `guard` on this job as it stands (the right proof)."""
    record = store.get(job_id)
    assert record is not None
    owner = store.lease_owner(job_id)
    if guard == "run":
        return record.run_token or new_token()
    if guard == "lease":
        if owner is None:
            owner = new_token()
            assert store.acquire_lease(job_id, owner, ttl_s=30)
        return owner
    if owner is not None:  # "unleased" needs nobody on the lease; "client" does not care
        store.release_lease(job_id, owner)
    return ""


# --- records, listing, idempotency, quota ---------------------------------------------------


def test_create_and_get_round_trip(store: JobStore, settings: Settings) -> None:
    record = store.create(new_record())
    again = JobStore.from_settings(settings).get(record.id)  # a fresh process sees it
    assert again is not None and again.version == 1
    assert dataclasses.replace(again, version=record.version) == record
    assert store.get(uuid.uuid4().hex) is None
    assert store.get_for_tenant(record.id, "globex") is None
    assert store.active_count("acme") == 1


def test_create_returns_the_record_as_stored(store: JobStore) -> None:
    record = store.create(new_record())
    assert record == store.get(record.id)


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
    store.mark_deleted(first.id)  # a deleted job frees its key at once, before the sweep
    assert store.find_idempotent("acme", "order-17") is None
    again = store.create(new_record(), idempotency_key="order-17")
    assert again.id != first.id


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


# --- the transition table -------------------------------------------------------------------

REFUSED_FROM = [
    (name, status)
    for name, transition in TRANSITIONS.items()
    for status in STATUSES
    if status not in transition.sources
]
APPLIED_FROM = [
    (name, source) for name, transition in TRANSITIONS.items() for source in transition.sources
]


@pytest.mark.parametrize(
    ("name", "status"), REFUSED_FROM, ids=[f"{n}-from-{s}" for n, s in REFUSED_FROM]
)
def test_every_transition_is_refused_outside_its_sources(
    store: JobStore, name: str, status: str
) -> None:
    """Even with the right proof in hand, a transition never leaves a status it does not
    list as a source; the refusal names the status and changes nothing."""
    job_id = job_in(store, status)
    token = proof(store, job_id, TRANSITIONS[name].guard)
    before = store.get(job_id)
    applied = store.transition(job_id, name, token=token, set_fields={"error_code": "x"})
    assert not applied and applied.reason == status
    assert store.get(job_id) == before


@pytest.mark.parametrize(
    ("name", "source"), APPLIED_FROM, ids=[f"{n}-from-{s}" for n, s in APPLIED_FROM]
)
def test_every_transition_applies_from_its_sources_with_its_proof(
    store: JobStore, name: str, source: str
) -> None:
    transition = TRANSITIONS[name]
    job_id = job_in(store, source)
    token = proof(store, job_id, transition.guard)
    version = store.version(job_id)
    assert version is not None
    applied = store.transition(job_id, name, token=token)
    assert applied and applied.reason == source
    record = store.get(job_id)
    assert record is not None and record.status.value == transition.target
    assert record.version == version + 1
    assert (record.finished_at is not None) == (transition.target in FINAL)
    assert store.active_count("acme") == (0 if transition.target in FINAL else 1)


@pytest.mark.parametrize("name", [n for n, t in TRANSITIONS.items() if t.guard != "client"])
def test_every_guard_refuses_without_its_proof(store: JobStore, name: str) -> None:
    transition = TRANSITIONS[name]
    job_id = job_in(store, transition.sources[0])
    right = proof(store, job_id, transition.guard)
    if transition.guard == "unleased":
        assert store.acquire_lease(job_id, new_token("alive"), ttl_s=30)
        refused = store.transition(job_id, name)
        assert not refused and refused.reason == "leased"
    else:
        for wrong in (new_token(), "", right + "x"):
            refused = store.transition(job_id, name, token=wrong)
            assert not refused and refused.reason == "fenced"
    assert status_of(store, job_id) == transition.sources[0]


def test_unknown_transitions_and_missing_jobs(store: JobStore) -> None:
    with pytest.raises(ValueError, match="unknown transition"):
        store.transition(uuid.uuid4().hex, "resurrect")
    missing = store.transition(uuid.uuid4().hex, "cancel_queued")
    assert not missing and missing.reason == "missing"
    assert store.start_run(uuid.uuid4().hex, "w/x", "w") is None


# --- runs and their fencing -----------------------------------------------------------------


def test_lifecycle_running_progress_succeeded(store: JobStore) -> None:
    record = store.create(new_record())
    token = new_token()
    assert store.start_run(record.id, token, "worker-1") is None  # no lease: no start
    assert store.acquire_lease(record.id, token, ttl_s=30)
    running = store.start_run(record.id, token, "worker-1")
    assert running is not None and running.status is JobStatus.RUNNING
    assert running.attempts == 1 and running.worker_id == "worker-1"
    assert running.run_token == token and running.started_at is not None
    progress = JobProgress(stage="train", step=50, total=100, fraction=0.5, loss=0.1)
    assert store.heartbeat(record.id, token, progress)
    current = store.get(record.id)
    assert current is not None and current.progress["step"] == 50
    prefix = f"tenants/acme/jobs/{record.id}/runs/{token.split('/')[1]}/"
    assert store.succeed(
        record.id, token, metrics={"mesh": {"watertight": True}}, warnings=["w"],
        formats=["glb", "ply"], output_prefix=prefix,
    )
    done = store.get(record.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED
    assert done.formats == ["glb", "ply"] and done.finished_at is not None
    assert done.output_prefix == prefix and done.output_key("mesh.glb") == prefix + "mesh.glb"
    assert done.progress["fraction"] == 1.0 and done.metrics == {"mesh": {"watertight": True}}
    assert store.active_count("acme") == 0
    assert not store.heartbeat(record.id, token, progress)
    assert not store.heartbeat(record.id, token)


@pytest.mark.parametrize("final", ["succeeded", "failed", "canceled"])
def test_final_jobs_never_run_again(store: JobStore, final: str) -> None:
    record = store.create(new_record())
    token = begin(store, record.id)
    if final == "succeeded":
        assert succeed(store, record.id, token)
    elif final == "failed":
        assert store.fail(record.id, token, "diverged", "training diverged")
    else:
        assert store.cancel_run(record.id, token)
    lose_worker(store, record.id, token)
    again = new_token("w2")
    assert store.acquire_lease(record.id, again, ttl_s=30)
    assert store.start_run(record.id, again, "w2") is None
    assert store.refuse_start(record.id, again).reason == final
    assert store.release_lease(record.id, again)
    for refused in (
        store.requeue_lost(record.id),
        store.fail_lost(record.id, "worker_lost", "gone"),
        store.cancel_lost(record.id),
        store.fail(record.id, token, "x", "y"),
        store.cancel_run(record.id, token),
        store.hand_back(record.id, token, retry=True),
        succeed(store, record.id, token),
    ):
        assert not refused and refused.reason == final
    assert store.request_cancel(record.id) is None
    assert not store.keep_lease(record.id, token, ttl_s=30)
    assert status_of(store, record.id) == final


def test_a_stale_run_is_fenced_out_after_a_requeue(store: JobStore) -> None:
    """Run A stalls past its lease; the reaper requeues the job; run B starts it. Whatever A
    does when it wakes up lands nowhere, and B's run is untouched."""
    record = store.create(new_record())
    stale = begin(store, record.id, new_token("stalled"), ttl_s=0.2)
    time.sleep(0.3)  # A's lease expired: its worker looks gone
    assert store.lease_owner(record.id) is None
    assert store.requeue_lost(record.id)
    # Between the requeue and the next start, A is refused by the status already.
    refused_while_queued = succeed(store, record.id, stale)
    assert not refused_while_queued and refused_while_queued.reason == "queued"
    assert not store.heartbeat(record.id, stale)
    assert not store.keep_lease(record.id, stale, ttl_s=30)  # does not block the next delivery
    fresh = begin(store, record.id, new_token("fresh"))
    assert fresh != stale
    version = store.version(record.id)
    progress = JobProgress(stage="train", step=1, total=10, fraction=0.1)
    for refused in (
        succeed(store, record.id, stale),
        store.fail(record.id, stale, "late", "late failure"),
        store.cancel_run(record.id, stale),
        store.hand_back(record.id, stale, retry=True),
    ):
        assert not refused and refused.reason == "fenced"
    assert not store.heartbeat(record.id, stale)
    assert not store.heartbeat(record.id, stale, progress)
    assert not store.keep_lease(record.id, stale, ttl_s=30)
    current = store.get(record.id)
    assert current is not None and current.status is JobStatus.RUNNING
    assert current.run_token == fresh and current.version == version
    assert current.worker_id == "fresh" and current.error_code is None
    assert store.lease_owner(record.id) == fresh
    assert store.heartbeat(record.id, fresh, progress)
    assert succeed(store, record.id, fresh)
    assert status_of(store, record.id) == "succeeded"


def test_fail_can_no_longer_fail_a_queued_job(store: JobStore) -> None:
    """Failing needs a run: a queued job is failed only by a worker holding its lease."""
    record = store.create(new_record())
    for refused in (
        store.fail(record.id, new_token(), "invalid_point_cloud", "NaN coordinates"),
        store.fail(record.id, "", "invalid_point_cloud", "NaN coordinates"),
        store.fail_lost(record.id, "worker_lost", "gone"),
        store.cancel_run(record.id, ""),
    ):
        assert not refused and refused.reason == "queued"
    queued = store.get(record.id)
    assert queued is not None and queued.status is JobStatus.QUEUED
    assert queued.error_code is None and queued.version == 1
    holder = new_token()
    assert not store.give_up_at_start(record.id, holder, "worker_lost", "gone")  # no lease
    assert store.acquire_lease(record.id, holder, ttl_s=30)
    assert store.give_up_at_start(record.id, holder, "worker_lost", "gone")
    failed = store.get(record.id)
    assert failed is not None and failed.status is JobStatus.FAILED
    assert (failed.error_code, failed.error_message) == ("worker_lost", "gone")


def test_failed_job_keeps_its_reason(store: JobStore) -> None:
    record = store.create(new_record())
    token = begin(store, record.id)
    assert store.fail(record.id, token, "invalid_point_cloud", "NaN coordinates")
    failed = store.get(record.id)
    assert failed is not None
    assert (failed.error_code, failed.error_message) == ("invalid_point_cloud", "NaN coordinates")


def test_stale_running_and_requeue(store: JobStore) -> None:
    record = store.create(new_record())
    token = begin(store, record.id)
    assert store.stale_running(heartbeat_timeout_s=60) == []
    time.sleep(0.05)
    assert store.stale_running(heartbeat_timeout_s=0.01) == [record.id]
    lose_worker(store, record.id, token)
    assert store.requeue_lost(record.id)
    requeued = store.get(record.id)
    assert requeued is not None and requeued.status is JobStatus.QUEUED
    assert requeued.worker_id is None and requeued.run_token is None
    assert requeued.heartbeat_at is None and store.stale_running(0) == []
    begin(store, record.id, new_token("w2"))
    again = store.get(record.id)
    assert again is not None and again.attempts == 2 and again.lost_runs == 1


def test_requeue_refuses_while_a_lease_is_held(store: JobStore) -> None:
    """The reaper's lease check and its requeue are one step: a worker that takes the lease
    back in between keeps its job."""
    record = store.create(new_record())
    token = begin(store, record.id, new_token("slow-worker"))
    for refused in (
        store.requeue_lost(record.id),
        store.fail_lost(record.id, "worker_lost", "gone"),
        store.cancel_lost(record.id),
    ):
        assert not refused and refused.reason == "leased"
    assert status_of(store, record.id) == "running"
    assert store.release_lease(record.id, token)
    assert store.requeue_lost(record.id)


def test_a_run_that_gives_the_job_back(store: JobStore) -> None:
    record = store.create(new_record())
    token = begin(store, record.id)
    assert store.heartbeat(record.id, token, JobProgress(stage="train", step=3, total=9))
    assert store.hand_back(record.id, token, retry=False)
    back = store.get(record.id)
    assert back is not None and back.status is JobStatus.QUEUED
    assert back.run_token is None and back.worker_id is None and back.retries == 0
    assert back.progress["stage"] == "queued" and back.progress["step"] == 0
    store.release_lease(record.id, token)
    second = begin(store, record.id)
    assert store.hand_back(record.id, second, retry=True)
    counted = store.get(record.id)
    assert counted is not None and counted.retries == 1 and counted.attempts == 2


def test_counters(store: JobStore) -> None:
    """start counts attempts, requeue_lost and fail_lost count lost runs, a retried hand-back
    counts retries; nothing else touches them."""
    record = store.create(new_record())
    first = begin(store, record.id)
    lose_worker(store, record.id, first)
    assert store.requeue_lost(record.id)
    second = begin(store, record.id)
    assert store.hand_back(record.id, second, retry=True)
    store.release_lease(record.id, second)
    third = begin(store, record.id)
    lose_worker(store, record.id, third)
    assert store.fail_lost(record.id, "worker_lost", "gone twice")
    done = store.get(record.id)
    assert done is not None and done.status is JobStatus.FAILED
    assert (done.attempts, done.lost_runs, done.retries) == (3, 2, 1)


def test_refuse_start_needs_the_lease_and_cancels(store: JobStore) -> None:
    record = store.create(new_record())
    holder = new_token()
    assert not store.refuse_start(record.id, holder)
    assert store.acquire_lease(record.id, holder, ttl_s=30)
    assert store.refuse_start(record.id, holder)
    assert status_of(store, record.id) == "canceled"


# --- cancel requests ------------------------------------------------------------------------


def test_cancel_queued_is_immediate_running_is_cooperative(store: JobStore) -> None:
    queued = store.create(new_record())
    assert store.request_cancel(queued.id) is JobStatus.CANCELED
    late = new_token()
    assert store.acquire_lease(queued.id, late, ttl_s=30)
    assert store.start_run(queued.id, late, "w") is None  # a late delivery does not start it
    running = store.create(new_record())
    token = begin(store, running.id)
    assert not store.is_cancel_requested(running.id)
    assert store.request_cancel(running.id) is JobStatus.RUNNING
    assert store.is_cancel_requested(running.id)
    assert store.heartbeat(running.id, token)  # the run still owns the job until it stops
    assert store.cancel_run(running.id, token)
    assert store.active_count("acme") == 0
    assert store.is_cancel_requested(uuid.uuid4().hex)  # vanished job: stop working
    assert store.request_cancel(uuid.uuid4().hex) is None


def test_success_is_refused_once_a_cancel_was_requested(store: JobStore) -> None:
    """A job answered 202 to a cancel never ends `succeeded`: the run must cancel instead."""
    record = store.create(new_record())
    token = begin(store, record.id)
    assert store.request_cancel(record.id) is JobStatus.RUNNING
    refused = succeed(store, record.id, token)
    assert not refused and refused.reason == "cancel_requested"
    current = store.get(record.id)
    assert current is not None and current.status is JobStatus.RUNNING
    assert current.output_prefix is None and current.formats == []
    wrong = succeed(store, record.id, new_token())
    assert not wrong and wrong.reason == "fenced"  # the guard is checked before the flag
    assert store.cancel_run(record.id, token)
    assert status_of(store, record.id) == "canceled"


def test_a_start_is_refused_while_a_cancel_is_pending(store: JobStore) -> None:
    """The cancel flag raised on a queued job (before it is canceled) stops any start."""
    record = store.create(new_record())
    store.redis.hset(f"{store.prefix}:job:{record.id}", "cancel_requested", "1")
    holder = new_token()
    assert store.acquire_lease(record.id, holder, ttl_s=30)
    refused = store.transition(record.id, "start", token=holder)
    assert not refused and refused.reason == "cancel_requested"
    assert store.start_run(record.id, holder, "w") is None
    assert store.refuse_start(record.id, holder)
    assert status_of(store, record.id) == "canceled"


def test_a_cancel_lost_needs_a_gone_worker(store: JobStore) -> None:
    record = store.create(new_record())
    token = begin(store, record.id)
    store.request_cancel(record.id)
    assert store.cancel_lost(record.id).reason == "leased"
    lose_worker(store, record.id, token)
    assert store.cancel_lost(record.id)
    assert status_of(store, record.id) == "canceled"


# --- leases ---------------------------------------------------------------------------------


def test_lease_is_exclusive_and_owner_checked(store: JobStore) -> None:
    job_id = uuid.uuid4().hex
    assert store.acquire_lease(job_id, "a", ttl_s=5)
    assert not store.acquire_lease(job_id, "b", ttl_s=5)
    assert not store.keep_lease(job_id, "b", ttl_s=5)
    assert not store.release_lease(job_id, "b")
    assert store.lease_owner(job_id) == "a"
    assert store.keep_lease(job_id, "a", ttl_s=5)
    assert store.release_lease(job_id, "a")
    assert store.acquire_lease(job_id, "b", ttl_s=0.2)
    time.sleep(0.3)
    assert store.lease_owner(job_id) is None
    assert store.acquire_lease(job_id, "c", ttl_s=5)


def lease_ttl_ms(store: JobStore, job_id: str) -> int:
    return int(store.redis.pttl(f"{store.prefix}:lease:{job_id}"))  # type: ignore[arg-type]


def test_keep_lease_renews_for_its_owner(store: JobStore) -> None:
    record = store.create(new_record())
    token = begin(store, record.id, ttl_s=1)
    assert lease_ttl_ms(store, record.id) <= 1000
    assert store.keep_lease(record.id, token, ttl_s=30)
    assert 1000 < lease_ttl_ms(store, record.id) <= 30_000
    assert store.lease_owner(record.id) == token
    assert not store.keep_lease(record.id, new_token(), ttl_s=30)  # held: not taken over
    assert store.lease_owner(record.id) == token


def test_keep_lease_retakes_an_expired_lease_only_for_the_running_run(store: JobStore) -> None:
    """After a stall longer than the lease, the run may take its lease again while the job
    still runs under its token; nobody else can."""
    record = store.create(new_record())
    token = begin(store, record.id, ttl_s=0.2)
    time.sleep(0.3)
    assert store.lease_owner(record.id) is None
    assert not store.keep_lease(record.id, new_token(), ttl_s=30)  # another run's token
    assert store.lease_owner(record.id) is None
    assert store.keep_lease(record.id, token, ttl_s=30)
    assert store.lease_owner(record.id) == token
    queued = store.create(new_record())
    assert not store.keep_lease(queued.id, token, ttl_s=30)  # never started: no lease made
    assert store.lease_owner(queued.id) is None


def test_keep_lease_refuses_after_a_requeue(store: JobStore) -> None:
    """The defect this guards against: a monitor that re-took an expired lease before
    checking the status held the lease of a requeued job, so the job's new delivery found it
    taken and exited, and the job sat queued."""
    record = store.create(new_record())
    stalled = begin(store, record.id, ttl_s=0.2)
    time.sleep(0.3)
    assert store.requeue_lost(record.id)
    assert not store.keep_lease(record.id, stalled, ttl_s=30)
    assert store.lease_owner(record.id) is None
    delivery = new_token("next")
    assert store.acquire_lease(record.id, delivery, ttl_s=30)  # the new delivery gets it
    assert store.start_run(record.id, delivery, "next") is not None
    store.release_lease(record.id, delivery)  # even with B's lease expired, A cannot take it
    assert not store.keep_lease(record.id, stalled, ttl_s=30)
    assert store.lease_owner(record.id) is None
    assert store.keep_lease(record.id, delivery, ttl_s=30)


# --- delete and purge -----------------------------------------------------------------------


def test_mark_deleted_hides_and_cancels_a_queued_job(store: JobStore) -> None:
    record = store.create(new_record(), idempotency_key="k")
    kept = store.create(new_record())
    assert store.mark_deleted(record.id) is JobStatus.CANCELED
    assert store.get_for_tenant(record.id, "acme") is None
    assert [r.id for r in store.list_for_tenant("acme", limit=10).items] == [kept.id]
    assert store.find_idempotent("acme", "k") is None
    hidden = store.get(record.id)  # the record stays until the sweeper removed the objects
    assert hidden is not None and hidden.deleted_at is not None
    assert hidden.cancel_requested and hidden.status is JobStatus.CANCELED
    assert store.deleting(limit=10) == [record.id]
    assert store.active_count("acme") == 1
    assert store.mark_deleted(record.id) is None  # already recorded
    assert store.mark_deleted(uuid.uuid4().hex) is None
    assert store.deleting(limit=10) == [record.id]


def test_mark_deleted_flags_a_running_job_for_its_run(store: JobStore) -> None:
    record = store.create(new_record())
    token = begin(store, record.id)
    assert store.mark_deleted(record.id) is JobStatus.RUNNING
    assert store.get_for_tenant(record.id, "acme") is None
    assert store.list_for_tenant("acme", limit=10).items == []
    assert store.is_cancel_requested(record.id)
    assert store.deleting(limit=10) == [record.id]
    refused = succeed(store, record.id, token)
    assert not refused and refused.reason == "cancel_requested"
    assert store.cancel_run(record.id, token)
    assert status_of(store, record.id) == "canceled"
    assert store.deleting(limit=10) == [record.id]  # the sweeper still has to finish it


def test_mark_deleted_of_a_final_job(store: JobStore) -> None:
    record = store.create(new_record())
    assert succeed(store, record.id, begin(store, record.id))
    assert store.mark_deleted(record.id) is JobStatus.SUCCEEDED
    assert store.get_for_tenant(record.id, "acme") is None
    assert store.deleting(limit=10) == [record.id]


def test_deleting_lists_oldest_first_up_to_the_limit(store: JobStore) -> None:
    ids = [store.create(new_record()).id for _ in range(3)]
    for job_id in ids:
        store.mark_deleted(job_id)
        time.sleep(0.002)
    assert store.deleting(limit=10) == ids
    assert store.deleting(limit=2) == ids[:2]


def test_purge_removes_every_trace(store: JobStore, redis_client: redis.Redis) -> None:
    record = store.create(new_record(), idempotency_key="k")
    begin(store, record.id)
    store.mark_deleted(record.id)
    assert store.purge(record.id)
    assert not store.purge(record.id)
    assert store.get(record.id) is None and store.version(record.id) is None
    leftovers = [k for k in redis_client.scan_iter("*") if record.id in k]
    assert leftovers == []
    for index in ("tenant:acme:jobs", "running", "queued", "finished", "deleting"):
        assert record.id not in redis_client.zrange(f"{store.prefix}:{index}", 0, -1), index
    assert store.active_count("acme") == 0 and store.stale_running(0) == []
    assert store.lease_owner(record.id) is None and store.deleting(limit=10) == []
    assert redis_client.keys(f"{store.prefix}:idem:*") == []


def test_purge_of_a_final_job_drops_it_from_retention(store: JobStore) -> None:
    record = store.create(new_record())
    assert store.request_cancel(record.id) is JobStatus.CANCELED
    assert store.finished_before(time.time() + 1, limit=10) == [record.id]
    assert store.purge(record.id)
    assert store.finished_before(time.time() + 1, limit=10) == []


# --- versions and retention -----------------------------------------------------------------


def test_version_counts_every_visible_change(store: JobStore) -> None:
    record = store.create(new_record())
    assert store.version(record.id) == 1
    token = begin(store, record.id)
    assert store.version(record.id) == 2
    assert store.heartbeat(record.id, token)  # a bare heartbeat is not visible
    assert store.version(record.id) == 2
    assert store.keep_lease(record.id, token, ttl_s=30)
    assert store.version(record.id) == 2
    assert store.heartbeat(record.id, token, JobProgress(stage="train", step=1, total=9))
    assert store.version(record.id) == 3
    assert not succeed(store, record.id, new_token())  # a refused change is not one
    assert store.version(record.id) == 3
    assert store.request_cancel(record.id) is JobStatus.RUNNING
    assert store.version(record.id) == 4
    assert store.cancel_run(record.id, token)
    assert store.version(record.id) == 5
    current = store.get(record.id)
    assert current is not None and current.version == 5
    assert store.version(uuid.uuid4().hex) is None


def test_version_of_success_and_deletion(store: JobStore) -> None:
    record = store.create(new_record())
    token = begin(store, record.id)
    assert succeed(store, record.id, token)
    assert store.version(record.id) == 3
    store.mark_deleted(record.id)
    assert store.version(record.id) == 4


@pytest.mark.parametrize(
    "finish",
    ["succeed", "fail", "cancel", "cancel_queued", "refuse_start", "give_up_at_start",
     "fail_lost", "cancel_lost"],
)
def test_final_transitions_enter_retention(store: JobStore, finish: str) -> None:
    unfinished = [store.create(new_record()).id, job_in(store, "running")]
    record = store.create(new_record())
    source = TRANSITIONS[finish].sources[0]
    if source == "running":
        begin(store, record.id)
    token = proof(store, record.id, TRANSITIONS[finish].guard)
    before = time.time()
    assert store.transition(record.id, finish, token=token)
    assert store.finished_before(time.time() + 1, limit=10) == [record.id]
    assert store.finished_before(before - 1, limit=10) == []
    assert not set(unfinished) & set(store.finished_before(time.time() + 1, limit=10))
    finished = store.get(record.id)
    assert finished is not None and finished.finished_at is not None


def test_finished_before_is_oldest_first_and_limited(store: JobStore) -> None:
    ids = []
    for _ in range(3):
        record = store.create(new_record())
        store.request_cancel(record.id)
        ids.append(record.id)
        time.sleep(0.002)
    assert store.finished_before(time.time() + 1, limit=10) == ids
    assert store.finished_before(time.time() + 1, limit=2) == ids[:2]


# --- draining ------------------------------------------------------------------------------


def test_draining_flag_expires(store: JobStore) -> None:
    assert not store.is_draining("node-a")
    store.set_draining("node-a", ttl_s=0.2)
    assert store.is_draining("node-a") and not store.is_draining("node-b")
    time.sleep(0.3)
    assert not store.is_draining("node-a")


# --- re-sends of queued jobs ----------------------------------------------------------------


def test_stale_queued_jobs_are_claimed_once_per_window(store: JobStore) -> None:
    lost = store.create(new_record(created_at=time.time() - 600))
    young = store.create(new_record())
    assert store.claim_stale_queued(unsent_for_s=300, limit=10) == [lost.id]
    assert store.claim_stale_queued(unsent_for_s=300, limit=10) == []  # restamped by the claim
    assert store.claim_stale_queued(unsent_for_s=0, limit=10) == [young.id]  # lost: backed off
    assert len(store.claim_stale_queued(unsent_for_s=0, limit=1)) == 1


def test_leased_queued_jobs_are_not_claimed(store: JobStore) -> None:
    record = store.create(new_record(created_at=time.time() - 600))
    assert store.acquire_lease(record.id, new_token(), ttl_s=30)  # a worker is starting it
    assert store.claim_stale_queued(unsent_for_s=300, limit=10) == []


def next_resend_in(store: JobStore, job_id: str, window: float) -> float:
    """Seconds until job `job_id` is due for its next re-send."""
    score = store.redis.zscore(f"{store.prefix}:queued", job_id)
    return float(score) + window - time.time()  # type: ignore[arg-type]


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


@pytest.mark.parametrize("back_to_queue", ["requeue_lost", "hand_back"])
def test_requeue_restarts_the_resend_backoff(store: JobStore, back_to_queue: str) -> None:
    window = 100.0
    record = store.create(new_record(created_at=time.time() - 2 * window))
    for _ in range(3):
        assert store.claim_stale_queued(unsent_for_s=window, limit=10) == [record.id]
        make_due(store, record.id)
    token = begin(store, record.id)
    if back_to_queue == "requeue_lost":
        lose_worker(store, record.id, token)
        assert store.requeue_lost(record.id)  # sends a fresh message
    else:
        assert store.hand_back(record.id, token, retry=True)
        lose_worker(store, record.id, token)
    make_due(store, record.id)
    assert store.claim_stale_queued(unsent_for_s=window, limit=10) == [record.id]
    assert next_resend_in(store, record.id, window) <= 2 * window  # not 16 windows


def test_queued_index_follows_the_status(store: JobStore, redis_client: redis.Redis) -> None:
    index = f"{store.prefix}:queued"
    record = store.create(new_record())
    assert redis_client.zscore(index, record.id) == record.created_at
    token = begin(store, record.id)
    assert redis_client.zscore(index, record.id) is None
    lose_worker(store, record.id, token)
    assert store.requeue_lost(record.id)
    assert store.claim_stale_queued(0, limit=10) == [record.id]
    second = begin(store, record.id, new_token("w2"))
    assert store.fail(record.id, second, "diverged", "training diverged")
    canceled = store.create(new_record())
    assert store.request_cancel(canceled.id) is JobStatus.CANCELED
    deleted = store.create(new_record())
    assert store.mark_deleted(deleted.id) is JobStatus.CANCELED
    purged = store.create(new_record())
    assert store.purge(purged.id)
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
