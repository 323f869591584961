"""Helpers for the end-to-end tests: real `recon api` and `recon worker` processes, HTTP polling.

Every wait is bounded; on a timeout the assertion message carries the tail of the processes'
logs so a failure can be read without re-running.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import trimesh
from scipy.spatial import cKDTree

if TYPE_CHECKING:
    from tests.conftest import S3Server

REPO_ROOT = Path(__file__).resolve().parents[2]
BUNNY = REPO_ROOT / "tests" / "data" / "bunny"
SCANS = REPO_ROOT / "tests" / "data" / "scans"
E2E_REDIS_URL = os.environ.get("RECON_E2E_REDIS_URL", "redis://127.0.0.1:6379/12")
TINY_PARAMS = {"preset": "fast", "max_iterations": 300, "resolution": 64}
"""Small enough for a busy 2-core machine (the fast preset also caps training at 30 s)."""
FINAL = ("succeeded", "failed", "canceled")
LOG_TAIL_BYTES = 4000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str,
             interval_s: float = 0.25, logs: Callable[[], str] | None = None) -> Any:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, OSError) as exc:
            last_error = exc
        time.sleep(interval_s)
    detail = f" (last error: {last_error})" if last_error else ""
    tail = f"\n--- logs ---\n{logs()}" if logs else ""
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{detail}{tail}")


def recon_env(overrides: dict[str, str]) -> dict[str, str]:
    """This environment without any RECON_ variable, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM,
                 timeout_s: float = 20.0) -> None:
    """Stop a process started in its own session; kill its whole group if it lingers."""
    if process.poll() is None:
        os.kill(process.pid, sig)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=timeout_s)


@dataclass
class Stack:
    """A running API and its workers, configured by `env`, logging under `log_dir`."""

    env: dict[str, str]
    log_dir: Path
    base_url: str
    keys: dict[str, str]
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(
            [sys.executable, "-m", "recon.cli", *argv], cwd=REPO_ROOT, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def start_api(self) -> None:
        port = self.base_url.rsplit(":", 1)[1]
        self.api = self.spawn("api", ["api", "--host", "127.0.0.1", "--port", port])
        wait_for(lambda: httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200,
                 90, "the API to be ready", logs=self.logs)

    def start_worker(self) -> subprocess.Popen[bytes]:
        worker = self.spawn(f"worker-{len(self.workers)}", ["worker", "--concurrency", "1",
                                                           "--device", "cpu"])
        self.workers.append(worker)
        return worker

    def kill_worker(self, worker: subprocess.Popen[bytes]) -> None:
        """SIGKILL the worker and its pool processes at once (a machine lost mid-job)."""
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)

    def stop(self) -> None:
        for worker in self.workers:
            stop_process(worker)
        if self.api is not None:
            stop_process(self.api)

    def logs(self) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            data = path.read_bytes()[-LOG_TAIL_BYTES:].decode(errors="replace")
            parts.append(f"[{path.name}]\n{data}")
        return "\n".join(parts)

    def client(self, tenant: str = "acme") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def settings(self) -> Any:
        from recon.infra.settings import Settings

        values = {k[len("RECON_"):].lower(): v for k, v in self.env.items()
                  if k.startswith("RECON_") and k != "RECON_E2E_REDIS_URL"}
        return Settings(**values)


def stack_env(data_dir: Path, port: int, keys: dict[str, str],
              extra: dict[str, str] | None = None) -> dict[str, str]:
    """Settings for an e2e stack: Redis DB 12 with a private key prefix and queue, fast reaping."""
    tag = uuid.uuid4().hex[:8]
    values = {
        "RECON_REDIS_URL": E2E_REDIS_URL,
        "RECON_REDIS_KEY_PREFIX": f"e2e{tag}",
        "RECON_CELERY_QUEUE": f"e2e-{tag}",
        "RECON_DATA_DIR": str(data_dir),
        "RECON_STORAGE_BACKEND": "local",
        "RECON_API_KEYS": ",".join(f"{t}:{k}" for t, k in keys.items()),
        "RECON_PORT": str(port),
        "RECON_HEARTBEAT_INTERVAL_S": "1",
        "RECON_HEARTBEAT_TIMEOUT_S": "5",
        "RECON_LEASE_TTL_S": "3",
        "RECON_REAPER_INTERVAL_S": "1",
        "RECON_MAX_ATTEMPTS": "3",
        "RECON_WORKER_DEVICE": "cpu",
        "RECON_LOG_LEVEL": "info",
    }
    values.update(extra or {})
    return recon_env(values)


