"""Process harness of the reliability suite: a private Redis, a private SeaweedFS S3 server and the
real service processes (`recon api`, `recon worker`), all on loopback, with fault injection.

Everything here is a real process the test starts itself, so a fault is a real fault: a Redis
that stops (and comes back from its append-only file), a broker link that is cut, an S3 server
that goes away, a worker killed, terminated or frozen with signals. The service runs with the
shipped heartbeat, lease and reaper timing (those settings are never set here).

Every wait is bounded, and every failure message carries the tail of every process log.

- `RedisServer(root)`: ``start()``, ``stop(kill=False)`` (SHUTDOWN NOSAVE or SIGKILL; start
  again on the same port and folder replays the AOF), ``kill_clients()``, ``url``.
- `SeaweedS3(root)`: ``start()``, ``stop()`` (SIGKILL; same ports and data on restart),
  ``keys(prefix)``, ``head(key)``, ``env()`` (the service's S3 settings).
- `Stack(root, s3=True, workers=2, extra_env=None, tenants=("acme",), redis_server=None,
  seaweed=None)`: Redis + S3 + `recon api` + workers "a", "b", ... (``--concurrency 1
  --device cpu``, each in its own session) with a unique key prefix and queue;
  ``start()``/``close()`` (or ``with running(stack)``), ``heal()`` between tests, ``logs()``;
  jobs: ``submit``, ``view``, ``wait_record``, ``wait_training``, ``wait_final``, ``mesh``,
  ``mesh_status``, ``record`` (straight from Redis through `JobStore`); processes: ``runner``
  (record -> worker and pool pid), ``other_worker``; faults: ``kill_worker_group``,
  ``kill_pool_child``, ``terminate_worker``, ``freeze``/``thaw``, ``restart_worker``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
import trimesh
from redis.backoff import NoBackoff
from redis.retry import Retry

from recon.embedded.serve import find_redis_server
from recon.infra.job_record import JobRecord
from recon.infra.job_store import JobStore
from tests.conftest import (
    S3_ACCESS_KEY,
    S3_BUCKET,
    S3_SECRET_KEY,
    _weed_command,
    binary_ply,
    free_port,
    sphere_points,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_BYTES = 3000
FINAL = ("succeeded", "failed", "canceled")

FAULT_PARAMS: dict[str, Any] = {"preset": "fast", "max_iterations": 500, "resolution": 64}
"""A job that trains long enough (several seconds on 2 CPUs) to be hit mid-training, and short
enough that its second run keeps the suite within its time budget."""
FAULT_POINTS = 2000
TINY_PARAMS: dict[str, Any] = {"preset": "fast", "max_iterations": 50, "resolution": 32}
"""The smallest real job, for load."""
TINY_POINTS = 300

REDIS_START_TIMEOUT_S = 20.0
S3_START_TIMEOUT_S = 90.0
API_START_TIMEOUT_S = 60.0
WORKER_START_TIMEOUT_S = 120.0
"""A worker is ready once Celery says so; its pool process imports torch first (slow on 2 CPUs)."""
S3_REGION = "us-east-1"


# --- small helpers ---------------------------------------------------------------------------
def wait_for(
    predicate: Callable[[], Any],
    timeout_s: float,
    what: str,
    *,
    interval_s: float = 0.25,
    logs: Callable[[], str] | None = None,
) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout_s` with logs.

    Connection errors (HTTP, Redis, OS) count as "not yet".
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (httpx.HTTPError, redis.RedisError, OSError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval_s)
    detail = f" (last error: {last_error!r})" if last_error else ""
    tail = f"\n{logs()}" if logs else ""
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}{detail}{tail}")


def sphere_ply(path: Path, n: int, seed: int = 0) -> Path:
    """Write a binary PLY of `n` points on the unit sphere to `path`."""
    path.write_bytes(binary_ply(sphere_points(n, seed)))
    return path


def recon_env(overrides: dict[str, str]) -> dict[str, str]:
    """This process's environment without any RECON_ variable, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env["PYTHONUNBUFFERED"] = "1"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(overrides)
    return env


def log_tail(path: Path, size: int = LOG_TAIL_BYTES) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return "(no log)"
    return data[-size:].decode(errors="replace")


def _kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)


def stop_process(process: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM,
                 timeout_s: float = 15.0) -> None:
    """Signal a process started in its own session; SIGKILL its whole group if it lingers."""
    if process is None:
        return
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout_s)
    _kill_group(process, signal.SIGCONT)  # a stopped member would never see SIGKILL's effect
    _kill_group(process, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout_s)


