"""The embedded default's parts: Redis binary discovery (including the pip-packaged server), its
password, the API keys given to the children, and the supervisor's restart and clean-stop
behaviour; and one whole `recon serve` whose Redis refuses strangers and whose logs never show
the password."""

import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
import redis

from recon.api.auth import LOCAL_TENANT, ApiKeyRing
from recon.embedded.local_secrets import LOCAL_KEY_FILENAME
from recon.embedded.serve import (
    REDIS_AUTH_CONFIG,
    api_keys_for,
    find_redis_server,
    free_port,
    new_redis_password,
    redis_answers,
    redis_argv,
    redis_url,
    wait_until,
    write_redis_auth_config,
)
from recon.embedded.supervisor import Child, RestartPolicy, Supervisor

FAST = RestartPolicy(initial_backoff_s=0.1, max_backoff_s=0.4, stable_after_s=60.0)
SERVE_READY_TIMEOUT_S = 120.0
SERVE_STOP_TIMEOUT_S = 60.0
WORKER_PING_TIMEOUT_S = 60.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def test_packaged_server_is_found_without_redis_on_path(tmp_path: Path) -> None:
    binary = find_redis_server(path=str(tmp_path))  # an empty PATH: no redis-server anywhere
    assert binary.exists() and os.access(binary, os.X_OK)
    port = free_port()
    child = Child("redis", redis_argv(binary, port, tmp_path), dict(os.environ))
    supervisor = Supervisor([child])
    supervisor.start(child)
    try:
        wait_until(lambda: redis_answers(port), 20, "the packaged Redis", threading.Event())
        assert (tmp_path / "redis.log").exists()
    finally:
        supervisor.stop_all()
    assert child.process is not None and not alive(child.process.pid)


def test_children_get_the_local_key_generated_once(tmp_path: Path) -> None:
    spec, key, created = api_keys_for(tmp_path, {})
    assert created and (tmp_path / LOCAL_KEY_FILENAME).read_text().strip() == key
    assert ApiKeyRing.from_spec(spec).tenant_for(key) == LOCAL_TENANT
    assert api_keys_for(tmp_path, {"RECON_API_KEYS": "  "}) == (spec, key, False)


def test_configured_keys_win_over_the_local_key(tmp_path: Path) -> None:
    configured = "acme:acme-key-0123456789abcdef"
    assert api_keys_for(tmp_path, {"RECON_API_KEYS": configured}) == (configured, "", False)
    assert not (tmp_path / LOCAL_KEY_FILENAME).exists()


def test_crashed_child_is_restarted_with_backoff() -> None:
    child = Child("flaky", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    supervisor = Supervisor([child], FAST)
    supervisor.start(child)
    deadline = time.monotonic() + 10
    while len(child.history) < 3 and time.monotonic() < deadline:
        supervisor.poll()
        time.sleep(0.05)
    supervisor.stop_all()
    assert len(child.history) >= 3 and child.failures >= 2
    assert FAST.delay(1) == 0.1 and FAST.delay(10) == 0.4


def test_stop_takes_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time; "
        f"p = subprocess.Popen(['sleep', '60']); open({str(pid_file)!r}, 'w').write(str(p.pid)); "
        "time.sleep(60)"
    )
    child = Child("parent", [sys.executable, "-c", script], dict(os.environ),
                  stop_signal=signal.SIGTERM, stop_timeout_s=5)
    supervisor = Supervisor([child])
    supervisor.start(child)
    wait_until(lambda: pid_file.exists() and pid_file.read_text() != "", 20, "the grandchild",
               threading.Event())
    grandchild = int(pid_file.read_text())
    supervisor.stop_all()
    deadline = time.monotonic() + 5
    while alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(grandchild)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
def test_children_die_with_the_supervisor(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import os, signal, subprocess, sys, time\n"
        "from recon.embedded.supervisor import Child, Supervisor\n"
        "c = Child('sleeper', ['sleep', '60'], dict(os.environ))\n"
        "Supervisor([c]).start(c)\n"
        f"open({str(pid_file)!r}, 'w').write(str(c.process.pid))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    import subprocess

    subprocess.run([sys.executable, "-c", script], timeout=30, check=False)
    child_pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child_pid)


