"""/reconstructions over HTTP with real Redis and real storage: happy paths and every error."""

import base64
import json
import threading
import time
import uuid
from dataclasses import dataclass

import httpx
import pytest
from fastapi.testclient import TestClient

from recon.api.app import create_app
from recon.api.context import ServiceContext
from recon.engine.export import MEDIA_TYPES
from recon.engine.formats.pointcloud import load_point_cloud
from recon.infra.job_store import JobStore
from recon.infra.settings import Settings
from recon.infra.storage import (
    ObjectStorage,
    job_object_key,
    job_prefix,
    mesh_object_name,
)
from recon.infra.storage.s3 import S3Storage
from recon.infra.task_queue import JobQueue
from recon.schemas import JobProgress, JobStatus, MeshFormat
from recon.worker import reaper
from recon.worker.job_run import JobContext, JobOutputs, Outcome, Run, publish
from tests.api.support import (
    MESH_BYTES,
    METRICS,
    context_of,
    finish_job,
    jpeg_bytes,
    nan_ply,
    start_job,
    succeed_run,
    upload_outputs,
)
from tests.conftest import TENANT, S3Server, sphere_points
from tests.infra.storage.test_local import undeletable

Headers = dict[str, str]


def submit(
    client: TestClient,
    headers: Headers,
    content: bytes,
    filename: str = "scan.ply",
    params: str | None = None,
    **extra: bytes,
) -> httpx.Response:
    files = {"file": (filename, content, "application/octet-stream")}
    files.update(
        {name: (f"{name}.ply", data, "application/octet-stream") for name, data in extra.items()}
    )
    data = {"params": params} if params is not None else None
    return client.post("/reconstructions", headers=headers, files=files, data=data)


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "detail"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


def assert_nothing_accepted(client: TestClient) -> None:
    context = context_of(client)
    assert context.job_store.list_for_tenant(TENANT, limit=10).items == []
    assert context.storage.list_keys(f"tenants/{TENANT}/") == []
    assert context.queue.depth() == 0


# --- submission ---------------------------------------------------------------------------