def percentile(values: list[float], q: float) -> float | None:
    """The `q`-quantile (0..1) of `values` by nearest rank; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[rank]


# --- Redis -----------------------------------------------------------------------------------
class RedisServer:
    """A private Redis on a free loopback port, append-only (fsync always), data in `root`.

    `stop()` and `start()` again reuse the port and the folder, so the data comes back from
    the append-only file.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "redis"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = root / "redis.log"
        self.port = free_port()
        self.binary = str(find_redis_server())
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kwargs: Any) -> redis.Redis:
        """A client that fails at once when the server is down (no retries)."""
        return redis.Redis(host="127.0.0.1", port=self.port, db=0, socket_timeout=5,
                           socket_connect_timeout=2, retry=Retry(NoBackoff(), 0), **kwargs)

    def start(self) -> None:
        argv = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--protected-mode", "no", "--daemonize", "no", "--logfile", "",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.data_dir, start_new_session=True)

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"redis-server exited:\n{log_tail(self.log_path)}")
            with self.client() as client:
                return bool(client.ping())

        wait_for(up, REDIS_START_TIMEOUT_S, "the private Redis",
                 logs=lambda: log_tail(self.log_path))

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, kill: bool = False) -> None:
        """SHUTDOWN NOSAVE (the AOF is fsynced on every write), or SIGKILL with `kill`."""
        if not self.is_running():
            return
        assert self.process is not None
        if kill:
            self.process.kill()
        else:
            with contextlib.suppress(redis.RedisError), self.client() as client:
                client.shutdown(nosave=True)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    def kill_clients(self) -> int:
        """CLIENT KILL every connection but this one (a broker/job-store disconnect)."""
        with self.client(decode_responses=True) as client:
            me = client.client_id()
            killed = 0
            for entry in client.client_list():
                if int(entry["id"]) != me:
                    with contextlib.suppress(redis.ResponseError):
                        killed += int(client.client_kill_filter(_id=entry["id"]))
            return killed


# --- SeaweedFS -------------------------------------------------------------------------------
class SeaweedS3:
    """A private SeaweedFS (`weed mini`) S3 gateway; `stop()`/`start()` keep ports and data."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "data").mkdir(exist_ok=True)
        self.config = root / "s3.json"
        identity = {
            "name": "recon-test",
            "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        self.config.write_text(json.dumps({"identities": [identity]}))
        self.s3_port = free_port()
        self.argv = _weed_command(root / "data", self.config, self.s3_port)  # ports fixed once
        self.log_path = root / "weed.log"
        self.bucket = S3_BUCKET
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def hostport(self) -> str:
        return f"127.0.0.1:{self.s3_port}"

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3", endpoint_url=self.endpoint_url, aws_access_key_id=S3_ACCESS_KEY,
            aws_secret_access_key=S3_SECRET_KEY, region_name=S3_REGION,
            config=Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}),
        )

    def env(self) -> dict[str, str]:
        """The service's S3 settings for this server."""
        return {
            "RECON_STORAGE_BACKEND": "s3",
            "RECON_S3_ENDPOINT_URL": self.endpoint_url,
            "RECON_S3_BUCKET": self.bucket,
            "RECON_S3_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "RECON_S3_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "RECON_S3_REGION": S3_REGION,
            "RECON_S3_PRESIGN_EXPIRY_S": "300",
        }

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT,
                                            cwd=self.root, start_new_session=True)
        s3 = self.client()

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"SeaweedFS exited:\n{log_tail(self.log_path)}")
            try:
                s3.head_bucket(Bucket=self.bucket)
                # the filer answers HEAD before writes work: prove a write goes through
                s3.put_object(Bucket=self.bucket, Key="health/probe", Body=b"ok")
            except Exception:
                return False
            return True

        wait_for(up, S3_START_TIMEOUT_S, "SeaweedFS S3", interval_s=0.5,
                 logs=lambda: log_tail(self.log_path))

    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGKILL the server (an S3 endpoint that vanishes); its data stays for `start()`."""
        stop_process(self.process, signal.SIGKILL, timeout_s=15)

    def keys(self, prefix: str) -> list[str]:
        s3 = self.client()
        answer = s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in answer.get("Contents", []))

    def head(self, key: str) -> dict[str, Any] | None:
        try:
            answer = self.client().head_object(Bucket=self.bucket, Key=key)
        except Exception:
            return None
        return {"etag": answer.get("ETag"), "size": answer.get("ContentLength"),
                "last_modified": str(answer.get("LastModified"))}


# --- the service -----------------------------------------------------------------------------
@dataclass
class Worker:
    """One `recon worker --concurrency 1 --device cpu` process (its own process group)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_offset: int
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_since_start(self) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(self.log_offset)
                return handle.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def ready(self) -> bool:
        return " ready." in self.log_since_start()

    def pool_children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []


