"""Security scenarios: tenant isolation, secrets kept out of logs and answers, presigned URLs
scoped to one object and expiring, and path, id and filename tricks refused.

Each scenario runs against the real app on the test Redis (the `client` fixture, local storage)
or, for presigned URLs, on the session's SeaweedFS S3 server, and records what it measured with
`record_scenario("security", ...)` for docs/RELIABILITY.md. A worker's part (outputs, then the
final status) is played through the real job store and storage by `tests.api.support`.
"""

import dataclasses
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from recon.api.app import create_app
from recon.infra.job_store import JobStore
from recon.infra.settings import Settings
from recon.infra.storage import StorageUnavailable, build_storage, run_prefix
from recon.worker.job_run import JobContext, Outcome, Run, hand_back_for_retry
from tests.api.support import MESH_BYTES, context_of, finish_job
from tests.conftest import API_KEY, OTHER_API_KEY, TEST_REDIS_URL, S3Server, free_port, wait_until
from tests.reliability.record import record_scenario

pytestmark = pytest.mark.reliability

API_START_TIMEOUT_S = 30.0
PRESIGN_WAIT_S = 3.0
"""Waited past a 1 s presigned-URL lifetime (S3 dates have whole seconds)."""


def submit(client: TestClient, headers: dict[str, str], ply: bytes, **extra: Any) -> str:
    """POST a point cloud; return the new job's id."""
    answer = client.post(
        "/reconstructions", headers=headers, files={"file": ("s.ply", ply)}, **extra
    )
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def fail_through_the_worker(store: JobStore, dead_s3: Settings, job_id: str) -> None:
    """Fail a job the way a worker does when storage stays unreachable on its last try: the
    real exception (botocore text naming the endpoint) goes through the worker's own path."""
    token = f"security-test/{uuid.uuid4().hex}"
    assert store.acquire_lease(job_id, token, 30)
    started = store.start_run(job_id, token, "security-test")
    assert started is not None
    storage = build_storage(dead_s3)
    with pytest.raises(StorageUnavailable) as outage:
        storage.ping()
    assert str(dead_s3.s3_endpoint_url) in str(outage.value) or "127.0.0.1" in str(outage.value)
    last_try = dataclasses.replace(started, retries=dead_s3.max_attempts - 1)
    ctx = JobContext(settings=dead_s3, store=store, storage=storage, worker_id="security-test")
    run = Run(last_try, token, run_prefix(started.tenant, job_id, uuid.uuid4().hex))
    assert hand_back_for_retry(ctx, run, outage.value) is Outcome.FAILED


def answer_shape(answer: httpx.Response) -> tuple[int, Any]:
    """What a client can learn from an answer: its status and its body."""
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, answer.text


# --- tenant isolation --------------------------------------------------------------------------


