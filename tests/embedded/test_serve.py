"""The embedded default's parts: Redis binary discovery (including the pip-packaged server),
the API keys given to the children, and the supervisor's restart and clean-stop behaviour."""

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from recon.api.auth import LOCAL_KEY_FILENAME, LOCAL_TENANT, ApiKeyRing
from recon.embedded.serve import (
    api_keys_for,
    find_redis_server,
    free_port,
    redis_answers,
    redis_argv,
    wait_until,
)
from recon.embedded.supervisor import Child, RestartPolicy, Supervisor

FAST = RestartPolicy(initial_backoff_s=0.1, max_backoff_s=0.4, stable_after_s=60.0)


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