@dataclass
class Service:
    """The API and the workers of one stack, configured by `env`, logging under `log_dir`."""

    env: dict[str, str]
    log_dir: Path
    port: int
    keys: dict[str, str]
    api: subprocess.Popen[bytes] | None = None
    workers: dict[str, Worker] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]
               ) -> tuple[subprocess.Popen[bytes], Path, int]:
        path = self.log_dir / f"{name}.log"
        with open(path, "ab") as log:
            log.write(f"\n===== start {name} at {time.strftime('%X')} =====\n".encode())
            log.flush()
            offset = log.tell()
            process = subprocess.Popen(
                [sys.executable, "-m", "recon.cli", *argv], cwd=REPO_ROOT, env=env,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return process, path, offset

    def start_api(self, wait: bool = True) -> None:
        self.api, path, _ = self._spawn(
            "api", ["api", "--host", "127.0.0.1", "--port", str(self.port)], self.env)
        if wait:
            def ready() -> bool:
                if self.api is not None and self.api.poll() is not None:
                    raise AssertionError(f"the API exited:\n{log_tail(path)}")
                return httpx.get(f"{self.base_url}/readyz", timeout=2).status_code == 200

            wait_for(ready, API_START_TIMEOUT_S, "the API to be ready", logs=self.logs)

    def start_worker(self, name: str, extra_env: dict[str, str] | None = None,
                     wait: bool = True) -> Worker:
        """Start (or restart) worker `name`; wait until Celery says it is ready."""
        old = self.workers.get(name)
        if old is not None and old.alive():
            raise RuntimeError(f"worker {name} is still running")
        env = {**(old.env if old is not None and extra_env is None else self.env),
               **(extra_env or {})}
        process, path, offset = self._spawn(
            f"worker-{name}", ["worker", "--concurrency", "1", "--device", "cpu"], env)
        worker = Worker(name, process, path, offset, env)
        self.workers[name] = worker
        if wait:
            self.wait_worker_ready(worker)
        return worker

    def wait_worker_ready(self, worker: Worker) -> None:
        def ready() -> bool:
            if not worker.alive():
                raise AssertionError(
                    f"worker {worker.name} exited with {worker.process.returncode}:\n"
                    f"{log_tail(worker.log_path)}")
            return worker.ready()

        wait_for(ready, WORKER_START_TIMEOUT_S, f"worker {worker.name} to be ready",
                 logs=self.logs)

    def stop(self) -> None:
        for worker in self.workers.values():
            stop_process(worker.process, timeout_s=10)
        stop_process(self.api, timeout_s=10)

    def logs(self) -> str:
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            parts.append(f"----- {path.name} (tail) -----\n{log_tail(path)}")
        return "\n".join(parts)

    def client(self, tenant: str | None = None, timeout: float = 30) -> httpx.Client:
        tenant = tenant or next(iter(self.keys))
        headers = {"Authorization": f"Bearer {self.keys[tenant]}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)


class Stack:
    """Redis + (optionally) SeaweedFS + the service, all private to one test module."""

    def __init__(self, root: Path, *, s3: bool = True, workers: int = 2,
                 extra_env: dict[str, str] | None = None,
                 tenants: tuple[str, ...] = ("acme",),
                 redis_server: RedisServer | None = None,
                 seaweed: SeaweedS3 | None = None) -> None:
        self.root = root
        (root / "logs").mkdir(parents=True, exist_ok=True)
        self.owns_redis = redis_server is None
        self.redis = redis_server or RedisServer(root)
        self.owns_s3 = seaweed is None and s3
        self.s3: SeaweedS3 | None = seaweed if seaweed is not None else (
            SeaweedS3(root / "seaweedfs") if s3 else None)
        self.worker_names = [chr(ord("a") + i) for i in range(workers)]
        tag = uuid.uuid4().hex[:8]
        self.prefix = f"rel{tag}"
        self.queue = f"rel-{tag}"
        self.keys = {t: f"{t}-{uuid.uuid4().hex}" for t in tenants}
        env = {
            "RECON_REDIS_URL": self.redis.url,
            "RECON_REDIS_KEY_PREFIX": self.prefix,
            "RECON_CELERY_QUEUE": self.queue,
            "RECON_DATA_DIR": str(root / "data"),
            "RECON_STORAGE_BACKEND": "local",
            "RECON_API_KEYS": ",".join(f"{t}:{k}" for t, k in self.keys.items()),
            "RECON_WORKER_DEVICE": "cpu",
            "RECON_LOG_LEVEL": "info",
        }
        if self.s3 is not None:
            env.update(self.s3.env())
        env.update(extra_env or {})
        port = free_port()
        env["RECON_PORT"] = str(port)
        self.service = Service(recon_env(env), root / "logs", port, self.keys)
        self._store: JobStore | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Stack:
        if self.owns_redis:
            self.redis.start()
        if self.owns_s3 and self.s3 is not None:
            self.s3.start()
        for name in self.worker_names:  # start all workers at once; they import torch in parallel
            self.service.start_worker(name, wait=False)
        self.service.start_api()
        for name in self.worker_names:
            self.service.wait_worker_ready(self.service.workers[name])
        return self

    def close(self) -> None:
        for worker in self.service.workers.values():
            for child in worker.pool_children():
                with contextlib.suppress(psutil.Error):
                    child.resume()
        self.service.stop()
        if self._store is not None:
            with contextlib.suppress(Exception):
                self._store.redis.close()
        if self.owns_s3 and self.s3 is not None:
            self.s3.stop()
        if self.owns_redis:
            self.redis.stop(kill=True)

    def heal(self) -> None:
        """Between tests: dependencies up, frozen pool processes resumed, dead workers back."""
        if not self.redis.is_running():
            self.redis.start()
        if self.s3 is not None and not self.s3.is_running():
            self.s3.start()
        restarted = []
        for name in self.worker_names:
            worker = self.service.workers.get(name)
            if worker is None or not worker.alive():
                restarted.append(self.service.start_worker(name, wait=False))
            else:
                for child in worker.pool_children():
                    with contextlib.suppress(psutil.Error):
                        if child.status() == psutil.STATUS_STOPPED:
                            child.resume()
        if self.service.api is None or self.service.api.poll() is not None:
            self.service.start_api()
        for worker in restarted:
            self.service.wait_worker_ready(worker)

    def logs(self) -> str:
        parts = [self.service.logs(), f"----- redis.log (tail) -----\n"
                 f"{log_tail(self.redis.log_path, 800)}"]
        if self.s3 is not None:
            parts.append(f"----- weed.log (tail) -----\n{log_tail(self.s3.log_path, 800)}")
        return "\n".join(parts)

    # --- the job store, straight from Redis --------------------------------------------------
    @property
    def store(self) -> JobStore:
        if self._store is None:
            client = redis.Redis.from_url(self.redis.url, decode_responses=True,
                                          socket_timeout=5, socket_connect_timeout=2)
            self._store = JobStore(client, prefix=self.prefix)
        return self._store

    def record(self, job_id: str) -> JobRecord:
        found = self.store.get(job_id)
        assert found is not None, f"job {job_id} is not in the job store"
        return found

    # --- jobs over HTTP ----------------------------------------------------------------------
    def submit(self, points: Path, params: dict[str, Any], tenant: str | None = None,
               client: httpx.Client | None = None) -> str:
        """POST the point cloud; return the new job's id (asserts 202)."""
        own = client is None
        http = client or self.service.client(tenant)
        try:
            files = {"file": (points.name, points.read_bytes(), "application/octet-stream")}
            answer = http.post("/reconstructions", files=files,
                               data={"params": json.dumps(params)})
        finally:
            if own:
                http.close()
        assert answer.status_code == 202, f"{answer.status_code} {answer.text}\n{self.logs()}"
        return str(answer.json()["id"])

    def view(self, job_id: str, tenant: str | None = None) -> dict[str, Any]:
        with self.service.client(tenant) as http:
            answer = http.get(f"/reconstructions/{job_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait_record(self, job_id: str, until: Callable[[JobRecord], bool], timeout_s: float,
                    what: str, interval_s: float = 0.25) -> JobRecord:
        """Poll the job store until `until(record)`; fail with the record and all logs."""
        seen: list[JobRecord] = []

        def probe() -> JobRecord | None:
            record = self.store.get(job_id)
            if record is not None:
                seen.append(record)
            return record if record is not None and until(record) else None

        def logs() -> str:
            last = describe(seen[-1]) if seen else None
            return f"last record: {last}\n{self.logs()}"

        result: JobRecord = wait_for(probe, timeout_s, f"job {job_id}: {what}",
                                     interval_s=interval_s, logs=logs)
        return result

    def wait_training(self, job_id: str, timeout_s: float = 90) -> JobRecord:
        """Wait until the job runs and its progress says "train" (a fault hits mid-training).

        Fails at once when the job ended first: the fault could not hit it mid-training.
        """
        record = self.wait_record(
            job_id,
            lambda r: r.is_final or (r.status == "running" and r.progress.get("stage") == "train"),
            timeout_s, "training")
        assert not record.is_final, (
            f"job {job_id} ended before it was seen training ({describe(record)}); "
            "FAULT_PARAMS must train longer on this machine")
        return record

    def wait_final(self, job_id: str, timeout_s: float) -> JobRecord:
        return self.wait_record(job_id, lambda r: r.status in FINAL, timeout_s, "a final state")

    def mesh(self, job_id: str, tenant: str | None = None) -> trimesh.Trimesh:
        """Download the job's GLB through the API (following the presigned redirect); load it."""
        with self.service.client(tenant) as http:
            answer = http.get(f"/reconstructions/{job_id}/mesh", params={"format": "glb"},
                              follow_redirects=True)
        assert answer.status_code == 200, f"GET mesh: {answer.status_code} {answer.text}"
        mesh = trimesh.load(io.BytesIO(answer.content), file_type="glb", force="mesh")
        assert isinstance(mesh, trimesh.Trimesh) and len(mesh.faces) > 0, "empty or bad GLB"
        return mesh

    def mesh_status(self, job_id: str, tenant: str | None = None) -> int:
        with self.service.client(tenant) as http:
            return http.get(f"/reconstructions/{job_id}/mesh",
                            params={"format": "glb"}).status_code

    # --- which process runs a job ------------------------------------------------------------
    def runner(self, record: JobRecord) -> tuple[Worker | None, int | None]:
        """The worker whose pool process runs `record` (from `worker_id` = "host:pid")."""
        if not record.worker_id:
            return None, None
        child_pid = int(record.worker_id.rsplit(":", 1)[1])
        main_pid: int | None = None
        try:
            main_pid = psutil.Process(child_pid).ppid()
        except psutil.NoSuchProcess:
            pass
        for worker in self.service.workers.values():
            if worker.pid == main_pid:
                return worker, child_pid
        # the child is gone: the node name is "recon-{main pid}@host"
        for worker in self.service.workers.values():
            if record.worker_id.startswith(f"recon-{worker.pid}@"):
                return worker, child_pid
        return None, child_pid

    def other_worker(self, worker: Worker) -> Worker:
        return next(w for w in self.service.workers.values() if w is not worker)

    # --- faults ------------------------------------------------------------------------------
    def kill_worker_group(self, worker: Worker) -> None:
        """SIGKILL the worker's main process and its pool at once (a machine lost)."""
        _kill_group(worker.process, signal.SIGKILL)
        worker.process.wait(timeout=15)

    def kill_pool_child(self, child_pid: int) -> None:
        """SIGKILL only the pool process running the job (out-of-memory kill)."""
        os.kill(child_pid, signal.SIGKILL)

    def terminate_worker(self, worker: Worker) -> None:
        """SIGTERM the worker's main process (a deploy, a scale-down); returns at once."""
        os.kill(worker.pid, signal.SIGTERM)

    def freeze(self, child_pid: int) -> None:
        """SIGSTOP the pool process (a hang: no heartbeat, the lease runs out)."""
        os.kill(child_pid, signal.SIGSTOP)

    def thaw(self, child_pid: int) -> None:
        """SIGCONT a frozen pool process: its stale run resumes."""
        os.kill(child_pid, signal.SIGCONT)

    def restart_worker(self, worker: Worker, wait: bool = True) -> Worker:
        """Kill the worker if it still runs and start it again under the same name."""
        if worker.alive():
            self.kill_worker_group(worker)
        return self.service.start_worker(worker.name, wait=wait)


def ordered(outcome: dict[str, Any], first: tuple[str, ...]) -> dict[str, Any]:
    """`outcome` with the keys in `first` leading (RELIABILITY.md shortens long outcomes)."""
    lead = {key: outcome[key] for key in first if key in outcome}
    return {**lead, **{k: v for k, v in outcome.items() if k not in lead}}


def describe(record: JobRecord | None) -> str:
    """A one-line summary of a job record for assertion messages and outcomes."""
    if record is None:
        return "None"
    return (f"status={record.status.value} attempts={record.attempts} "
            f"worker_id={record.worker_id} stage={record.progress.get('stage')} "
            f"error={record.error_code}: {record.error_message}")


@contextlib.contextmanager
def running(stack: Stack) -> Iterator[Stack]:
    """Start `stack`; always tear it down."""
    try:
        yield stack.start()
    finally:
        stack.close()
