"""/healthz, /readyz (against a Redis that is stopped and started again) and /metrics."""

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from recon.api.app import create_app
from recon.infra.settings import Settings
from tests.api.support import finish_job
from tests.conftest import free_port, wait_until

REDIS_START_TIMEOUT_S = 10.0


class ThrowawayRedis:
    """A private redis-server on a free loopback port that a test may stop and restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (the CI script installs it)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        process = self.process
        wait_until(
            client.ping, REDIS_START_TIMEOUT_S, "redis-server", alive=lambda: process.poll() is None
        )
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture
def throwaway_redis(tmp_path: Path) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_follows_redis_down_and_back(
    settings: Settings, throwaway_redis: ThrowawayRedis
) -> None:
    own = Settings(
        **{**settings.model_dump(), "redis_url": throwaway_redis.url, "redis_socket_timeout_s": 1.0}
    )
    with TestClient(create_app(own)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"job_store": "ok", "storage": "ok", "broker": "ok"}

        throwaway_redis.stop()
        down = client.get("/readyz")
        assert down.status_code == 503
        error = down.json()["error"]
        assert error["code"] == "not_ready"
        assert error["detail"]["down"] == ["broker", "job_store"]
        assert error["detail"]["checks"]["storage"] == "ok"
        listing = client.get(
            "/reconstructions", headers={"X-API-Key": "acme-test-key-0123456789abcdef"}
        )
        assert listing.status_code == 503
        assert listing.json()["error"]["code"] == "dependency_unavailable"

        throwaway_redis.start()
        assert client.get("/readyz").status_code == 200


def test_readyz_names_broken_storage(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        shutil.rmtree(settings.objects_dir)
        answer = client.get("/readyz")
        assert answer.status_code == 503
        assert answer.json()["error"]["detail"]["down"] == ["storage"]


def test_metrics_count_requests_submissions_and_queue(
    client: TestClient, auth_headers: dict[str, str], sphere_ply_bytes: bytes
) -> None:
    files = {"file": ("s.ply", sphere_ply_bytes)}
    job_id = client.post("/reconstructions", headers=auth_headers, files=files).json()["id"]
    client.post(
        "/reconstructions", headers=auth_headers, files=files, data={"params": '{"method": "igr"}'}
    )
    client.get(f"/reconstructions/{job_id}", headers=auth_headers)
    client.get(f"/reconstructions/{'0' * 32}", headers=auth_headers)
    client.get("/nowhere")
    context = client.app.state.context  # type: ignore[attr-defined]
    finish_job(context.job_store, context.storage, job_id)
    text = client.get("/metrics").text
    assert 'recon_jobs_submitted_total{method="nap"} 1.0' in text
    assert 'recon_jobs_submitted_total{method="igr"} 1.0' in text
    assert "recon_queue_depth 2.0" in text
    route = 'route="/reconstructions/{job_id}"'
    assert f'recon_http_requests_total{{method="GET",{route},status="200"}} 1.0' in text
    assert f'recon_http_requests_total{{method="GET",{route},status="404"}} 1.0' in text
    assert 'route="<unmatched>"' in text and job_id not in text
    assert "recon_http_request_duration_seconds_bucket" in text
