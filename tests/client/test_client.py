"""The Python client against a running service: typed errors, idempotent retried submits, a 429
retried after its Retry-After, following a job to its end and downloading its mesh."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from recon.client import (
    AuthenticationError,
    Client,
    ConflictError,
    ConnectionFailed,
    InvalidRequestError,
    JobCanceledError,
    NotFoundError,
    RateLimitedError,
    RetryNotice,
    WaitTimedOut,
)
from recon.schemas import JobPublic, JobStatus, ReconstructionParams
from tests.client.dropping_proxy import DroppingProxy
from tests.client.support import RUN_TIMEOUT_S, TINY_PARAMS, settle, start_long_job
from tests.e2e.e2e_support import Stack, load_glb

pytestmark = pytest.mark.e2e


def job_ids(client: Client) -> list[str]:
    """Ids of all this tenant's jobs, newest first."""
    return [job.id for job in client.iter_jobs()]


def test_errors_are_typed_with_the_api_code_and_message(service: Stack, acme: Client,
                                                        sphere_ply: Path) -> None:
    with Client(service.base_url, "not-a-key-of-anyone") as stranger:
        with pytest.raises(AuthenticationError) as refused:
            stranger.list()
    assert refused.value.status == 401 and refused.value.code == "invalid_api_key"

    with pytest.raises(NotFoundError) as missing:
        acme.get("0" * 32)
    assert missing.value.code == "job_not_found" and missing.value.message

    with pytest.raises(InvalidRequestError) as invalid:
        acme.submit(sphere_ply, {"preset": "fast", "max_iterations": 1})
    assert invalid.value.status == 422 and invalid.value.code == "invalid_params"
    assert "max_iterations" in str(invalid.value)

    job = start_long_job(acme, sphere_ply)
    target = sphere_ply.parent / "early.glb"
    try:
        with pytest.raises(ConflictError) as early:
            acme.download(job.id, target)
        assert early.value.code == "job_not_finished"
        assert early.value.detail == {"status": "running"}
        assert list(sphere_ply.parent.glob("*early.glb*")) == []  # no partial file either
    finally:
        settle(acme, job.id)
    with pytest.raises(JobCanceledError) as canceled:
        acme.wait(job.id)
    assert canceled.value.job.status is JobStatus.CANCELED


def test_wait_reopens_a_closed_stream_where_it_stopped(acme: Client, sphere_ply: Path) -> None:
    """The service closes each event stream after a second (`QUICK`); the client reopens it with
    the last event id it saw, until its own timeout."""
    job = start_long_job(acme, sphere_ply)
    streams: list[httpx.Request] = []
    acme.transport.http.event_hooks["request"].append(streams.append)
    seen: list[JobPublic] = []
    try:
        with pytest.raises(WaitTimedOut) as waited:
            acme.wait(job.id, on_progress=seen.append, timeout=3.5)
        opened = list(streams)
    finally:
        settle(acme, job.id)
    assert waited.value.code == "wait_timeout" and "running" in str(waited.value)
    assert len(opened) >= 2 and all(r.url.path.endswith("/events") for r in opened)
    assert "Last-Event-ID" not in opened[0].headers
    resumed_from = [int(r.headers["Last-Event-ID"]) for r in opened[1:]]
    assert resumed_from == sorted(resumed_from) and resumed_from[0] > 0
    steps = [state.progress.step for state in seen]
    assert len(steps) >= 2 and steps == sorted(steps)


def test_a_429_is_retried_after_its_retry_after_and_creates_one_job(
        service: Stack, acme: Client, sphere_ply: Path) -> None:
    before = job_ids(acme)
    blocker = start_long_job(acme, sphere_ply)  # the tenant's one active job
    notices: list[RetryNotice] = []

    def free_the_quota(notice: RetryNotice) -> None:
        notices.append(notice)
        if len(notices) == 1:
            acme.cancel(blocker.id)

    patient = Client(service.base_url, service.keys["acme"], retries=15, on_retry=free_the_quota)
    job = None
    try:
        with patient:
            job = patient.submit(sphere_ply, TINY_PARAMS)
        first = notices[0].error
        assert isinstance(first, RateLimitedError) and first.code == "too_many_jobs"
        assert first.retry_after_s == 1.0 and notices[0].wait_s >= 1.0
        assert all(isinstance(n.error, RateLimitedError) for n in notices)
        assert job_ids(acme) == [job.id, blocker.id, *before]
    finally:
        settle(acme, blocker.id, *([job.id] if job else []))


def test_a_lost_answer_is_retried_into_the_same_job_then_followed_and_downloaded(
        service: Stack, acme: Client, sphere_ply: Path, tmp_path: Path) -> None:
    before = job_ids(acme)
    notices: list[RetryNotice] = []
    port = int(service.base_url.rsplit(":", 1)[1])
    params = ReconstructionParams(**TINY_PARAMS)
    with DroppingProxy(port) as proxy, Client(proxy.url, service.keys["acme"],
                                              on_retry=notices.append) as through_proxy:
        job = through_proxy.submit(sphere_ply, params, idempotency_key="lost-answer")
    assert proxy.dropped == 1 and len(notices) == 1
    assert isinstance(notices[0].error, ConnectionFailed)
    sent: list[httpx.Request] = []
    acme.transport.http.event_hooks["request"].append(sent.append)
    try:
        assert job_ids(acme) == [job.id, *before]
        sent.clear()
        seen: list[JobPublic] = []
        done = acme.wait(job.id, on_progress=seen.append, timeout=RUN_TIMEOUT_S)
        followed = [request.url.path for request in sent]
    finally:
        settle(acme, job.id)
    assert done.status is JobStatus.SUCCEEDED and seen[-1] == done
    fractions = [state.progress.fraction for state in seen]
    assert fractions == sorted(fractions) and "train" in {s.progress.stage for s in seen}
    assert followed and all(path == f"/v1/reconstructions/{job.id}/events"
                            for path in followed)  # followed, never polled
    assert acme.submit(sphere_ply, params, idempotency_key="lost-answer").id == job.id

    sent.clear()
    mesh = acme.download(job.id, tmp_path / "sphere.glb")
    assert len(load_glb(mesh.read_bytes()).faces) == done.metrics["mesh"]["faces"]
    to_service, to_storage = sent
    assert to_service.url.path.endswith("/mesh") and "Authorization" in to_service.headers
    assert to_storage.url.port != to_service.url.port and "X-Amz-Signature" in str(to_storage.url)
    assert "Authorization" not in to_storage.headers  # the key stays with the service

    with DroppingProxy(port, drops=3) as cutting, Client(
            cutting.url, service.keys["acme"], retries=0) as flaky:
        sent.clear()
        flaky.transport.http.event_hooks["request"].append(sent.append)
        assert flaky.wait(job.id, poll_interval=0.1).status is JobStatus.SUCCEEDED
    assert cutting.dropped == 3 and [r.url.path.rsplit("/", 1)[1] for r in sent] == [
        "events", "events", "events", job.id]  # three broken streams, then polling

    acme.delete(job.id)
    with pytest.raises(NotFoundError):
        acme.get(job.id)
