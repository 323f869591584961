"""/healthz, /readyz (against a Redis that is stopped and started again) and /metrics.

Readiness is cached per app: many calls cost the backends one check per `readiness_cache_s`,
counted here by the connections a private redis-server received. Answers name failed checks
but never carry the exception text (hosts, ports, paths), which goes to the log instead.
"""

import asyncio
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from recon.api.app import create_app
from recon.infra.settings import Settings
from tests.api.support import finish_job
from tests.conftest import API_KEY, free_port, wait_until

REDIS_START_TIMEOUT_S = 10.0
QUICK_503_S = 1.0
"""/readyz must answer 503 within this when Redis is down."""
METRICS_TOKEN = "metrics-token-0123456789abcdef"


class ThrowawayRedis:
    """A private redis-server on a free loopback port that a test may stop and restart."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.probe: redis.Redis | None = None

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

    def connections_received(self) -> int:
        """Connections this server accepted since it started (INFO stats).

        Asked over one kept connection, so asking adds nothing between two readings.
        """
        if self.probe is None:
            self.probe = redis.Redis(port=self.port, single_connection_client=True)
        return int(self.probe.info("stats")["total_connections_received"])

    def stop(self) -> None:
        if self.probe is not None:
            self.probe.close()
            self.probe = None
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


def with_overrides(settings: Settings, **overrides: object) -> Settings:
    return Settings(**{**settings.model_dump(), **overrides})


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_follows_redis_down_and_back(
    settings: Settings, throwaway_redis: ThrowawayRedis
) -> None:
    own = with_overrides(
        settings, redis_url=throwaway_redis.url, redis_socket_timeout_s=1.0, readiness_cache_s=0
    )
    with TestClient(create_app(own)) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "ready",
            "checks": {"job_store": "ok", "storage": "ok", "broker": "ok"},
        }

        throwaway_redis.stop()
        started = time.monotonic()
        down = client.get("/readyz")
        assert time.monotonic() - started < QUICK_503_S
        assert down.status_code == 503
        assert down.json() == {
            "status": "not_ready",
            "checks": {"job_store": "unavailable", "storage": "ok", "broker": "unavailable"},
        }
        listing = client.get("/reconstructions", headers={"X-API-Key": API_KEY})
        assert listing.status_code == 503
        assert listing.json()["error"]["code"] == "dependency_unavailable"
        assert str(throwaway_redis.port) not in listing.text

        throwaway_redis.start()
        wait_until(lambda: client.get("/readyz").status_code == 200, 5.0, "/readyz back to 200")


def test_readyz_hides_why_redis_is_unreachable(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    closed_port = free_port()  # nothing listens here
    own = with_overrides(settings, redis_url=f"redis://127.0.0.1:{closed_port}/0")
    with caplog.at_level(logging.WARNING, logger="recon.api.readiness"):
        with TestClient(create_app(own)) as client:
            started = time.monotonic()
            answer = client.get("/readyz")
            elapsed = time.monotonic() - started
    assert answer.status_code == 503 and elapsed < QUICK_503_S
    assert answer.json() == {
        "status": "not_ready",
        "checks": {"job_store": "unavailable", "storage": "ok", "broker": "unavailable"},
    }
    for leak in (str(closed_port), "127.0.0.1", "Error", "refused", "Connection"):
        assert leak not in answer.text
    logged = caplog.text  # the operator still learns why, from the log
    assert "job_store is unavailable" in logged and str(closed_port) in logged


def test_readyz_answers_within_a_second_when_redis_hangs(settings: Settings) -> None:
    """A Redis that accepts connections but never answers (a hung or black-holed server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes handshakes; nothing ever reads or answers
        port = silent.getsockname()[1]
        own = with_overrides(settings, redis_url=f"redis://127.0.0.1:{port}/0", readiness_cache_s=0)
        with TestClient(create_app(own)) as client:
            timings, answers = [], []
            for _ in range(3):
                started = time.monotonic()
                answers.append(client.get("/readyz"))
                timings.append(time.monotonic() - started)
            stuck = [t for t in threading.enumerate() if t.name == "readiness-job_store"]
    assert [a.status_code for a in answers] == [503, 503, 503]
    assert answers[0].json()["checks"]["job_store"] == "unavailable"
    assert max(timings) < QUICK_503_S, timings
    assert len(stuck) <= 1  # a hanging check is awaited again, never started twice


def test_readyz_names_broken_storage_without_its_path(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        shutil.rmtree(settings.objects_dir)
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"] == {"job_store": "ok", "storage": "unavailable", "broker": "ok"}
    assert str(settings.data_dir) not in answer.text and "objects" not in answer.text


def test_rapid_readyz_and_metrics_calls_share_one_check(
    settings: Settings, throwaway_redis: ThrowawayRedis
) -> None:
    cached = with_overrides(settings, redis_url=throwaway_redis.url, readiness_cache_s=60)
    with TestClient(create_app(cached)) as client:
        before = throwaway_redis.connections_received()
        answers = [client.get("/readyz").status_code for _ in range(50)]
        answers += [client.get("/metrics").status_code for _ in range(50)]
        opened = throwaway_redis.connections_received() - before
    assert answers == [200] * 100
    assert opened <= 3, f"100 calls opened {opened} connections (one check opens up to 3)"

    # The same count without the cache: every call checks again, so the counter does see it.
    uncached = with_overrides(cached, readiness_cache_s=0)
    with TestClient(create_app(uncached)) as client:
        before = throwaway_redis.connections_received()
        for _ in range(10):
            client.get("/readyz")
        assert throwaway_redis.connections_received() - before >= 10


def test_concurrent_readyz_calls_wait_for_one_refresh(
    settings: Settings, throwaway_redis: ThrowawayRedis
) -> None:
    own = with_overrides(settings, redis_url=throwaway_redis.url, readiness_cache_s=60)
    app = create_app(own)

    async def fifty_at_once() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            answers = await asyncio.gather(*(http.get("/readyz") for _ in range(50)))
        return [answer.status_code for answer in answers]

    before = throwaway_redis.connections_received()
    assert asyncio.run(fifty_at_once()) == [200] * 50
    assert app.state.readiness.refreshes == 1
    assert throwaway_redis.connections_received() - before <= 3


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


def test_metrics_report_nan_depth_when_the_broker_is_down(settings: Settings) -> None:
    own = with_overrides(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    with TestClient(create_app(own)) as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200 and "recon_queue_depth NaN" in answer.text


def test_metrics_are_open_without_a_token(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 200


def test_metrics_token_is_required_when_set(settings: Settings) -> None:
    own = with_overrides(settings, metrics_token=METRICS_TOKEN)
    with TestClient(create_app(own)) as client:
        refused = [
            client.get("/metrics"),
            client.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456789"}),
            client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"}),
            client.get("/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"}),
            client.get("/metrics", headers={"X-API-Key": API_KEY}),
            client.get("/metrics", headers={"Authorization": f"Bearer {API_KEY}"}),
        ]
        allowed = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        health = client.get("/readyz")  # readiness stays open to load balancers
    for answer in refused:
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "invalid_metrics_token"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert METRICS_TOKEN not in answer.text
    assert allowed.status_code == 200 and "recon_http_requests_total" in allowed.text
    assert health.status_code == 200


def test_empty_metrics_token_means_unset(settings: Settings) -> None:
    assert with_overrides(settings, metrics_token="").metrics_token is None