def s3_env(server: S3Server) -> dict[str, str]:
    """The settings that put a stack's storage on `server` (the `seaweed_s3` fixture)."""
    return {
        "RECON_STORAGE_BACKEND": "s3",
        "RECON_S3_ENDPOINT_URL": server.endpoint_url,
        "RECON_S3_BUCKET": server.bucket,
        "RECON_S3_ACCESS_KEY_ID": server.access_key_id,
        "RECON_S3_SECRET_ACCESS_KEY": server.secret_access_key,
        "RECON_S3_REGION": server.region,
    }


def running_stack(root: Path, extra_env: dict[str, str], keys: dict[str, str]) -> Iterator[Stack]:
    """A started API + one worker with their data and logs under `root`; stopped afterwards."""
    (root / "logs").mkdir()
    port = free_port()
    stack = Stack(stack_env(root / "data", port, keys, extra_env), root / "logs",
                  f"http://127.0.0.1:{port}", keys)
    try:
        stack.start_worker()
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def submit(client: httpx.Client, points: Path, params: dict[str, Any] | None = None,
           ground_truth: Path | None = None) -> dict[str, Any]:
    """POST a point cloud; return the 202 body."""
    files: dict[str, Any] = {"file": (points.name, points.read_bytes(), "application/octet-stream")}
    if ground_truth is not None:
        files["ground_truth"] = (ground_truth.name, ground_truth.read_bytes(),
                                 "application/octet-stream")
    data = {"params": json.dumps(params or TINY_PARAMS)}
    response = client.post("/reconstructions", files=files, data=data)
    assert response.status_code == 202, response.text
    assert response.headers["Location"].endswith(response.json()["id"])
    return dict(response.json())


def job(client: httpx.Client, job_id: str) -> dict[str, Any]:
    response = client.get(f"/reconstructions/{job_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def watch(client: httpx.Client, job_id: str, until: Callable[[dict[str, Any]], bool],
          timeout_s: float, stack: Stack, history: list[dict[str, Any]] | None = None,
          interval_s: float = 0.5) -> dict[str, Any]:
    """Poll the job until `until(view)`; record every view in `history`."""
    seen = history if history is not None else []

    def probe() -> dict[str, Any] | None:
        view = job(client, job_id)
        seen.append(view)
        return view if until(view) else None

    def logs() -> str:
        return f"last view: {json.dumps(seen[-1]) if seen else None}\n{stack.logs()}"

    return dict(wait_for(probe, timeout_s, f"job {job_id}", interval_s=interval_s, logs=logs))


GT_SAMPLES = 20_000
MEAN_DISTANCE_TOLERANCE = 0.05
"""Loose bound on each one-sided mean distance mesh <-> ground truth (unit-cube frame). The
tiny run trains ~30 s on a busy machine; the best-fitting sphere scores about 0.09-0.10."""
RUN_TIMEOUT_S = 150
"""Longest wait for one tiny job to finish (worker start, ~30 s training, meshing)."""


def glb_json(data: bytes) -> dict[str, Any]:
    """The JSON chunk of a GLB file (materials, accessors, ...)."""
    chunk_length, chunk_type = struct.unpack_from("<I4s", data, 12)
    assert data[:4] == b"glTF" and chunk_type == b"JSON"
    return dict(json.loads(data[20:20 + chunk_length]))


def load_glb(data: bytes) -> trimesh.Trimesh:
    mesh = trimesh.load(io.BytesIO(data), file_type="glb", force="mesh")
    assert isinstance(mesh, trimesh.Trimesh)
    return mesh


def assert_close_to_bunny(mesh: trimesh.Trimesh) -> None:
    """Watertight, and both one-sided mean distances to the true surface are small."""
    assert mesh.is_watertight
    gt = trimesh.load(BUNNY / "gt_samples_10k.ply")
    gt_points = np.asarray(gt.vertices)[:: max(1, len(gt.vertices) // GT_SAMPLES)]
    mesh_points, _ = trimesh.sample.sample_surface(mesh, GT_SAMPLES, seed=0)
    to_gt = cKDTree(gt_points).query(mesh_points)[0].mean()
    to_mesh = cKDTree(mesh_points).query(gt_points)[0].mean()
    assert to_gt < MEAN_DISTANCE_TOLERANCE, f"mesh -> ground truth mean distance {to_gt:.4f}"
    assert to_mesh < MEAN_DISTANCE_TOLERANCE, f"ground truth -> mesh mean distance {to_mesh:.4f}"
