"""`recon api`: refuses to start without API keys, serves on the requested loopback port."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import API_KEY, TEST_REDIS_URL, free_port, wait_until

REPO = Path(__file__).parents[2]
START_TIMEOUT_S = 60.0


def recon_api(*args: str) -> list[str]:
    return [sys.executable, "-m", "recon.cli", "api", *args]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    return {**clean, "RECON_REDIS_URL": TEST_REDIS_URL, "RECON_DATA_DIR": str(tmp_path), **extra}


def test_refuses_to_start_without_keys(tmp_path: Path) -> None:
    env = _env(tmp_path)
    done = subprocess.run(
        recon_api("--port", str(free_port())),
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "RECON_API_KEYS" in done.stderr


def test_serves_on_the_requested_port(tmp_path: Path, redis_client: object) -> None:
    port = free_port()
    env = _env(tmp_path, RECON_API_KEYS=f"acme:{API_KEY}")
    process = subprocess.Popen(
        recon_api("--host", "127.0.0.1", "--port", str(port)),
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: httpx.get(f"{url}/healthz").status_code == 200,
            START_TIMEOUT_S,
            "recon api",
            interval_s=0.2,
            alive=lambda: process.poll() is None,
        )
        listed = httpx.get(f"{url}/reconstructions", headers={"X-API-Key": API_KEY})
        assert listed.status_code == 200 and listed.json()["items"] == []
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0
