"""S3Storage against a real S3 protocol server (SeaweedFS on loopback), not a mock.

A mock would accept wrong secrets and expired URLs; these tests check that the real server
refuses them, and that presigned URLs work with a plain HTTP GET.
"""

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from recon.infra.settings import Settings
from recon.infra.storage import StorageUnavailable, build_storage, job_object_key, job_prefix
from recon.infra.storage.s3 import S3Storage
from tests.conftest import S3Server
from tests.infra.storage import backend_contract

SHORT_EXPIRY_S = 3  # X-Amz-Date has 1 s granularity: leave room for the first GET
EXPIRY_MARGIN_S = 2.0


def make_storage(
    server: S3Server, *, secret: str | None = None, public_endpoint_url: str | None = None
) -> S3Storage:
    return S3Storage(
        bucket=server.bucket,
        endpoint_url=server.endpoint_url,
        access_key_id=server.access_key_id,
        secret_access_key=secret or server.secret_access_key,
        region=server.region,
        presign_expiry_s=60,
        public_endpoint_url=public_endpoint_url,
    )


def other_spelling(endpoint_url: str) -> str:
    """The same server under another host name, as a client outside a compose network sees it."""
    parts = urlsplit(endpoint_url)
    assert parts.hostname == "127.0.0.1"
    return urlunsplit(parts._replace(netloc=f"localhost:{parts.port}"))


@pytest.fixture
def storage(seaweed_s3: S3Server) -> S3Storage:
    return make_storage(seaweed_s3)


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_round_trip(storage: S3Storage, tmp_path: Path) -> None:
    backend_contract.check_round_trip(storage, tmp_path)


def test_missing_objects(storage: S3Storage, tmp_path: Path) -> None:
    backend_contract.check_missing_objects(storage, tmp_path)


def test_delete_prefix(storage: S3Storage) -> None:
    backend_contract.check_delete_prefix(storage)


def test_delete_missing_prefix(storage: S3Storage) -> None:
    backend_contract.check_delete_missing_prefix(storage)


def test_delete_prefix_of_a_run(storage: S3Storage) -> None:
    backend_contract.check_delete_prefix_of_a_run(storage)


def test_rejects_unsafe_keys(storage: S3Storage) -> None:
    backend_contract.check_rejects_unsafe_keys(storage)


def test_presigned_url_works_with_plain_http(storage: S3Storage) -> None:
    key = job_object_key("acme", uuid.uuid4().hex, "mesh.glb")
    storage.put_bytes(key, b"glTF-bytes", content_type="model/gltf-binary")
    url = storage.presigned_url(key, filename="bunny.glb", content_type="model/gltf-binary")
    assert url is not None and storage.local_path(key) is None
    answer = httpx.get(url)
    assert answer.status_code == 200
    assert answer.content == b"glTF-bytes"
    assert answer.headers["content-type"] == "model/gltf-binary"
    assert 'filename="bunny.glb"' in answer.headers["content-disposition"]


def test_presigned_url_uses_the_public_endpoint(seaweed_s3: S3Server) -> None:
    public = other_spelling(seaweed_s3.endpoint_url)
    storage = make_storage(seaweed_s3, public_endpoint_url=public)
    key = job_object_key("acme", uuid.uuid4().hex, "mesh.glb")
    storage.put_bytes(key, b"public bytes")
    url = storage.presigned_url(key)
    assert url is not None and url.startswith(f"{public}/{seaweed_s3.bucket}/")
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.content == b"public bytes"


def test_rewriting_the_host_of_an_internal_url_breaks_its_signature(storage: S3Storage) -> None:
    """Why a second client signs the URLs: SigV4 covers the host, so rewriting it is refused."""
    key = job_object_key("acme", uuid.uuid4().hex, "mesh.glb")
    storage.put_bytes(key, b"signed for 127.0.0.1")
    url = storage.presigned_url(key)
    assert url is not None
    rewritten = url.replace("//127.0.0.1:", "//localhost:", 1)
    assert rewritten != url and httpx.get(rewritten).status_code == 403


def test_public_endpoint_serves_only_urls(settings: Settings, seaweed_s3: S3Server) -> None:
    unreachable = "http://127.0.0.1:9"  # nothing listens: any request sent there would fail
    storage = build_storage(seaweed_s3.settings(settings, s3_public_endpoint_url=unreachable))
    key = job_object_key("acme", uuid.uuid4().hex, "metrics.json")
    storage.ping()
    storage.put_bytes(key, b"{}")
    assert storage.get_bytes(key) == b"{}"
    url = storage.presigned_url(key)
    assert url is not None and url.startswith(f"{unreachable}/{seaweed_s3.bucket}/")
    same = build_storage(seaweed_s3.settings(settings, s3_public_endpoint_url=""))
    assert (same.presigned_url(key) or "").startswith(seaweed_s3.endpoint_url)