def test_another_tenants_job_is_indistinguishable_from_an_unknown_one(
    client: TestClient,
    auth_headers: dict[str, str],
    other_auth_headers: dict[str, str],
    sphere_ply_bytes: bytes,
    request: pytest.FixtureRequest,
) -> None:
    context = context_of(client)
    done = submit(client, {**auth_headers, "Idempotency-Key": "shared-key"}, sphere_ply_bytes)
    finish_job(context.job_store, context.storage, done)
    queued = submit(client, auth_headers, sphere_ply_bytes)
    unknown = uuid.uuid4().hex

    probes: dict[str, Callable[[str], httpx.Response]] = {
        "GET job": lambda i: client.get(f"/reconstructions/{i}", headers=other_auth_headers),
        "GET mesh": lambda i: client.get(
            f"/reconstructions/{i}/mesh", headers=other_auth_headers, follow_redirects=False
        ),
        "GET events": lambda i: client.get(
            f"/reconstructions/{i}/events", headers=other_auth_headers
        ),
        "POST cancel": lambda i: client.post(
            f"/reconstructions/{i}/cancel", headers=other_auth_headers
        ),
        "DELETE": lambda i: client.delete(f"/reconstructions/{i}", headers=other_auth_headers),
    }
    foreign: Counter[int] = Counter()
    same_as_unknown = True
    for name, probe in probes.items():
        for job_id in (done, queued):
            seen, baseline = answer_shape(probe(job_id)), answer_shape(probe(unknown))
            foreign[seen[0]] += 1
            assert seen[0] == 404, (name, seen)
            # The body may name the id it was asked about, nothing else differs.
            assert str(seen).replace(job_id, "ID") == str(baseline).replace(unknown, "ID")
            same_as_unknown &= str(seen).replace(job_id, "ID") == str(baseline).replace(
                unknown, "ID"
            )

    listing = client.get("/reconstructions", headers=other_auth_headers)
    assert listing.status_code == 200 and listing.json()["items"] == []
    assert done not in listing.text and queued not in listing.text
    # An Idempotency-Key is the tenant's own: the same key elsewhere makes a new job.
    theirs = submit(client, {**other_auth_headers, "Idempotency-Key": "shared-key"},
                    sphere_ply_bytes)
    assert theirs not in (done, queued)

    # The owner still has both jobs, untouched by the other tenant's cancel and delete.
    owner_view = {i: client.get(f"/reconstructions/{i}", headers=auth_headers) for i in
                  (done, queued)}
    assert owner_view[done].json()["status"] == "succeeded"
    assert owner_view[queued].json()["status"] == "queued"
    mesh = client.get(f"/reconstructions/{done}/mesh", headers=auth_headers)
    assert mesh.status_code == 200 and mesh.content == MESH_BYTES["glb"]
    owner_delete = client.delete(f"/reconstructions/{done}", headers=auth_headers)
    assert owner_delete.status_code in (202, 204)
    assert client.get(f"/reconstructions/{done}", headers=auth_headers).status_code == 404

    record_scenario(
        "security",
        "another tenant's job id answers exactly like an unknown id, on every endpoint",
        {
            "endpoints": list(probes),
            "jobs": ["succeeded", "queued"],
            "foreign_answers": dict(foreign),
            "same_as_unknown_id": same_as_unknown,
            "foreign_listing_items": 0,
            "idempotency_key_shared": False,
            "owner_jobs_unaffected": True,
            "owner_delete": owner_delete.status_code,
        },
        passed=True,
        test=request.node.nodeid,
    )


# --- secrets and infrastructure text --------------------------------------------------------------


def test_job_errors_and_outages_carry_no_infrastructure_text(
    client: TestClient,
    settings: Settings,
    auth_headers: dict[str, str],
    sphere_ply_bytes: bytes,
    request: pytest.FixtureRequest,
) -> None:
    dead_port = free_port()
    dead_s3 = Settings(**{
        **settings.model_dump(),
        "storage_backend": "s3",
        "s3_endpoint_url": f"http://127.0.0.1:{dead_port}",
        "s3_access_key_id": "nobody-at-all",
        "s3_secret_access_key": "nothing-here-0123456789",
    })
    infra_words = (str(dead_port), "127.0.0.1", "botocore", "http://")
    store = context_of(client).job_store
    job_id = submit(client, auth_headers, sphere_ply_bytes)
    fail_through_the_worker(store, dead_s3, job_id)
    seen = {
        "job": client.get(f"/reconstructions/{job_id}", headers=auth_headers),
        "listing": client.get("/reconstructions", headers=auth_headers),
        "events": client.get(f"/reconstructions/{job_id}/events", headers=auth_headers),
    }
    assert seen["job"].json()["error"]["code"] == "infrastructure_error"
    assert "event: failed" in seen["events"].text
    leaks = {name: [w for w in infra_words if w in a.text] for name, a in seen.items()}

    # Storage down while submitting: 503 without the endpoint it could not reach.
    with TestClient(create_app(dead_s3)) as outage_client:
        outage = outage_client.post(
            "/reconstructions", headers=auth_headers, files={"file": ("s.ply", sphere_ply_bytes)}
        )
    assert outage.status_code == 503
    outage_leaks = [w for w in infra_words if w in outage.text]
    passed = not any(leaks.values()) and not outage_leaks
    record_scenario(
        "security",
        "job errors and outage answers carry no hostnames, endpoints or client errors",
        {"leaks": {**leaks, "storage_outage_503": outage_leaks}, "outage_status": 503},
        passed=passed,
        test=request.node.nodeid,
    )
    assert passed, (leaks, outage_leaks, seen["job"].json()["error"], outage.text)


