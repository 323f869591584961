"""The webhook dispatcher with the real job store and real HTTP receivers on loopback: a signed
POST per final job, the same delivery id on a retry, refusals at send time, and a retry window
that ends in `failed`."""

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from recon.infra.job_record import JobRecord
from recon.infra.job_store import JobStore
from recon.infra.job_views import to_job_public
from recon.infra.settings import Settings
from recon.infra.webhooks import WebhookOutbox, verify_signature
from recon.schemas import JobStatus
from recon.worker.webhook_dispatcher import WebhookDispatcher, dispatch_once
from tests.conftest import wait_until
from tests.infra.webhooks.jobs import create_job
from tests.infra.webhooks.receiver import Received, Receiver
from tests.worker.conftest import WORKER_TEST_REDIS_URL

SECRET = "whsec-dispatcher-test-0123456789"
SETTLE_TIMEOUT_S = 20.0


@dataclass
class Host:
    """What the dispatcher needs of the worker app."""

    recon_settings: Settings
    job_store: JobStore


def host_for(tmp_path: Path, **overrides: object) -> Host:
    values: dict[str, object] = {
        "redis_url": WORKER_TEST_REDIS_URL,
        "redis_key_prefix": f"wh{uuid.uuid4().hex[:8]}",
        "data_dir": tmp_path / "data",
        "webhook_secret": SECRET,
        "callback_allowed_hosts": "localhost",
        "webhook_poll_interval_s": 0.05,
        "webhook_timeout_s": 5,
    }
    settings = Settings(**{**values, **overrides})  # type: ignore[arg-type]
    return Host(settings, JobStore.from_settings(settings))


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    made = host_for(tmp_path)
    yield made
    drop_keys(made)


def drop_keys(host: Host) -> None:
    client = redis.Redis.from_url(WORKER_TEST_REDIS_URL)
    for key in client.scan_iter(f"{host.recon_settings.redis_key_prefix}:*"):
        client.delete(key)
    client.close()


def end(store: JobStore, job_id: str, status: JobStatus) -> None:
    """Bring a queued job to `status` the way the worker or the API does."""
    if status is JobStatus.CANCELED:
        assert store.request_cancel(job_id) == JobStatus.CANCELED
        return
    token = f"w/{uuid.uuid4().hex}"
    assert store.acquire_lease(job_id, token, 30)
    assert store.start_run(job_id, token, "w") is not None
    if status is JobStatus.SUCCEEDED:
        assert store.succeed(job_id, token, metrics={}, warnings=[], formats=["glb"],
                             output_prefix=f"tenants/acme/jobs/{job_id}/runs/r/")
    else:
        assert store.fail(job_id, token, "diverged", "the fit diverged")


def record_of(store: JobStore, job_id: str) -> JobRecord:
    record = store.get(job_id)
    assert record is not None
    return record


def settled(store: JobStore, job_id: str) -> JobRecord:
    """The record once its webhook is delivered or failed."""
    wait_until(lambda: record_of(store, job_id).callback_status in ("delivered", "failed"),
               SETTLE_TIMEOUT_S, f"the webhook of job {job_id}")
    return record_of(store, job_id)


def assert_signed(request: Received) -> None:
    headers = request.headers
    assert verify_signature(SECRET, request.body, headers["recon-timestamp"],
                            headers["recon-signature"])
    assert headers["content-type"] == "application/json"


@pytest.fixture
def dispatcher(host: Host) -> Iterator[WebhookDispatcher]:
    running = WebhookDispatcher(host).start()
    yield running
    running.stop()
    running.thread.join(timeout=10)


def test_a_retry_after_a_500_carries_the_same_delivery_id_and_a_valid_signature(
    host: Host, dispatcher: WebhookDispatcher
) -> None:
    store = host.job_store
    with Receiver(answers=[(500, {})]) as receiver:
        job_id = create_job(store, receiver.url(host="localhost"))
        end(store, job_id, JobStatus.SUCCEEDED)
        record = settled(store, job_id)
        first, second = receiver.wait_for(2)
    assert record.callback_status == "delivered" and record.callback_attempts == 2
    assert record.callback_last_error is None and record.callback_delivered_at is not None
    assert first.headers["recon-delivery-id"] == second.headers["recon-delivery-id"]
    assert first.headers["recon-delivery-id"] == record.callback_delivery_id
    assert int(second.headers["recon-timestamp"]) >= int(first.headers["recon-timestamp"])
    for request in (first, second):
        assert_signed(request)
        assert request.headers["recon-event"] == "job.succeeded"
        assert request.body == first.body  # the same body on every attempt
    body = json.loads(second.body)
    assert body["id"] == job_id and body["status"] == "succeeded" and "callback" not in body
    view = to_job_public(record).model_dump(mode="json", exclude={"callback"})
    assert body == view


