"""An Idempotency-Key is bound to its request: the same request replays the job (200), any
other request under the key is refused (409), whichever way the key's earlier use is found."""

import uuid
from hashlib import sha256
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from recon.api.errors import Conflict
from recon.api.submissions import Submissions
from recon.api.uploads import MultipartUpload, UploadedFile
from recon.infra.settings import Settings
from tests.api.support import context_of
from tests.conftest import TENANT, binary_ply, sphere_points

Headers = dict[str, str]


def submit(
    client: TestClient,
    headers: Headers,
    content: bytes,
    params: str | None = None,
    ground_truth: bytes | None = None,
) -> httpx.Response:
    files = {"file": ("scan.ply", content, "application/octet-stream")}
    if ground_truth is not None:
        files["ground_truth"] = ("gt.ply", ground_truth, "application/octet-stream")
    data = {"params": params} if params is not None else None
    return client.post("/reconstructions", headers=headers, files=files, data=data)


@pytest.fixture
def keyed(auth_headers: Headers) -> Headers:
    return {**auth_headers, "Idempotency-Key": f"run-{uuid.uuid4()}"}


def test_same_key_and_same_request_replays_the_job(
    client: TestClient, keyed: Headers, sphere_ply_bytes: bytes
) -> None:
    first = submit(client, keyed, sphere_ply_bytes, params='{"preset": "fast"}')
    again = submit(client, keyed, sphere_ply_bytes, params='{"preset": "fast"}')
    assert first.status_code == 202 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    record = context_of(client).job_store.get(first.json()["id"])
    assert record is not None and record.request_fingerprint


@pytest.mark.parametrize("change", ["file", "params", "params added", "ground truth"])
def test_same_key_with_another_request_is_409(
    client: TestClient, keyed: Headers, sphere_ply_bytes: bytes, change: str
) -> None:
    fast = '{"preset": "fast"}'
    first = submit(client, keyed, sphere_ply_bytes, params=fast)
    assert first.status_code == 202, first.text
    other = {
        "file": lambda: submit(client, keyed, binary_ply(sphere_points(seed=1)), fast),
        "params": lambda: submit(client, keyed, sphere_ply_bytes, params='{"preset": "high"}'),
        "params added": lambda: submit(client, keyed, sphere_ply_bytes, fast[:-1] + ', "seed": 3}'),
        "ground truth": lambda: submit(
            client, keyed, sphere_ply_bytes, fast, ground_truth=sphere_ply_bytes
        ),
    }[change]()
    assert other.status_code == 409, other.text
    error = other.json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert "different request" in error["message"]
    assert error["detail"] == {"job_id": first.json()["id"]}
    jobs = client.get("/reconstructions", headers=keyed).json()["items"]
    assert [job["id"] for job in jobs] == [first.json()["id"]]
    assert context_of(client).queue.depth() == 1


def test_replay_answers_even_at_the_quota(
    settings: Settings, keyed: Headers, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    from recon.api.app import create_app

    one_job = Settings(**{**settings.model_dump(), "max_concurrent_jobs_per_tenant": 1})
    with TestClient(create_app(one_job)) as client:
        first = submit(client, keyed, sphere_ply_bytes)
        assert first.status_code == 202
        assert submit(client, auth_headers, sphere_ply_bytes).status_code == 429
        again = submit(client, keyed, sphere_ply_bytes)  # a retry after a lost answer
        assert again.status_code == 200 and again.json()["id"] == first.json()["id"]


def _upload(folder: Path, content: bytes, params: str) -> MultipartUpload:
    """An upload as `read_multipart` leaves it, with the part digests it computes."""
    folder.mkdir()
    (folder / "file").write_bytes(content)
    upload = MultipartUpload(folder)
    upload.files["file"] = UploadedFile("file", "scan.ply", folder / "file", len(content))
    upload.fields["params"] = params
    upload.digests.update(file=sha256(content).hexdigest(),
                          params=sha256(params.encode()).hexdigest())
    return upload


def test_a_key_taken_between_lookup_and_create_is_compared_too(
    client: TestClient, keyed: Headers, sphere_ply_bytes: bytes, tmp_path: Path
) -> None:
    """Two requests with one key race past the lookup: the store's own duplicate check
    answers the loser, with the same comparison."""
    key = keyed["Idempotency-Key"]
    submissions = Submissions(context_of(client))
    first = submissions.submit(TENANT, _upload(tmp_path / "a", sphere_ply_bytes, "{}"), key)
    assert first.created
    same = submissions.submit(TENANT, _upload(tmp_path / "b", sphere_ply_bytes, "{}"), key)
    assert not same.created and same.record.id == first.record.id
    with pytest.raises(Conflict) as refused:
        submissions.submit(TENANT, _upload(tmp_path / "c", sphere_ply_bytes, '{"seed": 1}'), key)
    assert refused.value.code == "idempotency_key_reused"
    storage = context_of(client).storage
    assert storage.list_keys(f"tenants/{TENANT}/") == [first.record.input_key]