def test_api_keys_never_reach_the_logs_of_the_app(
    client: TestClient,
    auth_headers: dict[str, str],
    other_auth_headers: dict[str, str],
    sphere_ply_bytes: bytes,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    wrong = f"wrong-{secrets.token_hex(16)}"
    with caplog.at_level(logging.DEBUG):
        job_id = submit(client, auth_headers, sphere_ply_bytes)
        answers = [
            client.get(f"/reconstructions/{job_id}", headers=auth_headers),
            client.get("/reconstructions", headers=other_auth_headers),
            client.get("/reconstructions", headers={"Authorization": f"Bearer {wrong}"}),
            client.get("/reconstructions", headers={"X-API-Key": wrong}),
            client.get(f"/reconstructions/{job_id}", headers={"X-API-Key": wrong}),
        ]
    statuses = [a.status_code for a in answers]
    assert statuses == [200, 200, 401, 401, 401]
    assert all(wrong not in a.text and API_KEY not in a.text for a in answers)
    assert "GET" in caplog.text  # the requests were logged ...
    found = [k for k in (API_KEY, OTHER_API_KEY, wrong) if k in caplog.text]  # ... the keys not
    record_scenario(
        "security",
        "API keys (valid and invalid) never appear in the app's logs at DEBUG",
        {"requests": len(answers) + 1, "statuses": statuses, "log_records": len(caplog.records),
         "keys_found": len(found)},
        passed=not found,
        test=request.node.nodeid,
    )
    assert not found


def test_api_keys_never_reach_the_logs_of_a_real_api_process(
    tmp_path: Path,
    redis_client: object,
    sphere_ply_bytes: bytes,
    request: pytest.FixtureRequest,
) -> None:
    port, wrong = free_port(), f"wrong-{secrets.token_hex(16)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env.update({
        "RECON_REDIS_URL": TEST_REDIS_URL,
        "RECON_DATA_DIR": str(tmp_path / "data"),
        "RECON_API_KEYS": f"acme:{API_KEY},globex:{OTHER_API_KEY}",
        "RECON_LOG_LEVEL": "debug",
    })
    log_path = tmp_path / "api.log"
    with open(log_path, "wb") as log:
        api = subprocess.Popen(
            [sys.executable, "-m", "recon.cli", "api", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{base}/healthz", timeout=1).status_code == 200,
                   API_START_TIMEOUT_S, "recon api", alive=lambda: api.poll() is None)
        with httpx.Client(base_url=base, timeout=10) as http:
            created = http.post("/reconstructions", headers={"Authorization": f"Bearer {API_KEY}"},
                                files={"file": ("s.ply", sphere_ply_bytes)})
            job_id = created.json()["id"]
            statuses = [
                created.status_code,
                http.get(f"/reconstructions/{job_id}", headers={"X-API-Key": API_KEY}).status_code,
                http.get("/reconstructions", headers={"X-API-Key": OTHER_API_KEY}).status_code,
                http.get("/reconstructions", headers={"Authorization": f"Bearer {wrong}"}
                         ).status_code,
                http.get("/reconstructions", headers={"X-API-Key": wrong}).status_code,
                http.get(f"/reconstructions/{job_id}/mesh", headers={"X-API-Key": wrong}
                         ).status_code,
            ]
    finally:
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(api.pid, signal.SIGKILL)
            api.wait()
    output = log_path.read_text(errors="replace")
    assert statuses == [202, 200, 200, 401, 401, 401], output[-3000:]
    assert f"GET /reconstructions/{job_id}" in output  # uvicorn logged the requests ...
    found = [k for k in (API_KEY, OTHER_API_KEY, wrong) if k in output]  # ... not the keys
    record_scenario(
        "security",
        "API keys never appear in a `recon api` process's output at RECON_LOG_LEVEL=debug",
        {"requests": len(statuses), "statuses": statuses, "log_lines": output.count("\n"),
         "keys_found": len(found)},
        passed=not found,
        test=request.node.nodeid,
    )
    assert not found


# --- presigned URLs ---------------------------------------------------------------------------


def _presigned_mesh_url(client: TestClient, job_id: str) -> str:
    answer = client.get(f"/reconstructions/{job_id}/mesh", headers={"X-API-Key": API_KEY},
                        follow_redirects=False)
    assert answer.status_code == 307, answer.text
    return answer.headers["location"]


def _with_key(url: str, bucket: str, key: str) -> str:
    """`url` with its path pointing at another object (query, signature and all kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{bucket}/{key}"))


def test_presigned_url_reaches_its_one_object_only(
    settings: Settings,
    seaweed_s3: S3Server,
    sphere_ply_bytes: bytes,
    request: pytest.FixtureRequest,
) -> None:
    s3_settings = seaweed_s3.settings(settings, s3_presign_expiry_s=120)
    with TestClient(create_app(s3_settings)) as client:
        context = context_of(client)
        job_id = submit(client, {"X-API-Key": API_KEY}, sphere_ply_bytes)
        finish_job(context.job_store, context.storage, job_id)
        other_tenant_job = submit(client, {"X-API-Key": OTHER_API_KEY}, sphere_ply_bytes)
        url = _presigned_mesh_url(client, job_id)
        own_input = context.job_store.get(job_id).input_key
        foreign_input = context.job_store.get(other_tenant_job).input_key
    assert seaweed_s3.secret_access_key not in url

    fetched = httpx.get(url, timeout=10)
    assert fetched.status_code == 200 and fetched.content == MESH_BYTES["glb"]
    tampered = {
        "same job's input": _with_key(url, seaweed_s3.bucket, own_input),
        "another tenant's input": _with_key(url, seaweed_s3.bucket, foreign_input),
        "longer expiry": url.replace("X-Amz-Expires=120", "X-Amz-Expires=604800"),
    }
    assert tampered["longer expiry"] != url
    refused = {name: httpx.get(u, timeout=10).status_code for name, u in tampered.items()}
    # The objects exist: a URL signed for one of them does fetch it.
    direct = httpx.get(presign_directly(seaweed_s3, own_input), timeout=10).status_code
    passed = fetched.status_code == 200 and set(refused.values()) == {403} and direct == 200
    record_scenario(
        "security",
        "a presigned URL fetches its one object; pointed at another object it fails (403)",
        {"own_object": fetched.status_code, "tampered": refused, "control_signed_fetch": direct},
        passed=passed,
        test=request.node.nodeid,
    )
    assert passed, (refused, direct)


def test_presigned_url_expires(
    settings: Settings,
    seaweed_s3: S3Server,
    sphere_ply_bytes: bytes,
    request: pytest.FixtureRequest,
) -> None:
    s3_settings = seaweed_s3.settings(settings, s3_presign_expiry_s=1)
    with TestClient(create_app(s3_settings)) as client:
        context = context_of(client)
        job_id = submit(client, {"X-API-Key": API_KEY}, sphere_ply_bytes)
        finish_job(context.job_store, context.storage, job_id)
        fresh = None
        for _ in range(5):  # signing times have whole seconds: a URL may be born nearly expired
            url = _presigned_mesh_url(client, job_id)
            if httpx.get(url, timeout=5).status_code == 200:
                fresh = url
                break
    assert fresh is not None, "no 1 s presigned URL worked even right away"
    time.sleep(PRESIGN_WAIT_S)
    expired = httpx.get(fresh, timeout=5).status_code
    record_scenario(
        "security",
        "a presigned URL with RECON_S3_PRESIGN_EXPIRY_S=1 is refused after it expires",
        {"fresh": 200, f"after_{PRESIGN_WAIT_S:g}_s": expired},
        passed=expired == 403,
        test=request.node.nodeid,
    )
    assert expired == 403


def presign_directly(server: S3Server, key: str) -> str:
    """A GET URL for `key` signed with the test server's credentials (the control case)."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key_id,
        aws_secret_access_key=server.secret_access_key,
        region_name=server.region,
    )
    try:
        params = {"Bucket": server.bucket, "Key": key}
        return str(s3.generate_presigned_url("get_object", Params=params, ExpiresIn=60))
    finally:
        s3.close()