def test_tampered_presigned_urls_are_rejected(storage: S3Storage) -> None:
    job_id = uuid.uuid4().hex
    key = job_object_key("acme", job_id, "mesh.glb")
    other = job_object_key("acme", job_id, "input.ply")
    storage.put_bytes(key, b"mine")
    storage.put_bytes(other, b"not for you")
    url = storage.presigned_url(key)
    assert url is not None
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    tampered = [
        url.replace("mesh.glb", "input.ply"),  # another object, same signature
        _with_query(url, **{"X-Amz-Signature": flipped}),
        _with_query(url, **{"X-Amz-Expires": "604800"}),  # a longer life
    ]
    for bad in tampered:
        answer = httpx.get(bad)
        assert answer.status_code == 403, bad
        assert b"not for you" not in answer.content


def test_expired_presigned_url_is_rejected(storage: S3Storage) -> None:
    key = job_object_key("acme", uuid.uuid4().hex, "mesh.glb")
    storage.put_bytes(key, b"short-lived")
    url = storage.presigned_url(key, expires_s=SHORT_EXPIRY_S)
    assert url is not None
    assert httpx.get(url).status_code == 200
    time.sleep(SHORT_EXPIRY_S + EXPIRY_MARGIN_S)
    answer = httpx.get(url)
    assert answer.status_code == 403
    assert b"short-lived" not in answer.content


class BodySpy:
    """A get_object body that records whether it was closed; it may drop after one chunk."""

    def __init__(self, body: Any, *, drop: bool) -> None:
        self.body, self.drop, self.closed = body, drop, False

    def iter_chunks(self, chunk_size: int) -> Iterator[bytes]:
        for chunk in self.body.iter_chunks(chunk_size):
            yield chunk
            if self.drop:
                raise ConnectionResetError("the connection dropped mid-stream")

    def close(self) -> None:
        self.closed = True
        self.body.close()


@pytest.mark.parametrize("failure", ["mid-stream", "unwritable"])
def test_failed_download_closes_the_body(
    storage: S3Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    key = job_object_key("acme", uuid.uuid4().hex, "input.ply")
    storage.put_bytes(key, b"ply\n" * 1000)
    bodies: list[BodySpy] = []
    get_object = storage.client.get_object

    def spied(**kwargs: Any) -> dict[str, Any]:
        answer = get_object(**kwargs)
        bodies.append(BodySpy(answer["Body"], drop=failure == "mid-stream"))
        return {**answer, "Body": bodies[-1]}

    monkeypatch.setattr(storage.client, "get_object", spied)
    target = tmp_path / "input.ply" if failure == "mid-stream" else tmp_path  # a folder
    with pytest.raises(OSError):
        storage.download_to(key, target)
    assert all(body.closed for body in bodies)


def test_abandoned_stream_closes_the_body(
    storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API streams objects to clients that may go away: closing early frees the body."""
    key = job_object_key("acme", uuid.uuid4().hex, "mesh.glb")
    storage.put_bytes(key, b"x" * 3 * 65536)
    bodies: list[BodySpy] = []
    get_object = storage.client.get_object

    def spied(**kwargs: Any) -> dict[str, Any]:
        answer = get_object(**kwargs)
        bodies.append(BodySpy(answer["Body"], drop=False))
        return {**answer, "Body": bodies[-1]}

    monkeypatch.setattr(storage.client, "get_object", spied)
    chunks = storage.iter_bytes(key, chunk_size=65536)
    assert next(iter(chunks)) == b"x" * 65536
    chunks.close()
    assert [body.closed for body in bodies] == [True]


def test_partial_delete_failure_is_unavailable(
    storage: S3Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix = job_prefix("acme", uuid.uuid4().hex)
    storage.put_bytes(f"{prefix}input.ply", b"ply")
    refused = {"Errors": [{"Key": f"{prefix}input.ply", "Code": "SlowDown"}]}
    monkeypatch.setattr(storage.client, "delete_objects", lambda **_: refused)
    with pytest.raises(StorageUnavailable, match="SlowDown"):
        storage.delete_prefix(prefix)


def test_wrong_credentials_fail(seaweed_s3: S3Server, storage: S3Storage) -> None:
    key = job_object_key("acme", uuid.uuid4().hex, "input.ply")
    storage.put_bytes(key, b"secret data")
    intruder = make_storage(seaweed_s3, secret="not-the-secret-key-at-all")
    with pytest.raises(StorageUnavailable):
        intruder.ping()
    with pytest.raises(StorageUnavailable):
        intruder.get_bytes(key)
    with pytest.raises(StorageUnavailable):
        intruder.put_bytes(key, b"overwritten")
    assert storage.get_bytes(key) == b"secret data"


def test_build_storage_from_settings(settings: Settings, seaweed_s3: S3Server) -> None:
    storage = build_storage(seaweed_s3.settings(settings))
    assert storage.backend == "s3"
    storage.ping()
    down = seaweed_s3.settings(settings, s3_endpoint_url="http://127.0.0.1:9")
    with pytest.raises(StorageUnavailable):
        build_storage(down).ping()
