"""/reconstructions over HTTP with real Redis and real storage: happy paths and every error."""

import base64
import json
import threading
import time
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient

from recon.api.app import create_app
from recon.api.context import ServiceContext
from recon.engine.export import MEDIA_TYPES
from recon.engine.formats.pointcloud import load_point_cloud
from recon.infra.settings import Settings
from recon.infra.storage import job_object_key, job_prefix, mesh_object_name
from recon.infra.storage.s3 import S3Storage
from recon.schemas import JobProgress, JobStatus, MeshFormat
from tests.api.support import MESH_BYTES, finish_job, jpeg_bytes, nan_ply
from tests.conftest import TENANT, S3Server, sphere_points

Headers = dict[str, str]


def context_of(client: TestClient) -> ServiceContext:
    context: ServiceContext = client.app.state.context  # type: ignore[attr-defined]
    return context


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
    assert response.headers["location"] == f"/reconstructions/{job['id']}"
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
    assert (
        job["status"] == "succeeded" and job["links"]["mesh"] == f"/reconstructions/{job_id}/mesh"
    )
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
        assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 204
        assert context.storage.list_keys(job_prefix(TENANT, job_id)) == []


# --- cancel, delete, events ----------------------------------------------------------------


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
    store = context_of(client).job_store
    store.mark_running(job_id, "w")
    answer = client.post(f"/reconstructions/{job_id}/cancel", headers=auth_headers)
    assert answer.status_code == 202 and answer.json()["status"] == "running"
    assert store.is_cancel_requested(job_id)
    assert store.mark_canceled(job_id)  # what the worker does when it sees the flag
    assert_error(client.post(f"/reconstructions/{job_id}/cancel", headers=auth_headers), 409)


def test_delete_removes_artifacts_and_record(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    finish_job(context.job_store, context.storage, job_id)
    assert context.storage.list_keys(job_prefix(TENANT, job_id))
    assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 204
    assert context.storage.list_keys(job_prefix(TENANT, job_id)) == []
    assert_error(client.get(f"/reconstructions/{job_id}", headers=auth_headers), 404)
    assert_error(client.delete(f"/reconstructions/{job_id}", headers=auth_headers), 404)


def test_delete_racing_a_finishing_worker_leaves_no_files(
    client: TestClient,
    auth_headers: Headers,
    sphere_ply_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    store, storage = context.job_store, context.storage
    store.mark_running(job_id, "w")
    delete_prefix = storage.delete_prefix

    def worker_finishes_meanwhile(prefix: str) -> int:
        removed = delete_prefix(prefix)
        # What the worker does when its run ends now: upload, then mark the job succeeded,
        # and remove its uploads when the record is gone.
        storage.put_bytes(job_object_key(TENANT, job_id, mesh_object_name("glb")), b"glTF")
        if not store.mark_succeeded(job_id, metrics={}, warnings=[], formats=["glb"]):
            assert store.get(job_id) is None
            delete_prefix(prefix)
        return removed

    monkeypatch.setattr(storage, "delete_prefix", worker_finishes_meanwhile)
    assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 204
    assert store.get(job_id) is None
    assert storage.list_keys(job_prefix(TENANT, job_id)) == []


def test_s3_partial_delete_failure_is_503(
    settings: Settings,
    seaweed_s3: S3Server,
    auth_headers: Headers,
    sphere_ply_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with TestClient(create_app(seaweed_s3.settings(settings))) as client:
        job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
        storage = context_of(client).storage
        assert isinstance(storage, S3Storage)
        refused = {"Errors": [{"Key": "k", "Code": "SlowDown", "Message": "try later"}]}
        monkeypatch.setattr(storage.client, "delete_objects", lambda **_: refused)
        answer = client.delete(f"/reconstructions/{job_id}", headers=auth_headers)
        assert_error(answer, 503, "dependency_unavailable")


def test_delete_running_job_flags_it_for_the_worker(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    store = context_of(client).job_store
    store.mark_running(job_id, "w")
    assert client.delete(f"/reconstructions/{job_id}", headers=auth_headers).status_code == 204
    assert store.get(job_id) is None and store.is_cancel_requested(job_id)
    assert store.active_count(TENANT) == 0


def parse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_events_stream_progress_then_final_status(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)

    def work() -> None:
        time.sleep(0.2)
        context.job_store.mark_running(job_id, "w")
        for step in (10, 20, 30):
            progress = JobProgress(stage="train", step=step, total=30, fraction=step / 30)
            context.job_store.update_progress(job_id, progress)
            time.sleep(0.2)
        finish_job_from_running(context, job_id)

    worker = threading.Thread(target=work)
    worker.start()
    with client.stream("GET", f"/reconstructions/{job_id}/events", headers=auth_headers) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        text = stream.read().decode()
    worker.join()
    events = parse_events(text)
    names = [name for name, _ in events]
    assert names[0] == "progress" and names[-1] == "succeeded" and names.count("succeeded") == 1
    steps = [data["progress"]["step"] for name, data in events if data["status"] == "running"]
    assert steps == sorted(steps) and len(set(steps)) >= 2
    assert events[-1][1]["formats"] == ["glb"]


def finish_job_from_running(context: ServiceContext, job_id: str) -> None:
    context.job_store.mark_succeeded(job_id, metrics={}, warnings=[], formats=["glb"])


def test_events_stream_is_bounded(
    settings: Settings, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    short = Settings(**{**settings.model_dump(), "events_max_duration_s": 0.3})
    with TestClient(create_app(short)) as client:
        job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
        started = time.monotonic()
        answer = client.get(f"/reconstructions/{job_id}/events", headers=auth_headers)
        assert time.monotonic() - started < 5
        names = [name for name, _ in parse_events(answer.text)]
        assert names[0] == "progress" and names[-1] == "timeout"