# --- traversal and malformed ids ----------------------------------------------------------------

HOSTILE_IDS = {
    "encoded traversal": "..%2F..%2Fetc%2Fpasswd",
    "dot-dot": "..",
    "encoded dot-dot": "%2e%2e",
    "dots": "0123456789abcdef.123456789abcdef",
    "slash": "0123456789abcdef%2F0123456789abcd",
    "backslash": "0123456789abcdef%5C0123456789abcd",
    "unicode": "é" * 32,
    "fullwidth digits": "０" * 32,
    "33 hex": "a" * 33,
    "31 hex": "a" * 31,
    "uppercase hex": uuid.uuid4().hex.upper(),
    "nul byte": "0123456789abcdef%000123456789abcd",
    "space": "0123456789abcdef%200123456789abcd",
    "job key": "tenants%2Facme%2Fjobs",
}
HOSTILE_FILENAMES = (
    "../" * 4 + "etc/passwd.ply",  # built, so no literal path in this file leaves the repo
    "..\\..\\windows\\system32\\x.ply",
    "/etc/cron.d/evil.ply",
    "tenants/globex/jobs/x/input.ply",
    "%2e%2e%2fx.ply",
    "x.ply\x00.sh",
)


def test_hostile_ids_formats_and_filenames_are_refused(
    settings: Settings,
    auth_headers: dict[str, str],
    sphere_ply_bytes: bytes,
    request: pytest.FixtureRequest,
) -> None:
    roomy = Settings(**{**settings.model_dump(), "max_concurrent_jobs_per_tenant": 100})
    with TestClient(create_app(roomy)) as client:
        hostile_requests(client, roomy, auth_headers, sphere_ply_bytes, request)


