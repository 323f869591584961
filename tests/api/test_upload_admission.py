"""Uploads in flight, over real HTTP: where their bytes go and how many one tenant may have.

Two uploads are held open mid-body on raw sockets against a live server, so the limit is
exercised with real concurrency: a third upload of the same tenant is refused (429) before its
body is read, another tenant is not, and a finished or abandoned upload frees its slot.
"""

import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import redis

from recon.infra.settings import Settings
from tests.api.conftest import LiveServer
from tests.conftest import API_KEY, OTHER_API_KEY, TENANT, wait_until

BOUNDARY = "recon-admission-boundary"
HELD_BYTES = 512
ANSWER_TIMEOUT_S = 10.0


@pytest.fixture
def small_upload_settings(settings: Settings) -> Settings:
    """The live server's settings: a 64 KiB body limit and two uploads in flight per tenant."""
    return Settings(
        **{
            **settings.model_dump(),
            "max_upload_bytes": 64 * 1024,
            "max_uploads_in_flight_per_tenant": 2,
        }
    )


def multipart_body(content: bytes, filename: str = "scan.ply") -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + content + f"\r\n--{BOUNDARY}--\r\n".encode()


@contextmanager
def held_upload(server: LiveServer, body: bytes, api_key: str = API_KEY) -> Iterator[socket.socket]:
    """A POST whose body stops after `HELD_BYTES` bytes until the caller sends the rest."""
    head = (
        f"POST /reconstructions HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        f"Authorization: Bearer {api_key}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((server.host, server.port)) as sock:
        sock.sendall(head + body[:HELD_BYTES])
        yield sock


def finish(sock: socket.socket, body: bytes) -> bytes:
    sock.sendall(body[HELD_BYTES:])
    sock.settimeout(ANSWER_TIMEOUT_S)
    answer = b""
    while not answer.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def post(server: LiveServer, body: bytes, api_key: str = API_KEY) -> httpx.Response:
    headers = {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    }
    return httpx.post(f"{server.url}/reconstructions", content=body, headers=headers, timeout=30)


def in_flight(client: redis.Redis, settings: Settings, tenant: str = TENANT) -> int:
    return int(client.zcard(f"{settings.redis_key_prefix}:tenant:{tenant}:uploads"))


def upload_folders(folder: Path) -> set[Path]:
    return set(folder.glob("recon-upload-*")) if folder.exists() else set()


def test_uploads_in_flight_are_bounded_per_tenant(
    live_server: LiveServer, redis_client: redis.Redis, sphere_ply_bytes: bytes
) -> None:
    settings = live_server.settings
    body = multipart_body(sphere_ply_bytes)
    with held_upload(live_server, body) as first, held_upload(live_server, body) as second:
        wait_until(lambda: in_flight(redis_client, settings) == 2, ANSWER_TIMEOUT_S, "2 uploads")
        refused = post(live_server, body)
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["code"] == "too_many_uploads"
        assert "2 uploads" in error["message"] and "limit is 2" in error["message"]
        assert int(refused.headers["retry-after"]) == settings.retry_after_s
        assert post(live_server, body, OTHER_API_KEY).status_code == 202  # its own limit
        assert finish(first, body).startswith(b"HTTP/1.1 202")
        wait_until(lambda: in_flight(redis_client, settings) == 1, ANSWER_TIMEOUT_S, "1 upload")
        assert post(live_server, body).status_code == 202
        second.close()  # the client gives up mid-body: its slot is freed, not leaked
        wait_until(lambda: in_flight(redis_client, settings) == 0, ANSWER_TIMEOUT_S, "0 uploads")


def test_upload_bytes_go_to_the_data_dirs_temp_folder(
    live_server: LiveServer, redis_client: redis.Redis, sphere_ply_bytes: bytes
) -> None:
    settings = live_server.settings
    ours, system = settings.data_dir / "tmp", Path(tempfile.gettempdir())
    before = upload_folders(system)
    body = multipart_body(sphere_ply_bytes)
    with held_upload(live_server, body) as sock:
        wait_until(lambda: upload_folders(ours), ANSWER_TIMEOUT_S, "an upload folder")
        (folder,) = upload_folders(ours)
        assert [p.name for p in folder.iterdir()] == ["file"]
        assert upload_folders(system) <= before
        assert finish(sock, body).startswith(b"HTTP/1.1 202")
    time.sleep(0.2)  # the server removes the folder once the response is sent
    assert upload_folders(ours) == set()


def test_a_configured_temp_folder_is_used(
    settings: Settings, tmp_path: Path, sphere_ply_bytes: bytes
) -> None:
    from fastapi.testclient import TestClient

    from recon.api.app import create_app

    folder = tmp_path / "uploads-in-flight"
    configured = Settings(**{**settings.model_dump(), "upload_temp_dir": folder})
    seen: list[Path] = []
    with TestClient(create_app(configured)) as client:

        def body() -> Iterator[bytes]:
            content = multipart_body(sphere_ply_bytes)
            yield content[:HELD_BYTES]
            seen.extend(upload_folders(folder))  # the first chunk is on disk by now
            yield content[HELD_BYTES:]

        answer = client.post(
            "/reconstructions",
            content=body(),
            headers={
                "Authorization": f"Bearer {API_KEY}",
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
            },
        )
    assert answer.status_code == 202, answer.text
    assert len(seen) == 1 and seen[0].parent == folder
    assert upload_folders(folder) == set()