def test_submit_stores_input_creates_job_and_enqueues(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    response = submit(client, auth_headers, sphere_ply_bytes, params='{"preset": "fast"}')
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/reconstructions/{job['id']}"
    assert job["status"] == "queued" and job["params"]["preset"] == "fast"
    assert job["params"]["formats"] == ["glb"]
    context = context_of(client)
    record = context.job_store.get(job["id"])
    assert record is not None and record.tenant == TENANT
    assert record.input_key == f"tenants/{TENANT}/jobs/{job['id']}/input.ply"
    assert context.storage.get_bytes(record.input_key) == sphere_ply_bytes
    assert context.queue.depth() == 1
    assert client.get(response.headers["location"], headers=auth_headers).json()["id"] == job["id"]


def test_submit_with_ground_truth_and_xyz_text(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    text = "\n".join(" ".join(f"{v:.6f}" for v in p) for p in sphere_points()).encode()
    response = submit(
        client, auth_headers, text, filename="scan.xyz", ground_truth=sphere_ply_bytes
    )
    assert response.status_code == 202, response.text
    record = context_of(client).job_store.get(response.json()["id"])
    assert record is not None and record.input_key.endswith("/input.xyz")
    assert record.ground_truth_key is not None and record.ground_truth_key.endswith(
        "/ground_truth.ply"
    )
    assert context_of(client).storage.get_bytes(record.ground_truth_key) == sphere_ply_bytes


def test_idempotent_resubmission(
    client: TestClient, auth_headers: Headers, other_auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    key = {"Idempotency-Key": f"pipeline-run-{uuid.uuid4()}"}
    first = submit(client, {**auth_headers, **key}, sphere_ply_bytes)
    again = submit(client, {**auth_headers, **key}, sphere_ply_bytes)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    other = submit(client, {**other_auth_headers, **key}, sphere_ply_bytes)
    assert other.status_code == 202 and other.json()["id"] != first.json()["id"]
    listed = client.get("/reconstructions", headers=auth_headers).json()["items"]
    assert [job["id"] for job in listed] == [first.json()["id"]]
    assert context_of(client).queue.depth() == 2


@pytest.mark.parametrize(
    ("content", "filename", "status", "code", "words"),
    [
        ("truncated", "scan.ply", 422, "invalid_point_cloud", "truncated"),
        ("nan", "scan.ply", 422, "invalid_point_cloud", "NaN"),
        ("empty", "scan.ply", 422, "invalid_point_cloud", "empty"),
        ("few", "scan.ply", 422, "invalid_point_cloud", "distinct"),
        ("jpeg", "scan.ply", 415, "unsupported_file_type", "JPEG"),
        ("jpeg", "photo.jpg", 415, "unsupported_file_type", "JPEG"),
        ("binary", "model.fbx", 415, "unsupported_file_type", ".fbx"),
    ],
)
def test_bad_point_clouds_are_refused_before_anything_is_queued(
    client: TestClient,
    auth_headers: Headers,
    sphere_ply_bytes: bytes,
    content: str,
    filename: str,
    status: int,
    code: str,
    words: str,
) -> None:
    payloads = {
        "truncated": sphere_ply_bytes[: len(sphere_ply_bytes) // 2],
        "nan": nan_ply(),
        "empty": b"",
        "few": b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
        b"property float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n",
        "jpeg": jpeg_bytes(),
        "binary": bytes(range(256)) * 8,
    }
    error = assert_error(submit(client, auth_headers, payloads[content], filename), status, code)
    assert words in error["message"]
    assert_nothing_accepted(client)


def test_subsampling_warning_is_the_workers_own(
    settings: Settings, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    capped = Settings(**{**settings.model_dump(), "max_points": 100})
    with TestClient(create_app(capped)) as client:
        job = submit(client, auth_headers, sphere_ply_bytes, params='{"seed": 7}').json()
        record = context_of(client).job_store.get(job["id"])
    assert record is not None
    worker_cloud = load_point_cloud(sphere_ply_bytes, max_points=100, seed=7)  # as the worker does
    assert len(worker_cloud.warnings) == 1 and "(seed 7)" in worker_cloud.warnings[0]
    assert job["warnings"] == record.warnings == list(worker_cloud.warnings)
    merged = dict.fromkeys([*record.warnings, *worker_cloud.warnings])  # the worker's merge
    assert len([w for w in merged if "random subset" in w]) == 1


def test_invalid_ground_truth_is_422(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    response = submit(client, auth_headers, sphere_ply_bytes, ground_truth=b"ply\nbroken")
    assert_error(response, 422, "invalid_ground_truth")
    assert_nothing_accepted(client)


def test_params_malformed_json_is_400_and_invalid_values_422(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    assert_error(
        submit(client, auth_headers, sphere_ply_bytes, params='{"preset": '),
        400,
        "malformed_params",
    )
    bad = submit(client, auth_headers, sphere_ply_bytes, params='{"method": "magic", "seed": -1}')
    error = assert_error(bad, 422, "invalid_params")
    assert {tuple(e["loc"]) for e in error["detail"]} == {("method",), ("seed",)}
    assert_error(submit(client, auth_headers, sphere_ply_bytes, params='{"colour": 1}'), 422)
    assert_nothing_accepted(client)


@pytest.mark.parametrize("params, field", [
    ('{"surface": "open"}', "surface"),
    ('{"surface": "trimmed", "trim_distance": 0.4}', "trim_distance"),
    ('{"surface": "trimmed", "trim_distance": 20.5}', "trim_distance"),
    ('{"trim_distance": "far"}', "trim_distance"),
    ('{"target_faces": 99}', "target_faces"),
    ('{"target_faces": 5000001}', "target_faces"),
    ('{"target_faces": 1000.5}', "target_faces"),
    ('{"up_axis": "x"}', "up_axis"),
    ('{"up_axis": "Z"}', "up_axis"),
    ('{"units": "km"}', "units"),
    ('{"units": 1000}', "units"),
    ('{"use_normals": "maybe"}', "use_normals"),
    ('{"use_normals": true}', "use_normals"),
])
def test_surface_and_output_options_out_of_bounds_are_422(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes, params: str, field: str
) -> None:
    error = assert_error(submit(client, auth_headers, sphere_ply_bytes, params=params), 422,
                         "invalid_params")
    assert [tuple(e["loc"]) for e in error["detail"]] == [(field,)]
    assert_nothing_accepted(client)


def test_malformed_requests_are_400_or_415(client: TestClient, auth_headers: Headers) -> None:
    no_file = client.post("/reconstructions", headers=auth_headers, files={"params": (None, "{}")})
    assert_error(no_file, 400, "missing_file")
    as_json = client.post("/reconstructions", headers=auth_headers, json={"file": "x"})
    assert_error(as_json, 415, "not_multipart")
    extra = client.post(
        "/reconstructions", headers=auth_headers, files={"surprise": ("a.ply", b"ply")}
    )
    assert_error(extra, 400, "unexpected_part")
    bad_key = {**auth_headers, "Idempotency-Key": "x" * 300}
    assert_error(client.post("/reconstructions", headers=bad_key, files={}), 400)


def test_quota_answers_429_with_retry_after(
    client: TestClient, auth_headers: Headers, other_auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    limit = context_of(client).settings.max_concurrent_jobs_per_tenant
    for _ in range(limit):
        assert submit(client, auth_headers, sphere_ply_bytes).status_code == 202
    over = submit(client, auth_headers, sphere_ply_bytes)
    error = assert_error(over, 429, "too_many_jobs")
    assert int(over.headers["retry-after"]) > 0
    assert error["detail"] == {"active": limit, "limit": limit}
    assert submit(client, other_auth_headers, sphere_ply_bytes).status_code == 202
    first = client.get("/reconstructions", headers=auth_headers).json()["items"][0]["id"]
    client.post(f"/reconstructions/{first}/cancel", headers=auth_headers)
    assert submit(client, auth_headers, sphere_ply_bytes).status_code == 202


def test_broker_down_answers_503_and_keeps_nothing(
    settings: Settings, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    down = Settings(**{**settings.model_dump(), "broker_url": "redis://127.0.0.1:9/0"})
    with TestClient(create_app(down)) as client:
        assert_error(submit(client, auth_headers, sphere_ply_bytes), 503, "broker_unavailable")
        context = context_of(client)
        assert context.job_store.list_for_tenant(TENANT, limit=10).items == []
        assert context.storage.list_keys(f"tenants/{TENANT}/") == []


# --- authentication and tenancy -------------------------------------------------------------


def test_missing_and_wrong_keys_are_401(client: TestClient, sphere_ply_bytes: bytes) -> None:
    missing = client.get("/reconstructions")
    assert_error(missing, 401, "missing_api_key")
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert_error(
        client.get("/reconstructions", headers={"X-API-Key": "guess"}), 401, "invalid_api_key"
    )
    wrong = {"Authorization": "Bearer acme-test-key-0123456789abcdeX"}
    assert_error(submit(client, wrong, sphere_ply_bytes), 401, "invalid_api_key")
    assert_nothing_accepted(client)


def test_another_tenants_job_is_404_everywhere(
    client: TestClient, auth_headers: Headers, other_auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    base = f"/reconstructions/{job_id}"
    for method, path in [
        ("GET", base),
        ("GET", f"{base}/mesh"),
        ("GET", f"{base}/events"),
        ("POST", f"{base}/cancel"),
        ("DELETE", base),
    ]:
        assert_error(client.request(method, path, headers=other_auth_headers), 404, "job_not_found")
    record = context_of(client).job_store.get(job_id)
    assert record is not None and record.status is JobStatus.QUEUED


@pytest.mark.parametrize("job_id", ["..%2F..%2Fetc", "ABCDEF", "0" * 31, "g" * 32, "%2e%2e"])
def test_malformed_ids_are_404(client: TestClient, auth_headers: Headers, job_id: str) -> None:
    assert_error(client.get(f"/reconstructions/{job_id}", headers=auth_headers), 404)
    assert_error(client.delete(f"/reconstructions/{job_id}", headers=auth_headers), 404)


def test_listing_is_per_tenant_newest_first_and_paginated(
    client: TestClient, auth_headers: Headers, other_auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    mine = [submit(client, auth_headers, sphere_ply_bytes).json()["id"] for _ in range(3)]
    theirs = submit(client, other_auth_headers, sphere_ply_bytes).json()["id"]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/reconstructions", headers=auth_headers, params=params).json()
        assert len(page["items"]) <= 2
        seen += [job["id"] for job in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(mine)) and theirs not in seen
    others = client.get("/reconstructions", headers=other_auth_headers).json()["items"]
    assert [job["id"] for job in others] == [theirs]
    huge = client.get("/reconstructions", headers=auth_headers, params={"limit": 10**6})
    assert huge.status_code == 200
    bad = client.get("/reconstructions", headers=auth_headers, params={"cursor": "garbage!"})
    assert_error(bad, 400, "invalid_cursor")


# Python's json reads NaN and Infinity; 1e400 and 10**310 are beyond a float's range.
@pytest.mark.parametrize("score", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 310])
def test_crafted_cursor_with_a_non_finite_score_is_400(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes, score: str
) -> None:
    submit(client, auth_headers, sphere_ply_bytes)
    raw = f'[{score},"{"f" * 32}"]'.encode()
    cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    answer = client.get("/reconstructions", headers=auth_headers, params={"cursor": cursor})
    assert_error(answer, 400, "invalid_cursor")
    assert_error(client.get("/reconstructions", headers=auth_headers, params={"limit": 0}), 422)


# --- results -------------------------------------------------------------------------------


def test_download_before_completion_is_409_then_streams(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    assert_error(
        client.get(f"/reconstructions/{job_id}/mesh", headers=auth_headers), 409, "job_not_finished"
    )
    context = context_of(client)
    finish_job(context.job_store, context.storage, job_id, formats=("glb", "ply"))
    job = client.get(f"/reconstructions/{job_id}", headers=auth_headers).json()
    assert job["status"] == "succeeded"
    assert job["links"]["mesh"] == f"/v1/reconstructions/{job_id}/mesh"
    glb = client.get(f"/reconstructions/{job_id}/mesh", headers=auth_headers)
    assert glb.status_code == 200 and glb.content == MESH_BYTES["glb"]
    assert glb.headers["content-type"] == "model/gltf-binary"
    assert f"reconstruction-{job_id}.glb" in glb.headers["content-disposition"]
    ply = client.get(f"/reconstructions/{job_id}/mesh?format=ply", headers=auth_headers)
    assert ply.status_code == 200 and ply.content == MESH_BYTES["ply"]
    missing = client.get(f"/reconstructions/{job_id}/mesh?format=stl", headers=auth_headers)
    assert_error(missing, 404, "format_not_produced")
    assert_error(
        client.get(f"/reconstructions/{job_id}/mesh?format=fbx", headers=auth_headers), 422
    )


def test_mesh_is_served_from_the_succeeded_runs_prefix(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    """Each run writes under its own prefix and the record names the one that succeeded: the
    API serves that run's file, not a leftover of another run or the legacy location."""
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    store, storage = context.job_store, context.storage
    lost = start_job(store, job_id, worker_id="lost-worker")  # a run that died mid-upload
    storage.put_bytes(lost.prefix + mesh_object_name("glb"), b"glTF-from-a-lost-run")
    store.release_lease(job_id, lost.token)
    assert store.requeue_lost(job_id)
    storage.put_bytes(job_object_key(TENANT, job_id, mesh_object_name("glb")), b"glTF-legacy")
    run = finish_job(store, storage, job_id)
    record = store.get(job_id)
    assert record is not None and record.output_prefix == run.prefix != lost.prefix
    assert record.output_key("mesh.glb") == run.prefix + "mesh.glb"
    assert run.prefix.startswith(job_prefix(TENANT, job_id) + "runs/")
    answer = client.get(f"/reconstructions/{job_id}/mesh", headers=auth_headers)
    assert answer.status_code == 200 and answer.content == MESH_BYTES["glb"]
    storage.delete(run.prefix + mesh_object_name("glb"))
    gone = client.get(f"/reconstructions/{job_id}/mesh", headers=auth_headers)
    assert_error(gone, 404, "artifact_missing")


def test_mesh_of_a_failed_job_is_409(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    run = start_job(context.job_store, job_id)
    upload_outputs(context.storage, run, ("glb",))  # what it wrote is never published
    running = client.get(f"/reconstructions/{job_id}/mesh", headers=auth_headers)
    assert assert_error(running, 409, "job_not_finished")["detail"] == {"status": "running"}
    assert context.job_store.fail(job_id, run.token, "diverged", "training diverged")
    error = assert_error(
        client.get(f"/reconstructions/{job_id}/mesh", headers=auth_headers), 409,
        "job_not_finished",
    )
    assert error["detail"] == {"status": "failed"}
    job = client.get(f"/reconstructions/{job_id}", headers=auth_headers).json()
    assert job["status"] == "failed" and job["links"]["mesh"] is None
    assert job["error"] == {"code": "diverged", "message": "training diverged"}


def test_api_and_engine_agree_on_media_types() -> None:
    assert {fmt.value: fmt.media_type for fmt in MeshFormat} == MEDIA_TYPES


def test_s3_download_redirects_to_a_presigned_url(
    settings: Settings, seaweed_s3: S3Server, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    with TestClient(create_app(seaweed_s3.settings(settings, s3_presign_expiry_s=30))) as client:
        job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
        context = context_of(client)
        record = context.job_store.get(job_id)
        assert (
            record is not None and context.storage.get_bytes(record.input_key) == sphere_ply_bytes
        )
        finish_job(context.job_store, context.storage, job_id)
        answer = client.get(
            f"/reconstructions/{job_id}/mesh", headers=auth_headers, follow_redirects=False
        )
        assert answer.status_code == 307
        location = answer.headers["location"]
        assert location.startswith(seaweed_s3.endpoint_url) and "X-Amz-Expires=30" in location
        fetched = httpx.get(location)
        assert fetched.status_code == 200 and fetched.content == MESH_BYTES["glb"]
        assert fetched.headers["content-type"] == "model/gltf-binary"
        assert "/runs/" in urlpath(location)  # the succeeded run's own object
        assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 204
        assert context.storage.list_keys(job_prefix(TENANT, job_id)) == []
        assert context.job_store.get(job_id) is None


def urlpath(url: str) -> str:
    return httpx.URL(url).path




# --- cancel --------------------------------------------------------------------------------


def test_cancel_queued_then_cancel_twice_is_409(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    first = client.post(f"/reconstructions/{job_id}/cancel", headers=auth_headers)
    assert first.status_code == 200 and first.json()["status"] == "canceled"
    error = assert_error(
        client.post(f"/reconstructions/{job_id}/cancel", headers=auth_headers),
        409,
        "job_already_final",
    )
    assert error["detail"] == {"status": "canceled"}
    assert_error(client.get(f"/reconstructions/{job_id}/mesh", headers=auth_headers), 409)


def test_cancel_running_is_cooperative(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    store = context.job_store
    run = start_job(store, job_id)
    answer = client.post(f"/reconstructions/{job_id}/cancel", headers=auth_headers)
    assert answer.status_code == 202 and answer.json()["status"] == "running"
    assert store.is_cancel_requested(job_id)
    upload_outputs(context.storage, run, ("glb",))
    refused = store.succeed(job_id, run.token, metrics=METRICS, warnings=[], formats=["glb"],
                            output_prefix=run.prefix)
    assert not refused and refused.reason == "cancel_requested"  # a 202 never ends succeeded
    assert store.cancel_run(job_id, run.token)  # what the worker does when it sees the flag
    assert client.get(f"/reconstructions/{job_id}", headers=auth_headers).json()["status"] == (
        "canceled"
    )
    assert_error(client.post(f"/reconstructions/{job_id}/cancel", headers=auth_headers), 409)


# --- delete --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweeperHost:
    """What `recon.worker.reaper` needs of the worker's app (`reaper.ReaperHost`)."""

    recon_settings: Settings
    job_store: JobStore
    job_queue: JobQueue
    storage: ObjectStorage


def sweep(context: ServiceContext) -> reaper.ReapReport:
    """One pass of the worker's sweeper over recorded deletions."""
    host = SweeperHost(context.settings, context.job_store, context.queue, context.storage)
    report = reaper.ReapReport()
    reaper.sweep_deletions(host, report)
    return report


def assert_hidden(client: TestClient, headers: Headers, job_id: str) -> None:
    """The job is gone for its tenant: every read answers 404 and the listing omits it."""
    base = f"/reconstructions/{job_id}"
    for path in (base, f"{base}/mesh", f"{base}/events"):
        assert_error(client.get(path, headers=headers), 404, "job_not_found")
    assert_error(client.post(f"{base}/cancel", headers=headers), 404, "job_not_found")
    listed = client.get("/reconstructions", headers=headers).json()["items"]
    assert job_id not in [job["id"] for job in listed]


def assert_gone(context: ServiceContext, job_id: str) -> None:
    """Nothing of the job is left: no object, no record, no pending deletion."""
    assert context.storage.list_keys(job_prefix(TENANT, job_id)) == []
    assert context.job_store.get(job_id) is None
    assert job_id not in context.job_store.deleting(limit=100)


def test_delete_queued_job_is_204_and_gone(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    key = {"Idempotency-Key": "delete-me"}
    job_id = submit(client, {**auth_headers, **key}, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    assert context.storage.list_keys(job_prefix(TENANT, job_id))  # the input
    assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 204
    assert_hidden(client, auth_headers, job_id)
    assert_gone(context, job_id)
    assert context.job_store.active_count(TENANT) == 0
    assert_error(client.delete(f"/reconstructions/{job_id}", headers=auth_headers), 404)
    again = submit(client, {**auth_headers, **key}, sphere_ply_bytes)  # the key is free again
    assert again.status_code == 202 and again.json()["id"] != job_id


def test_delete_removes_artifacts_and_record(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    finish_job(context.job_store, context.storage, job_id)
    assert context.storage.list_keys(job_prefix(TENANT, job_id))
    assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 204
    assert_gone(context, job_id)
    assert_error(client.get(f"/reconstructions/{job_id}", headers=auth_headers), 404)
    assert_error(client.delete(f"/reconstructions/{job_id}", headers=auth_headers), 404)


def test_delete_running_job_is_202_then_the_sweeper_finishes_it(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    store = context.job_store
    run = start_job(store, job_id)
    upload_outputs(context.storage, run, ("glb",))  # the run is half-way through its uploads
    assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 202
    assert_hidden(client, auth_headers, job_id)
    assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 202
    record = store.get(job_id)
    assert record is not None and record.status is JobStatus.RUNNING
    assert record.deleted_at is not None and store.is_cancel_requested(job_id)
    assert store.deleting(limit=10) == [job_id]
    assert sweep(context).deleted == []  # the run has not stopped yet: nothing is removed
    assert context.storage.list_keys(run.prefix)
    assert store.cancel_run(job_id, run.token)  # the worker saw the flag
    assert sweep(context).deleted == [job_id]
    assert_gone(context, job_id)
    assert store.active_count(TENANT) == 0
    assert_error(client.delete(f"/reconstructions/{job_id}", headers=auth_headers), 404)


def test_repeated_delete_finishes_once_the_run_stopped(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    run = start_job(context.job_store, job_id)
    assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 202
    assert context.job_store.cancel_run(job_id, run.token)
    assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 204
    assert_gone(context, job_id)


@pytest.mark.parametrize("worker_first", [True, False], ids=["published-first", "deleted-first"])
def test_delete_racing_a_finishing_worker_leaves_no_files(
    client: TestClient,
    auth_headers: Headers,
    sphere_ply_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
    worker_first: bool,
) -> None:
    """The worker's own `publish` and a DELETE, in either order: the deletion wins and
    nothing is left, neither files nor record."""
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    store, storage = context.job_store, context.storage
    test_run = start_job(store, job_id)
    upload_outputs(storage, test_run, ("glb",))
    record = store.get(job_id)
    assert record is not None
    worker = JobContext(context.settings, store, storage, worker_id="test-worker")
    run = Run(record, test_run.token, test_run.prefix)
    outputs = JobOutputs(metrics=METRICS, warnings=[], formats=["glb"])
    outcomes: list[Outcome] = []
    if worker_first:
        mark_deleted = store.mark_deleted

        def publish_then_mark(deleted_id: str) -> JobStatus | None:
            outcomes.append(publish(worker, run, outputs))
            return mark_deleted(deleted_id)

        monkeypatch.setattr(store, "mark_deleted", publish_then_mark)
        assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 204
        assert outcomes == [Outcome.SUCCEEDED]
    else:
        assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 202
        assert publish(worker, run, outputs) is Outcome.CANCELED  # refused, outputs removed
        assert storage.list_keys(test_run.prefix) == []
        assert sweep(context).deleted == [job_id]
    assert_gone(context, job_id)


def test_delete_when_storage_cannot_delete_is_202_and_swept_later(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    """Storage refusing the removal leaves the deletion recorded, never half done: the job is
    hidden at once, listed by `deleting()`, and a later sweep removes files and record."""
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    finish_job(context.job_store, context.storage, job_id)
    folder = context.settings.objects_dir / job_prefix(TENANT, job_id)
    with undeletable(folder):
        assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == (
            202
        )
        assert_hidden(client, auth_headers, job_id)
        assert context.job_store.deleting(limit=10) == [job_id]
        record = context.job_store.get(job_id)
        assert record is not None and record.deleted_at is not None
        assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == (
            202
        )
        assert sweep(context).deleted == []  # still refused: still pending, not lost
        assert context.job_store.deleting(limit=10) == [job_id]
    assert sweep(context).deleted == [job_id]
    assert_gone(context, job_id)


def test_s3_partial_delete_failure_is_202_and_swept_later(
    settings: Settings,
    seaweed_s3: S3Server,
    auth_headers: Headers,
    sphere_ply_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with TestClient(create_app(seaweed_s3.settings(settings))) as client:
        job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
        context = context_of(client)
        storage = context.storage
        assert isinstance(storage, S3Storage)
        refused = {"Errors": [{"Key": "k", "Code": "SlowDown", "Message": "try later"}]}
        with monkeypatch.context() as patch:
            patch.setattr(storage.client, "delete_objects", lambda **_: refused)
            answer = client.delete(f"/reconstructions/{job_id}", headers=auth_headers)
            assert answer.status_code == 202, answer.text
            assert_hidden(client, auth_headers, job_id)
            assert context.job_store.deleting(limit=10) == [job_id]
            assert storage.list_keys(job_prefix(TENANT, job_id))  # kept, and still referenced
        assert sweep(context).deleted == [job_id]
        assert_gone(context, job_id)


# --- events --------------------------------------------------------------------------------


def parse_events(text: str) -> list[tuple[int, str, dict]]:
    """The stream's messages as (id, event name, data); keep-alive comments are skipped."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if "event" in fields:
            events.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return events


def read_events(
    client: TestClient, headers: Headers, job_id: str, last_event_id: str | None = None
) -> list[tuple[int, str, dict]]:
    extra = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    with client.stream(
        "GET", f"/reconstructions/{job_id}/events", headers={**headers, **extra}
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        return parse_events(stream.read().decode())


@pytest.fixture
def short_streams(settings: Settings) -> Settings:
    """Event streams that give up after 0.6 s (the `timeout` event)."""
    return Settings(**{**settings.model_dump(), "events_max_duration_s": 0.6})


def test_events_stream_progress_then_final_status(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    store = context.job_store
    versions = [store.version(job_id)]

    def work() -> None:
        time.sleep(0.2)
        run = start_job(store, job_id)
        versions.append(store.version(job_id))
        for step in (10, 20, 30):
            time.sleep(0.2)
            assert store.heartbeat(job_id, run.token)  # invisible: no event
            progress = JobProgress(stage="train", step=step, total=30, fraction=step / 30)
            assert store.heartbeat(job_id, run.token, progress)
            versions.append(store.version(job_id))
        time.sleep(0.2)
        succeed_run(store, context.storage, run)
        versions.append(store.version(job_id))

    worker = threading.Thread(target=work)
    worker.start()
    events = read_events(client, auth_headers, job_id)
    worker.join()
    names = [name for _, name, _ in events]
    assert names[0] == "progress" and names[-1] == "succeeded" and names.count("succeeded") == 1
    steps = [data["progress"]["step"] for _, _, data in events if data["status"] == "running"]
    assert steps == sorted(steps) and len(set(steps)) >= 2
    assert events[-1][2]["formats"] == ["glb"]
    ids = [event_id for event_id, _, _ in events]
    assert ids == sorted(set(ids))  # one event per version, in order
    assert set(ids) <= set(versions)  # every id is a version the record had
    assert ids[0] >= 1 and ids[-1] == versions[-1] == store.version(job_id)


def test_reconnecting_to_a_finished_job_after_an_older_id_gets_the_final_event(
    short_streams: Settings, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    with TestClient(create_app(short_streams)) as client:
        job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
        context = context_of(client)
        finish_job(context.job_store, context.storage, job_id)
        version = context.job_store.version(job_id)
        assert version is not None
        fresh = read_events(client, auth_headers, job_id)
        assert [(i, name) for i, name, _ in fresh] == [(version, "succeeded")]
        for seen in ("1", str(version - 1), "not-a-number"):
            events = read_events(client, auth_headers, job_id, last_event_id=seen)
            assert [(i, name) for i, name, _ in events] == [(version, "succeeded")], seen


def test_reconnecting_to_a_finished_job_with_its_last_id_gets_only_the_final_event(
    short_streams: Settings, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    with TestClient(create_app(short_streams)) as client:
        job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
        context = context_of(client)
        finish_job(context.job_store, context.storage, job_id)
        last_id = read_events(client, auth_headers, job_id)[-1][0]
        events = read_events(client, auth_headers, job_id, last_event_id=str(last_id))
        assert [(i, name) for i, name, _ in events] == [(last_id, "succeeded")]


def test_reconnecting_to_a_running_job_waits_for_the_next_change(
    short_streams: Settings, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    with TestClient(create_app(short_streams)) as client:
        job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
        store = context_of(client).job_store
        run = start_job(store, job_id)
        first = read_events(client, auth_headers, job_id)
        last_id = first[0][0]
        assert [(i, name) for i, name, _ in first] == [(last_id, "progress"), (last_id, "timeout")]
        assert last_id == store.version(job_id)
        quiet = read_events(client, auth_headers, job_id, last_event_id=str(last_id))
        assert [(i, name) for i, name, _ in quiet] == [(last_id, "timeout")]  # nothing new

        def change() -> None:
            time.sleep(0.2)
            assert store.heartbeat(job_id, run.token)  # not a change a client sees
            time.sleep(0.1)
            assert store.heartbeat(job_id, run.token, JobProgress(stage="train", step=5, total=9))

        changer = threading.Thread(target=change)
        changer.start()
        events = read_events(client, auth_headers, job_id, last_event_id=str(last_id))
        changer.join()
        assert [(i, name) for i, name, _ in events] == [
            (last_id + 1, "progress"), (last_id + 1, "timeout")
        ]
        assert events[0][2]["progress"]["step"] == 5


def test_events_of_a_job_deleted_while_streaming(
    short_streams: Settings, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    with TestClient(create_app(short_streams)) as client:
        job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
        store = context_of(client).job_store
        start_job(store, job_id)

        def delete() -> None:
            time.sleep(0.2)
            store.mark_deleted(job_id)

        deleter = threading.Thread(target=delete)
        deleter.start()
        events = read_events(client, auth_headers, job_id)
        deleter.join()
        names = [name for _, name, _ in events]
        assert names == ["progress", "deleted"]
        assert events[-1][2] == {"status": "deleted"} and events[-1][0] > events[0][0]


def test_events_stream_is_bounded(
    settings: Settings, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    short = Settings(**{**settings.model_dump(), "events_max_duration_s": 0.3})
    with TestClient(create_app(short)) as client:
        job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
        started = time.monotonic()
        answer = client.get(f"/reconstructions/{job_id}/events", headers=auth_headers)
        assert time.monotonic() - started < 5
        names = [name for _, name, _ in parse_events(answer.text)]
        assert names[0] == "progress" and names[-1] == "timeout"
