"""The webhook outbox on the real Redis: the final transition fills it atomically, claims keep
dispatchers apart, attempts are recorded once, purging a job empties its entry."""

import time
import uuid

import pytest

from recon.infra.job_record import JobRecord
from recon.infra.job_store import JobStore
from recon.infra.job_views import to_job_public
from recon.infra.settings import Settings
from recon.infra.webhooks import WebhookOutbox
from recon.schemas import JobStatus
from tests.infra.webhooks.jobs import create_job

CALLBACK = "https://hooks.example.com/recon"


@pytest.fixture
def store(settings: Settings) -> JobStore:
    return JobStore.from_settings(settings)


@pytest.fixture
def outbox(store: JobStore) -> WebhookOutbox:
    return WebhookOutbox(store.redis, prefix=store.prefix)


def create(store: JobStore, callback_url: str | None = CALLBACK) -> str:
    return create_job(store, callback_url)


def run_to_failed(store: JobStore, job_id: str) -> None:
    token = f"w/{uuid.uuid4().hex}"
    assert store.acquire_lease(job_id, token, 30)
    assert store.start_run(job_id, token, "w") is not None
    assert store.fail(job_id, token, "diverged", "the fit diverged")


def get(store: JobStore, job_id: str) -> JobRecord:
    record = store.get(job_id)
    assert record is not None
    return record


def test_a_final_transition_makes_the_webhook_due_with_a_stable_delivery_id(
    store: JobStore, outbox: WebhookOutbox
) -> None:
    job_id = create(store)
    queued = to_job_public(get(store, job_id)).callback
    assert queued is not None and queued.status == "pending" and queued.delivery_id is None
    assert outbox.due_at(job_id) is None  # not final yet
    run_to_failed(store, job_id)
    record = get(store, job_id)
    assert record.callback_status == "pending" and record.callback_attempts == 0
    assert record.callback_delivery_id == f"{job_id}-{record.version}"
    due = outbox.due_at(job_id)
    assert due is not None and due == pytest.approx(record.finished_at)


def test_canceling_a_queued_job_also_makes_its_webhook_due(
    store: JobStore, outbox: WebhookOutbox
) -> None:
    job_id = create(store)
    assert store.request_cancel(job_id) == JobStatus.CANCELED
    assert outbox.due_at(job_id) is not None
    assert get(store, job_id).callback_status == "pending"


def test_jobs_without_a_callback_never_enter_the_outbox(
    store: JobStore, outbox: WebhookOutbox
) -> None:
    job_id = create(store, callback_url=None)
    run_to_failed(store, job_id)
    assert outbox.due_at(job_id) is None and get(store, job_id).callback_status is None
    assert to_job_public(get(store, job_id)).callback is None


def test_a_claim_keeps_other_dispatchers_off_until_it_runs_out(
    store: JobStore, outbox: WebhookOutbox
) -> None:
    job_id = create(store)
    run_to_failed(store, job_id)
    assert outbox.claim_due(10, claim_for_s=60) == [job_id]
    assert outbox.claim_due(10, claim_for_s=60) == []  # claimed by the first caller
    assert outbox.retry_at(job_id, time.time() - 1, "HTTP 500")
    assert outbox.claim_due(10, claim_for_s=0.2) == [job_id]
    time.sleep(0.3)
    assert outbox.claim_due(10, claim_for_s=60) == [job_id]  # that claim ran out


def test_attempts_are_recorded_once_and_shown_in_the_view(
    store: JobStore, outbox: WebhookOutbox
) -> None:
    job_id = create(store)
    run_to_failed(store, job_id)
    version = get(store, job_id).version
    assert outbox.retry_at(job_id, time.time() + 60, "HTTP 500")
    retried = to_job_public(get(store, job_id)).callback
    assert retried is not None
    assert (retried.status, retried.attempts, retried.last_error) == ("pending", 1, "HTTP 500")
    assert outbox.delivered(job_id)
    record = get(store, job_id)
    assert record.version == version + 2  # each recorded attempt is a visible change
    view = to_job_public(record).callback
    assert view is not None and view.status == "delivered" and view.attempts == 2
    assert view.last_error is None and view.delivered_at is not None
    assert outbox.due_at(job_id) is None
    assert not outbox.retry_at(job_id, time.time(), "late duplicate")  # settled: no change
    assert not outbox.give_up(job_id, "late duplicate")
    assert get(store, job_id).callback_status == "delivered"


def test_giving_up_fails_the_webhook_with_the_reason(
    store: JobStore, outbox: WebhookOutbox
) -> None:
    job_id = create(store)
    run_to_failed(store, job_id)
    assert outbox.give_up(job_id, "redirect 1 refused: a loopback address")
    record = get(store, job_id)
    assert record.callback_status == "failed" and record.callback_attempts == 1
    assert record.callback_last_error == "redirect 1 refused: a loopback address"
    assert outbox.due_at(job_id) is None and outbox.claim_due(10, 60) == []


def test_purging_a_job_removes_its_entry(store: JobStore, outbox: WebhookOutbox) -> None:
    job_id = create(store)
    run_to_failed(store, job_id)
    assert outbox.due_at(job_id) is not None
    assert store.purge(job_id)
    assert outbox.due_at(job_id) is None


def test_an_entry_whose_job_vanished_is_dropped_by_the_claim(
    store: JobStore, outbox: WebhookOutbox
) -> None:
    job_id = create(store)
    run_to_failed(store, job_id)
    store.redis.delete(f"{store.prefix}:job:{job_id}")  # gone without a purge
    assert outbox.claim_due(10, 60) == [] and outbox.due_at(job_id) is None
