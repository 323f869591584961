"""Dependency faults on real processes: Redis, the broker link and object storage fail under jobs.

One private stack (Redis with its append-only file, SeaweedFS S3, `recon api`, one
`recon worker --concurrency 1`, so that a second job waits queued behind the first) with the
shipped heartbeat, lease and reaper timing. The run's result-retry window is shortened to
`RESULT_RETRY_S` so that the "S3 stays down" scenario ends within the suite's budget; it is
recorded with each outcome. Disk full runs on its own local-storage stack on a small tmpfs.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.harness import (
    FAULT_PARAMS,
    TINY_PARAMS,
    Stack,
    describe,
    running,
)
from tests.reliability.record import record_scenario

pytestmark = pytest.mark.reliability

GROUP = "dependency faults"
RESULT_RETRY_S = 20
STACK_OPTIONS: dict[str, Any] = {
    "workers": 1, "extra_env": {"RECON_RESULT_RETRY_S": str(RESULT_RETRY_S)},
}
OUTAGE_S = 10.0
FAST_ANSWER_S = 2.0
"""While a dependency is down the API must still answer (503) this fast."""
READINESS_CACHE_S = 2.0
"""/readyz may reuse its last check this long (Settings.readiness_cache_s): probe after it."""
FINAL_TIMEOUT_S = 150.0
STORAGE_FAILURE_CODES = {"infrastructure_error", "storage_unavailable"}
DISK_FULL_CODES = {"storage_full", "disk_full", "no_space", "insufficient_storage",
                   "storage_unavailable", "infrastructure_error"}
TMPFS_SIZE = "4m"
DISK_FREE_LEFT = 96 * 1024
"""Free bytes left on the full disk: the input (~4 KB) fits, the mesh (~0.5 MB) does not."""


def report(request: pytest.FixtureRequest, stack: Stack, name: str,
           measured: dict[str, Any], problems: list[str]) -> None:
    record_scenario(GROUP, name, measured, passed=not problems, test=request.node.nodeid)
    assert not problems, f"{name}: {'; '.join(problems)}\nmeasured: {measured}\n{stack.logs()}"


def timed(call: Any) -> tuple[int | str, float]:
    """(status code or error name, seconds) of one HTTP call."""
    started = time.monotonic()
    try:
        code: int | str = call().status_code
    except httpx.HTTPError as exc:
        code = type(exc).__name__
    return code, round(time.monotonic() - started, 3)


def test_redis_restart_loses_no_job_and_the_api_answers_503_meanwhile(
    stack: Stack, fault_points: Path, tiny_points: Path, request: pytest.FixtureRequest
) -> None:
    """Redis stopped ~10 s under one running and two queued jobs, then back from its AOF."""
    running_job = stack.submit(fault_points, FAULT_PARAMS)
    stack.wait_training(running_job)
    queued = [stack.submit(tiny_points, TINY_PARAMS) for _ in range(2)]
    states = {j: stack.record(j).status.value for j in [running_job, *queued]}
    stack.redis.stop()
    down_at = time.monotonic()
    answers: dict[str, list[tuple[int | str, float]]] = {"readyz": [], "post": [], "get": []}
    body = {"file": (tiny_points.name, tiny_points.read_bytes(), "application/octet-stream")}
    with stack.service.client(timeout=10) as http:
        time.sleep(READINESS_CACHE_S + 0.5)
        while time.monotonic() - down_at < OUTAGE_S:
            answers["readyz"].append(timed(lambda: http.get("/readyz")))
            answers["get"].append(timed(lambda: http.get(f"/reconstructions/{running_job}")))
            answers["post"].append(timed(lambda: http.post(
                "/reconstructions", files=body, data={"params": '{"preset": "fast"}'})))
            time.sleep(0.5)
    stack.redis.start()
    outage_s = round(time.monotonic() - down_at, 1)
    ready_after_s = None
    with stack.service.client() as http:
        for _ in range(120):
            if http.get("/readyz").status_code == 200:
                ready_after_s = round(time.monotonic() - down_at - outage_s, 1)
                break
            time.sleep(0.25)
    finals = {}
    for job_id in [running_job, *queued]:
        try:
            finals[job_id] = stack.wait_final(job_id, FINAL_TIMEOUT_S)
        except AssertionError:
            finals[job_id] = None
    latencies = [s for calls in answers.values() for _, s in calls]
    measured: dict[str, Any] = {
        "jobs_succeeded": sum(1 for r in finals.values() if r is not None
                              and r.status == "succeeded"),
        "jobs": len(finals),
        "attempts": [r.attempts if r else None for r in finals.values()],
        "answers_during_outage": {k: sorted({str(c) for c, _ in v}) for k, v in answers.items()},
        "max_answer_s": max(latencies, default=None),
        "probes": sum(len(v) for v in answers.values()),
        "outage_s": outage_s, "ready_again_after_restart_s": ready_after_s,
        "states_before": list(states.values()),
        "finals": {j: describe(r) if r else describe(stack.store.get(j))
                   for j, r in finals.items()},
        "result_retry_s": RESULT_RETRY_S,
    }
    problems = []
    for kind, calls in answers.items():
        bad = [c for c, _ in calls if c != 503]
        if bad or not calls:
            problems.append(f"{kind} during the outage answered {sorted(set(map(str, bad)))}")
    if latencies and max(latencies) > FAST_ANSWER_S:
        problems.append(f"an answer took {max(latencies)} s during the outage")
    if ready_after_s is None:
        problems.append("/readyz did not come back to 200")
    lost = [j for j, r in finals.items() if r is None or r.status != "succeeded"]
    if lost:
        problems.append(f"jobs not succeeded: {[measured['finals'][j] for j in lost]}")
    report(request, stack, "Redis down ~10 s (restart from AOF) under 1 running + 2 queued jobs",
           measured, problems)


def test_broker_disconnect_does_not_restart_the_running_job(
    stack: Stack, fault_points: Path, request: pytest.FixtureRequest
) -> None:
    job_id = stack.submit(fault_points, FAULT_PARAMS)
    first = stack.wait_training(job_id)
    killed = stack.redis.kill_clients()
    final = stack.wait_final(job_id, FINAL_TIMEOUT_S)
    measured = {
        "final_status": final.status.value, "attempts": final.attempts,
        "same_run": final.worker_id == first.worker_id, "clients_killed": killed,
        "final": describe(final),
    }
    problems = []
    if final.status != "succeeded" or final.attempts != 1 or final.worker_id != first.worker_id:
        problems.append(f"the job was restarted or did not succeed: {describe(final)}")
    report(request, stack, "Broker and job-store connections killed (CLIENT KILL) mid-training",
           measured, problems)


def test_s3_outage_of_10_s_mid_training_still_gives_a_mesh(
    stack: Stack, fault_points: Path, request: pytest.FixtureRequest
) -> None:
    """S3 stopped while the job trains; back ~10 s later, but never before training ended."""
    assert stack.s3 is not None
    job_id = stack.submit(fault_points, FAULT_PARAMS)
    stack.wait_training(job_id)
    stack.s3.stop()
    down_at = time.monotonic()
    stage = "train"
    while time.monotonic() - down_at < OUTAGE_S or (
            stage == "train" and time.monotonic() - down_at < 3 * OUTAGE_S):
        record = stack.store.get(job_id)
        stage = record.progress.get("stage", "") if record else ""
        time.sleep(0.25)
    stage_when_back = f"{record.status.value}/{stage}" if record else "?"
    stack.s3.start()
    outage_s = round(time.monotonic() - down_at, 1)
    final = stack.wait_final(job_id, FINAL_TIMEOUT_S)
    measured: dict[str, Any] = {
        "final_status": final.status.value, "error_code": final.error_code,
        "attempts": final.attempts, "outage_s": outage_s,
        "job_when_s3_came_back": stage_when_back, "result_retry_s": RESULT_RETRY_S,
        "final": describe(final),
    }
    problems = []
    if final.status != "succeeded":
        problems.append(f"ended {describe(final)}")
    else:
        try:
            mesh = stack.mesh(job_id)
            measured["mesh_faces"] = len(mesh.faces)
        except AssertionError as exc:
            problems.append(str(exc))
    report(request, stack, "S3 down ~10 s while the job trains, then back", measured, problems)


def test_s3_down_for_good_fails_the_job_cleanly(
    stack: Stack, fault_points: Path, request: pytest.FixtureRequest
) -> None:
    assert stack.s3 is not None
    job_id = stack.submit(fault_points, FAULT_PARAMS)
    record = stack.wait_training(job_id)
    stack.s3.stop()
    down_at = time.monotonic()
    with stack.service.client() as http:
        time.sleep(READINESS_CACHE_S + 0.5)
        readyz = timed(lambda: http.get("/readyz"))
        try:
            final = stack.wait_final(job_id, FINAL_TIMEOUT_S)
        except AssertionError:
            final = None
        ended_s = round(time.monotonic() - down_at, 1)
        mesh_status = http.get(f"/reconstructions/{job_id}/mesh",
                               params={"format": "glb"}).status_code
    stack.s3.start()
    prefix = f"tenants/{record.tenant}/jobs/{job_id}/"
    keys = stack.s3.keys(prefix)
    meshes = [k for k in keys if k.rsplit("/", 1)[-1].startswith("mesh.")]
    message = (final.error_message or "") if final else ""
    measured: dict[str, Any] = {
        "final_status": final.status.value if final else None,
        "error_code": final.error_code if final else None,
        "endpoint_in_message": any(s in message for s in (stack.s3.hostport,
                                                           f":{stack.s3.s3_port}")),
        "mesh_status": mesh_status, "mesh_objects": meshes, "failed_after_s": ended_s,
        "readyz_while_down": readyz[0], "result_retry_s": RESULT_RETRY_S,
        "error_message": message, "objects_under_job_prefix": keys,
    }
    problems = []
    if final is None:
        problems.append("the job did not end")
    elif final.status != "failed" or final.error_code not in STORAGE_FAILURE_CODES:
        problems.append(f"ended {describe(final)}")
    leaks = [s for s in (stack.s3.hostport, f":{stack.s3.s3_port}") if s in message]
    if leaks:
        problems.append(f"the error message names the S3 endpoint: {message!r}")
    if mesh_status != 409:
        problems.append(f"GET mesh answered {mesh_status}")
    if meshes:
        problems.append(f"mesh objects left under the job's prefix: {meshes}")
    if readyz[0] != 503:
        problems.append(f"/readyz answered {readyz[0]} while S3 was down")
    report(request, stack, "S3 down for good while the job trains", measured, problems)


def test_disk_full_on_local_storage_fails_the_job_without_a_partial_mesh(
    stack: Stack, tmp_path: Path, tiny_points: Path, request: pytest.FixtureRequest
) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs",
                              str(mount)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        local = Stack(tmp_path / "local", s3=False, workers=1, redis_server=stack.redis,
                      extra_env={"RECON_DATA_DIR": str(mount)})
        with running(local):
            disk_full_scenario(local, mount, tiny_points, request)
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def disk_full_scenario(local: Stack, mount: Path, points: Path,
                       request: pytest.FixtureRequest) -> None:
    stat = os.statvfs(mount)
    free = stat.f_bavail * stat.f_frsize
    with open(mount / "filler.bin", "wb") as handle:
        handle.write(b"\0" * max(0, free - DISK_FREE_LEFT))
    stat = os.statvfs(mount)
    free_left = stat.f_bavail * stat.f_frsize
    params = {"preset": "fast", "max_iterations": 50, "resolution": 64}
    job_id = local.submit(points, params)
    try:
        final = local.wait_final(job_id, 60)
    except AssertionError:
        final = None
    folder = mount / "objects" / "tenants" / next(iter(local.keys)) / "jobs" / job_id
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    partial = [f for f in files if Path(f).name.startswith("mesh.") or f.endswith(".partial")]
    mesh_status = local.mesh_status(job_id)
    measured: dict[str, Any] = {
        "final_status": final.status.value if final else None,
        "error_code": final.error_code if final else None,
        "mesh_status": mesh_status, "partial_files": partial, "files_in_job_folder": files,
        "tmpfs": TMPFS_SIZE, "free_bytes_left": free_left,
        "final": describe(final) if final else describe(local.store.get(job_id)),
    }
    problems = []
    if final is None:
        problems.append("the job did not end")
    elif final.status != "failed" or final.error_code not in DISK_FULL_CODES:
        problems.append(f"ended {describe(final)}")
    if mesh_status != 409:
        problems.append(f"GET mesh answered {mesh_status}")
    if partial:
        problems.append(f"partial mesh files visible: {partial}")
    report(request, local, "Disk full on local storage while the results are written",
           measured, problems)