def test_every_final_status_gets_its_own_signed_event(
    host: Host, dispatcher: WebhookDispatcher
) -> None:
    store = host.job_store
    with Receiver() as receiver:
        jobs = {status: create_job(store, receiver.url(f"/{status.value}", host="localhost"))
                for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)}
        for status, job_id in jobs.items():
            end(store, job_id, status)
        for job_id in jobs.values():
            assert settled(store, job_id).callback_status == "delivered"
        requests = {r.path: r for r in receiver.wait_for(3)}
    for status, job_id in jobs.items():
        request = requests[f"/{status.value}"]
        assert_signed(request)
        assert request.headers["recon-event"] == f"job.{status.value}"
        assert json.loads(request.body)["status"] == status.value
        assert request.headers["recon-delivery-id"] == record_of(store, job_id).callback_delivery_id


def test_a_redirect_to_a_loopback_port_that_is_not_allow_listed_reaches_nothing(
    host: Host, dispatcher: WebhookDispatcher
) -> None:
    store = host.job_store
    with Receiver() as internal, Receiver() as receiver:
        receiver.answers.append((307, {"Location": f"http://127.0.0.1:{internal.port}/admin"}))
        job_id = create_job(store, receiver.url(host="localhost"))
        end(store, job_id, JobStatus.FAILED)
        record = settled(store, job_id)
        assert len(receiver.received) == 1
        assert internal.connections == 0 and internal.received == []
    assert record.callback_status == "failed" and record.callback_attempts == 1
    assert "redirect 1" in (record.callback_last_error or "")


def test_urls_refused_at_send_time_are_never_connected_to(tmp_path: Path) -> None:
    """Jobs whose URL the API would refuse (stored here directly) fail without a connection."""
    host = host_for(tmp_path, callback_allowed_hosts="")
    store = host.job_store
    try:
        with Receiver() as receiver:
            urls = [f"https://localhost:{receiver.port}/hook",      # resolves to loopback
                    f"https://2130706433:{receiver.port}/hook",     # loopback, numeric
                    f"http://127.0.0.1:{receiver.port}/hook",       # http, not allow-listed
                    f"https://[::ffff:127.0.0.1]:{receiver.port}/hook"]
            job_ids = [create_job(store, url) for url in urls]
            for job_id in job_ids:
                end(store, job_id, JobStatus.CANCELED)
            while dispatch_once(host):
                pass
            records = [record_of(store, job_id) for job_id in job_ids]
            assert receiver.connections == 0
    finally:
        drop_keys(host)
    for record in records:
        assert record.callback_status == "failed" and record.callback_attempts == 1
        assert "refused" in (record.callback_last_error or "")


def test_the_retry_window_ends_in_failed_with_the_last_error(tmp_path: Path) -> None:
    host = host_for(tmp_path, webhook_retry_window_s=2.5)
    store = host.job_store
    try:
        with Receiver(answers=[(503, {})] * 10) as receiver:
            job_id = create_job(store, receiver.url(host="localhost"))
            end(store, job_id, JobStatus.SUCCEEDED)
            dispatcher = WebhookDispatcher(host).start()
            try:
                record = settled(store, job_id)
            finally:
                dispatcher.stop()
            # Attempts at about 0 s and 1 s; the next would be at 3 s, past the 2.5 s window.
            attempts = record.callback_attempts
            assert record.callback_status == "failed" and 1 <= attempts <= 2
            assert len(receiver.received) == attempts
        assert "HTTP 503" in (record.callback_last_error or "")
        assert f"gave up after {attempts} attempts" in (record.callback_last_error or "")
        assert WebhookOutbox(store.redis, prefix=store.prefix).due_at(job_id) is None
    finally:
        drop_keys(host)


def test_a_worker_without_the_secret_keeps_the_webhook_pending(tmp_path: Path) -> None:
    host = host_for(tmp_path, webhook_secret=None)
    store = host.job_store
    try:
        with Receiver() as receiver:
            job_id = create_job(store, receiver.url(host="localhost"))
            end(store, job_id, JobStatus.FAILED)
            assert dispatch_once(host) == [job_id]
            record = record_of(store, job_id)
            assert receiver.received == []
        assert record.callback_status == "pending" and record.callback_attempts == 1
        assert "RECON_WEBHOOK_SECRET" in (record.callback_last_error or "")
    finally:
        drop_keys(host)