def test_embedded_redis_refuses_clients_without_the_password(tmp_path: Path) -> None:
    password = new_redis_password()
    config = write_redis_auth_config(tmp_path, password)
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    port = free_port()
    child = Child("redis", redis_argv(find_redis_server(), port, tmp_path, config),
                  dict(os.environ))
    assert password not in " ".join(child.argv)  # `ps` shows command lines to every user
    supervisor = Supervisor([child])
    supervisor.start(child)
    try:
        wait_until(lambda: redis_answers(port, password), 20, "Redis", threading.Event())
        assert not redis_answers(port)
        assert not redis_answers(port, "not-the-password")
        assert _raw_reply(port, b"GET k\r\n").startswith(b"-NOAUTH")
        owner = redis.Redis.from_url(redis_url(port, password))
        assert owner.ping() and owner.set("k", "v")
        owner.close()
    finally:
        supervisor.stop_all()


def test_auth_config_is_rewritten_private_at_each_start(tmp_path: Path) -> None:
    config = tmp_path / REDIS_AUTH_CONFIG
    config.write_text("requirepass old\n")
    config.chmod(0o644)
    write_redis_auth_config(tmp_path, "new-password")
    assert config.read_text() == "requirepass new-password\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert new_redis_password() != new_redis_password()


def _raw_reply(port: int, command: bytes) -> bytes:
    """Redis's first answer to `command` on a fresh, unauthenticated connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(command)
        return sock.recv(256)


def _redis_port(serve: psutil.Process) -> int:
    """The port the Redis child of `serve` listens on (Redis rewrites its command line)."""
    for child in serve.children():
        if "redis" in child.name() or "valkey" in child.name():
            listening = [c for c in child.net_connections("tcp") if c.status == psutil.CONN_LISTEN]
            return int(listening[0].laddr.port)
    raise AssertionError(f"no Redis child among {serve.children()}")


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - loopback URL
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.mark.slow
def test_serve_works_behind_the_redis_password_and_never_shows_it(tmp_path: Path) -> None:
    port, data, log_path = free_port(), tmp_path / "data", tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECON_")}
    env["RECON_LOG_LEVEL"] = "debug"  # the most the processes ever say about their URLs
    with open(log_path, "wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "-m", "recon.cli", "serve", "--port", str(port),
             "--data-dir", str(data)],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    logs = lambda: log_path.read_text(errors="replace")  # noqa: E731
    try:
        wait_until(lambda: "API ready" in logs() or serve.poll() is not None,
                   SERVE_READY_TIMEOUT_S, "recon serve", threading.Event())
        assert serve.poll() is None, logs()
        password = (data / "redis" / REDIS_AUTH_CONFIG).read_text().split()[1]
        redis_port = _redis_port(psutil.Process(serve.pid))

        assert _raw_reply(redis_port, b"KEYS *\r\n").startswith(b"-NOAUTH")
        # The API reaches the job store and the broker with the password ...
        assert _ready(f"http://127.0.0.1:{port}/readyz"), logs()
        key = (data / LOCAL_KEY_FILENAME).read_text().strip()
        listing = urllib.request.Request(f"http://127.0.0.1:{port}/reconstructions",
                                         headers={"X-API-Key": key})
        with urllib.request.urlopen(listing, timeout=10) as answer:  # noqa: S310 - loopback
            assert answer.status == 200
        # ... and so does the worker: it answers a ping sent through the broker.
        from recon.infra.settings import Settings
        from recon.infra.task_queue import publisher_app

        control = publisher_app(Settings(redis_url=redis_url(redis_port, password))).control
        wait_until(lambda: bool(control.ping(timeout=1.0)), WORKER_PING_TIMEOUT_S,
                   "the worker's pong", threading.Event())
    finally:
        if serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=SERVE_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait()
    output = logs()
    assert "all processes stopped" in output
    assert "redis://:**@127.0.0.1" in output  # Celery did log its broker URL, masked
    assert password not in output
