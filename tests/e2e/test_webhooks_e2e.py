"""Completion webhooks end to end: a real `recon api` and `recon worker`, and a receiver on
loopback (allow-listed here) that gets one signed POST with the job view for a succeeded job,
a job canceled while queued and a job that failed in the worker (its input was removed)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import (
    BUNNY,
    RUN_TIMEOUT_S,
    TINY_PARAMS,
    Stack,
    free_port,
    job,
    stack_env,
    submit,
    wait_for,
)

from recon.infra.job_store import JobStore
from recon.infra.storage import build_storage
from recon.infra.webhooks import verify_signature
from tests.infra.webhooks.receiver import Received, Receiver

pytestmark = pytest.mark.e2e

SECRET = "whsec-e2e-0123456789abcdef0123"
KEYS = {"acme": "acme-e2e-webhooks-0123456789"}


@pytest.fixture
def api_only(tmp_path: Path) -> Iterator[Stack]:
    """An API that signs webhooks and allows 127.0.0.1; workers are started by the test."""
    (tmp_path / "logs").mkdir()
    port = free_port()
    env = stack_env(tmp_path / "data", port, KEYS, {
        "RECON_WEBHOOK_SECRET": SECRET,
        "RECON_CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
        "RECON_WEBHOOK_POLL_INTERVAL_S": "0.2",
    })
    stack = Stack(env, tmp_path / "logs", f"http://127.0.0.1:{port}", KEYS)
    try:
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def test_each_final_job_is_posted_signed_to_its_callback(api_only: Stack) -> None:
    points = BUNNY / "sparse" / "points.ply"
    with Receiver() as receiver, api_only.client() as client:
        ids = {}
        for outcome in ("succeeded", "canceled", "failed"):
            params = {**TINY_PARAMS, "callback_url": receiver.url(f"/{outcome}")}
            ids[outcome] = submit(client, points, params)["id"]
        assert client.post(f"/v1/reconstructions/{ids['canceled']}/cancel").status_code == 200
        settings = api_only.settings()
        record = JobStore.from_settings(settings).get(ids["failed"])
        assert record is not None
        build_storage(settings).delete(record.input_key)  # the worker fails it: input_missing

        api_only.start_worker()
        received = receiver.wait_for(3, timeout_s=RUN_TIMEOUT_S)
        by_path: dict[str, Received] = {r.path: r for r in received}
        assert set(by_path) == {"/succeeded", "/canceled", "/failed"}
        for outcome, job_id in ids.items():
            request = by_path[f"/{outcome}"]
            assert verify_signature(SECRET, request.body, request.headers["recon-timestamp"],
                                    request.headers["recon-signature"])
            assert request.headers["recon-event"] == f"job.{outcome}"
            view = wait_for(lambda j=job_id: (v := job(client, j))["callback"]["status"]
                            == "delivered" and v, 20, f"job {job_id}'s callback",
                            logs=api_only.logs)
            assert view["status"] == outcome
            assert request.headers["recon-delivery-id"] == view["callback"]["delivery_id"]
            del view["callback"]
            assert json.loads(request.body) == view  # the job view, as GET returns it
        assert len(receiver.received) == 3  # one POST each: all answered 200 at once
    assert json.loads(by_path["/failed"].body)["error"]["code"] == "input_missing"
    assert json.loads(by_path["/succeeded"].body)["links"]["mesh"]
