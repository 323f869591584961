"""`make run` from the repository, as a user runs it: the README's walkthrough (client and curl)
succeeds against it, a killed worker is restarted, and Ctrl-C (SIGINT to the process group, as a
terminal sends it) leaves no process behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest
from e2e_support import REPO_ROOT, free_port, load_glb, recon_env, wait_for

pytestmark = pytest.mark.e2e

READY_TIMEOUT_S = 120
WALKTHROUGH_TIMEOUT_S = 300
SHUTDOWN_TIMEOUT_S = 60
RESTART_TIMEOUT_S = 30


def readme_walkthrough() -> str:
    """The shell block between the walkthrough markers of README.md."""
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("<!-- walkthrough:start -->", 1)[1].split("<!-- walkthrough:end -->")[0]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "README.md has no walkthrough block"
    return match.group(1)


def worker_processes(serve: psutil.Process) -> list[psutil.Process]:
    """The live supervised `recon worker` children of `recon serve`."""
    found = []
    for child in serve.children():
        try:
            if "worker" in child.cmdline():
                found.append(child)
        except (psutil.ZombieProcess, psutil.NoSuchProcess):
            continue  # exited; the supervisor reaps it on its next poll
    return found


def serve_process(make: psutil.Process) -> psutil.Process:
    """The `recon serve` process that `make run` started."""
    for child in make.children(recursive=True):
        if "serve" in child.cmdline():
            return child
    raise AssertionError(f"make run started no `recon serve`: {make.children(recursive=True)}")


def test_make_run_walkthrough_restart_and_clean_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    serve_args = f"--port {port} --data-dir {tmp_path / 'data'}"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen(
            ["make", "--no-print-directory", "-C", str(REPO_ROOT), "run",
             f"SERVE_ARGS={serve_args}"],
            cwd=tmp_path, env=recon_env({}), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    logs = lambda: log_path.read_text(errors="replace")[-6000:]  # noqa: E731
    try:
        wait_for(lambda: "API ready" in log_path.read_text(errors="replace"), READY_TIMEOUT_S,
                 "recon serve to be ready", logs=logs)
        key = (tmp_path / "data" / "api_key").read_text().strip()
        assert f"API key (shown once, kept in {tmp_path / 'data' / 'api_key'}): {key}" in logs()

        walk = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", readme_walkthrough()], cwd=tmp_path,
            env=recon_env({"RECON_URL": f"http://127.0.0.1:{port}"}),
            capture_output=True, text=True, timeout=WALKTHROUGH_TIMEOUT_S,
        )
        assert walk.returncode == 0, f"{walk.stdout}\n{walk.stderr}\n{logs()}"
        assert "succeeded" in walk.stdout
        listed = httpx.get(f"http://127.0.0.1:{port}/v1/reconstructions",
                           headers={"X-API-Key": key}, timeout=30).json()["items"]
        # newest first: the curl job, then the client's
        assert [job["status"] for job in listed] == ["succeeded", "succeeded"]
        for name, job in (("torus-curl.glb", listed[0]), ("torus.glb", listed[1])):
            mesh = load_glb((tmp_path / name).read_bytes())
            assert len(mesh.faces) == job["metrics"]["mesh"]["faces"]
            # Watertightness is the engine's to guarantee (and it reports it); the GLB keeps it.
            assert mesh.is_watertight == job["metrics"]["mesh"]["watertight"]

        make = psutil.Process(serve.pid)
        parent = serve_process(make)
        (first,) = worker_processes(parent)
        first.kill()
        restarted = wait_for(
            lambda: [p for p in worker_processes(parent) if p.pid != first.pid],
            RESTART_TIMEOUT_S, "the supervisor to restart the worker", logs=logs,
        )
        assert restarted

        family = [make, parent, *parent.children(recursive=True)]
        assert len(family) >= 5, family  # make, serve, redis, worker (+ its pool), api
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(timeout=SHUTDOWN_TIMEOUT_S)  # make itself dies of the SIGINT
        parent.wait(timeout=SHUTDOWN_TIMEOUT_S)
        assert "all processes stopped" in logs(), logs()
        _, alive = psutil.wait_procs(family, timeout=10)
        assert not alive, f"left behind: {[(p.pid, p.cmdline()) for p in alive]}"
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