def hostile_requests(
    client: TestClient,
    settings: Settings,
    auth_headers: dict[str, str],
    sphere_ply_bytes: bytes,
    request: pytest.FixtureRequest,
) -> None:
    context = context_of(client)
    done = submit(client, auth_headers, sphere_ply_bytes)
    finish_job(context.job_store, context.storage, done)

    id_answers: dict[str, list[int]] = {}
    for name, hostile in HOSTILE_IDS.items():
        # versioned: ".." is resolved by the client, and the unversioned "/reconstructions/.."
        # would land on the (public) web page at "/"
        base = f"/v1/reconstructions/{hostile}"
        id_answers[name] = [
            client.get(base, headers=auth_headers).status_code,
            client.get(f"{base}/mesh", headers=auth_headers).status_code,
            client.get(f"{base}/events", headers=auth_headers).status_code,
            client.post(f"{base}/cancel", headers=auth_headers).status_code,
            client.delete(base, headers=auth_headers).status_code,
        ]
    bad_ids = {name: codes for name, codes in id_answers.items() if set(codes) - {404, 405}}

    format_answers = {
        fmt: client.get(f"/reconstructions/{done}/mesh", params={"format": fmt},
                        headers=auth_headers, follow_redirects=False).status_code
        for fmt in ("../x", "../../metrics.json", "glb/../../input", "GLB", "", "json")
    }
    bad_formats = {fmt: code for fmt, code in format_answers.items() if code != 422}

    stored_keys: dict[str, str] = {}
    for filename in HOSTILE_FILENAMES:
        answer = client.post("/reconstructions", headers=auth_headers,
                             files={"file": (filename, sphere_ply_bytes)})
        assert answer.status_code in (202, 422), (filename, answer.text)
        if answer.status_code == 202:
            record = context.job_store.get(answer.json()["id"])
            stored_keys[filename] = record.input_key
    bad_keys = {
        name: key for name, key in stored_keys.items()
        if ".." in key or "\\" in key or "etc" in key or "globex" in key
        or not key.startswith("tenants/acme/jobs/")
    }
    unexpected_part = client.post("/reconstructions", headers=auth_headers,
                                  files={"../file": ("s.ply", sphere_ply_bytes)}).status_code
    objects_root = settings.objects_dir.resolve()
    written = [p for p in settings.data_dir.resolve().rglob("*") if p.is_file()]
    escaped = [str(p) for p in written if objects_root not in p.parents]
    passed = not bad_ids and not bad_formats and not bad_keys and not escaped and (
        unexpected_part == 400
    )
    record_scenario(
        "security",
        "ids, formats and upload filenames with traversal or odd characters are refused",
        {
            "hostile_ids": len(HOSTILE_IDS),
            "endpoints_per_id": 5,
            "non_404_answers": bad_ids,
            "hostile_formats": format_answers,
            "filenames_accepted": len(stored_keys),
            "keys_outside_the_job": bad_keys,
            "files_outside_storage": escaped,
            "unknown_form_part": unexpected_part,
        },
        passed=passed,
        test=request.node.nodeid,
    )
    assert passed, (bad_ids, bad_formats, bad_keys, escaped, unexpected_part)
