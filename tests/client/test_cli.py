"""`recon submit/status/download/cancel/jobs` as a pipeline runs them: subprocesses against a
running service, their stderr a pipe (not a terminal), so progress comes as a few plain lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from recon.client import Client
from recon.client.cli import EXIT_API_ERROR, EXIT_CONNECTION, EXIT_JOB_FAILED, EXIT_USAGE
from recon.infra.job_store import JobStore
from recon.infra.storage import build_storage
from tests.client.support import LONG_PARAMS, RUN_TIMEOUT_S, TINY_PARAMS, settle, start_long_job
from tests.e2e.e2e_support import Stack, free_port, load_glb, recon_env

pytestmark = pytest.mark.e2e

MAX_PROGRESS_LINES = 30
"""A short run logs where each stage starts and ends and a line every 5 s: far fewer."""


def recon_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "recon", *args]


def cli_env(service: Stack, tenant: str = "acme") -> dict[str, str]:
    """The environment a pipeline sets: the service's URL and a tenant's key."""
    return recon_env({"RECON_URL": service.base_url, "RECON_API_KEY": service.keys[tenant]})


def run(service: Stack, *args: str, tenant: str = "acme") -> subprocess.CompletedProcess[str]:
    return subprocess.run(recon_command(*args), env=cli_env(service, tenant), capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)


def tiny_params() -> list[str]:
    return [f"--param={name}={value}" for name, value in TINY_PARAMS.items() if name != "preset"]


def test_submit_wait_writes_a_glb_with_a_few_plain_progress_lines(
        service: Stack, sphere_ply: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "sphere.glb"
    out.parent.mkdir()
    done = run(service, "submit", str(sphere_ply), "--preset", "fast", *tiny_params(),
               "--param", 'formats=["glb","ply"]', "--wait", "-o", str(out))
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.strip()
    status = run(service, "status", job_id, "--json")
    job = json.loads(status.stdout)
    assert job["status"] == "succeeded" and job["params"]["max_iterations"] == 60
    assert len(load_glb(out.read_bytes()).faces) == job["metrics"]["mesh"]["faces"]
    assert list(out.parent.iterdir()) == [out]  # no temporary file left beside it

    progress = done.stderr
    assert "\r" not in progress
    lines = progress.splitlines()
    assert len(lines) <= MAX_PROGRESS_LINES, progress
    assert any(line.startswith("train") for line in lines), progress
    assert f"job {job_id} succeeded" in progress and f"wrote {out}" in progress

    listed = run(service, "jobs", "--limit", "5")
    assert listed.returncode == 0 and listed.stdout.splitlines()[0].startswith(job_id)
    ply = tmp_path / "sphere.ply"
    fetched = run(service, "download", job_id, "-o", str(ply))
    assert fetched.returncode == 0, fetched.stderr
    assert ply.read_bytes().startswith(b"ply")


def test_a_job_that_fails_in_the_worker_exits_non_zero_with_its_reason(
        service: Stack, globex: Client, acme: Client, sphere_ply: Path) -> None:
    """The worker is kept busy with another tenant's job while the queued job's stored input is
    replaced by bytes that are no point cloud; the worker then fails it."""
    busy = start_long_job(globex, sphere_ply)
    submit = subprocess.Popen(
        recon_command("submit", str(sphere_ply), *tiny_params(), "--wait"),
        env=cli_env(service), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    job_id = ""
    try:
        assert submit.stdout is not None
        job_id = submit.stdout.readline().strip()  # printed as soon as the job is queued
        record = JobStore.from_settings(service.settings()).get(job_id)
        assert record is not None and record.status == "queued"
        build_storage(service.settings()).put_bytes(record.input_key, b"no point cloud here")
        globex.cancel(busy.id)
        _, stderr = submit.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if submit.poll() is None:
            submit.kill()
        settle(globex, busy.id)
        if job_id:
            settle(acme, job_id)
    error = acme.get(job_id).error
    assert submit.returncode == EXIT_JOB_FAILED, stderr
    assert error is not None and error.code == "invalid_point_cloud"
    assert f"recon: job {job_id} failed: {error.message} (invalid_point_cloud)" in stderr


def test_refusals_exit_with_the_api_message_and_code(service: Stack, sphere_ply: Path) -> None:
    unknown = run(service, "status", "0" * 32)
    assert unknown.returncode == EXIT_API_ERROR
    assert unknown.stderr.strip() == "recon: no such reconstruction (job_not_found)"

    invalid = run(service, "submit", str(sphere_ply), "--param", "resolution=8")
    assert invalid.returncode == EXIT_API_ERROR
    assert "resolution" in invalid.stderr and "(invalid_params)" in invalid.stderr

    nowhere = subprocess.run(recon_command("jobs", "--url", f"http://127.0.0.1:{free_port()}",
                                           "--retries", "1"), env=cli_env(service),
                             capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert nowhere.returncode == EXIT_CONNECTION
    assert "retry 1 of 1" in nowhere.stderr and "(connection_failed)" in nowhere.stderr

    keyless = subprocess.run(recon_command("jobs"), env=recon_env({"RECON_URL": service.base_url}),
                             capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert keyless.returncode == EXIT_USAGE and "RECON_API_KEY" in keyless.stderr


def test_cancel_stops_a_running_job(service: Stack, acme: Client, sphere_ply: Path) -> None:
    job = start_long_job(acme, sphere_ply)
    try:
        canceled = run(service, "cancel", job.id)
        assert canceled.returncode == 0, canceled.stderr
        assert canceled.stdout.strip() in (f"{job.id} canceled", f"{job.id} cancel requested")
    finally:
        settle(acme, job.id)
    assert acme.get(job.id).status == "canceled"
    assert LONG_PARAMS["max_iterations"] > acme.get(job.id).progress.step
