"""Worker faults on real processes: a job hit mid-training runs again elsewhere and ends cleanly.

One private stack (Redis, SeaweedFS S3, `recon api`, two `recon worker --concurrency 1`) with
the shipped heartbeat, lease and reaper timing. Each scenario submits a job, waits until it
trains, hits the worker running it, and measures how long until the job runs again on another
live worker (from the second run's `started_at`), then how it ends. A job must never stay
`running`; it ends `succeeded` with a mesh that loads, or `failed` with a clear code.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recon.infra.job_record import JobRecord
from tests.reliability.harness import (
    FAULT_PARAMS,
    Stack,
    Worker,
    describe,
    log_tail,
    ordered,
    running,
    sphere_ply,
)
from tests.reliability.record import record_scenario

pytestmark = pytest.mark.reliability

GROUP = "worker faults"
STACK_OPTIONS: dict[str, Any] = {"workers": 2}
RECOVERY_LIMIT_S = 60.0
"""A job hit by a worker fault must run again on another worker this soon (shipped timing)."""
RECOVERY_WAIT_S = RECOVERY_LIMIT_S + 15.0
"""How long to watch for the second run, so a late one is still measured."""
FINAL_TIMEOUT_S = 120.0
STUCK_FINAL_TIMEOUT_S = 20.0
"""After a job did not run again in `RECOVERY_WAIT_S`, how much longer to wait for its end."""
CLEAR_FAILURE_CODES = {"worker_lost", "time_limit", "infrastructure_error", "storage_unavailable"}
TASK_END = re.compile(r"Task recon\.reconstruct\[[^\]]+\] (succeeded|failed|raised|retry)"
                      r"(?: in [0-9.]+s)?:? ?([^\n]*)")
KEY_RESULTS = (
    "recovery_s", "second_run_on_other_live_worker", "final_status", "error_code", "attempts",
    "lost_runs", "mesh_faces", "terminated_worker_exit_s", "stale_run_end",
    "record_changed_by_stale_run", "total_s", "ended_after_s", "status_12s_later",
)

TIME_LIMITS = {
    "RECON_JOB_SOFT_TIME_LIMIT_S": "5",
    "RECON_JOB_HARD_TIME_LIMIT_S": "8",
    "RECON_BROKER_VISIBILITY_TIMEOUT_S": "10",
}
SLOW_POINTS = 500_000
"""Loading and preparing this many points takes longer than the 5 s soft limit on 2 CPUs, and
the engine's time plan cannot shorten it."""


class ExitWatch:
    """Measures when a process exits, from a side thread (seconds after `started`)."""

    def __init__(self, worker: Worker, started: float) -> None:
        self.exited_after_s: float | None = None
        self._worker, self._started = worker, started
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = self._started + FINAL_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self._worker.alive():
                self.exited_after_s = round(time.monotonic() - self._started, 2)
                return
            time.sleep(0.1)


def fault_scenario(
    stack: Stack, points: Path, inject: Callable[[Worker, int], None], *,
    other_main: bool = True,
) -> dict[str, Any]:
    """Submit, wait for training, `inject(worker, pool_pid)`, then watch recovery and the end.

    Returns what was measured; the caller asserts and records. `other_main`: the job must run
    again under the other worker's main process (False: any other live pool process).
    """
    job_id = stack.submit(points, FAULT_PARAMS)
    first = stack.wait_training(job_id)
    worker, child_pid = stack.runner(first)
    assert worker is not None and child_pid is not None, f"no worker for {describe(first)}"
    fault_wall, fault_mono = time.time(), time.monotonic()
    inject(worker, child_pid)
    measured: dict[str, Any] = {"job_id": job_id, "faulted_worker": worker.name,
                                "first_run": first.worker_id}

    def moved(record: JobRecord) -> bool:
        return record.is_final or (record.status == "running"
                                   and record.worker_id != first.worker_id)

    try:
        second = stack.wait_record(job_id, moved, RECOVERY_WAIT_S, "a run elsewhere or an end")
    except AssertionError as exc:
        measured.update(recovered=False, stuck=str(exc).splitlines()[0])
        return measured
    rerun = second.worker_id != first.worker_id and second.started_at is not None
    measured["recovered"] = bool(rerun)
    measured["record_after_fault"] = describe(second)
    if rerun:
        assert second.started_at is not None
        measured["recovery_s"] = round(second.started_at - fault_wall, 2)
        runner, _ = stack.runner(second)
        measured["second_run"] = second.worker_id
        measured["second_worker"] = runner.name if runner is not None else None
        alive_elsewhere = runner is not None and runner.alive() and (
            runner is not worker if other_main else True)
        measured["second_run_on_other_live_worker"] = alive_elsewhere
    measured["fault_mono"] = fault_mono
    return measured


def finish(stack: Stack, measured: dict[str, Any]) -> JobRecord | None:
    """Wait for the end; add the end, the attempts and the mesh check to `measured`."""
    job_id = measured["job_id"]
    timeout = FINAL_TIMEOUT_S if measured.get("recovered") else STUCK_FINAL_TIMEOUT_S
    try:
        final = stack.wait_final(job_id, timeout)
    except AssertionError as exc:
        measured.update(final_status=stack.record(job_id).status.value,
                        stuck=str(exc).splitlines()[0])
        return None
    measured.update(
        final_status=final.status.value, attempts=final.attempts,
        lost_runs=getattr(final, "lost_runs", None), error_code=final.error_code,
        error_message=final.error_message, final_worker=final.worker_id,
        total_s=round(time.monotonic() - measured.pop("fault_mono", time.monotonic()), 1),
    )
    if final.status == "succeeded":
        try:
            mesh = stack.mesh(job_id)
            measured.update(mesh_faces=len(mesh.faces), mesh_watertight=bool(mesh.is_watertight))
        except AssertionError as exc:
            measured["mesh_error"] = str(exc)
    return final


def ended_cleanly(measured: dict[str, Any]) -> bool:
    if measured.get("final_status") == "succeeded":
        return bool(measured.get("mesh_faces"))
    return (measured.get("final_status") == "failed"
            and measured.get("error_code") in CLEAR_FAILURE_CODES)


def verdict(measured: dict[str, Any]) -> list[str]:
    """What is wrong with a fault scenario's outcome (empty: it passed)."""
    problems = []
    if not measured.get("recovered"):
        problems.append("the job never ran again on another worker "
                        f"(after the fault: {measured.get('record_after_fault')}; "
                        f"{measured.get('stuck', '')})")
    else:
        if measured.get("recovery_s", 1e9) > RECOVERY_LIMIT_S:
            problems.append(f"ran again only {measured['recovery_s']} s after the fault")
        if not measured.get("second_run_on_other_live_worker"):
            problems.append(f"second run {measured.get('second_run')} is not on another live "
                            "worker")
    if not ended_cleanly(measured):
        problems.append(f"did not end cleanly: {measured.get('final_status')} "
                        f"{measured.get('error_code')}: {measured.get('error_message')} "
                        f"{measured.get('mesh_error', '')}{measured.get('stuck', '')}")
    return problems


def report(request: pytest.FixtureRequest, stack: Stack, name: str,
           measured: dict[str, Any], problems: list[str]) -> None:
    measured = ordered(measured, KEY_RESULTS)
    record_scenario(GROUP, name, measured, passed=not problems, test=request.node.nodeid)
    assert not problems, f"{name}: {'; '.join(problems)}\nmeasured: {measured}\n{stack.logs()}"


def test_sigkill_of_the_worker_process_group_mid_training(
    stack: Stack, fault_points: Path, request: pytest.FixtureRequest
) -> None:
    measured = fault_scenario(stack, fault_points,
                              lambda worker, _: stack.kill_worker_group(worker))
    finish(stack, measured)
    report(request, stack, "SIGKILL of the worker (main process and pool) mid-training",
           measured, verdict(measured))


def test_sigkill_of_the_pool_process_only_mid_training(
    stack: Stack, fault_points: Path, request: pytest.FixtureRequest
) -> None:
    measured = fault_scenario(stack, fault_points,
                              lambda _, pid: stack.kill_pool_child(pid), other_main=False)
    finish(stack, measured)
    report(request, stack, "SIGKILL of the pool process only (OOM kill) mid-training",
           measured, verdict(measured))


def test_sigterm_of_the_worker_mid_job_hands_the_job_over(
    stack: Stack, fault_points: Path, request: pytest.FixtureRequest
) -> None:
    watch: list[ExitWatch] = []

    def terminate(worker: Worker, _: int) -> None:
        stack.terminate_worker(worker)
        watch.append(ExitWatch(worker, time.monotonic()))

    measured = fault_scenario(stack, fault_points, terminate)
    finish(stack, measured)
    exit_watch = watch[0]
    deadline = time.monotonic() + 30
    while exit_watch.exited_after_s is None and time.monotonic() < deadline:
        time.sleep(0.2)
    measured["terminated_worker_exit_s"] = exit_watch.exited_after_s
    problems = verdict(measured)
    if exit_watch.exited_after_s is None:
        problems.append("the SIGTERMed worker did not exit")
    report(request, stack, "SIGTERM of the worker mid-job (deploy, scale-down)",
           measured, problems)


def test_frozen_pool_process_is_replaced_and_its_stale_run_writes_nothing(
    stack: Stack, fault_points: Path, request: pytest.FixtureRequest
) -> None:
    frozen: list[tuple[Worker, int]] = []

    def freeze(worker: Worker, pid: int) -> None:
        stack.freeze(pid)
        frozen.append((worker, pid))

    measured = fault_scenario(stack, fault_points, freeze)
    worker, pid = frozen[0]
    log_offset = worker.log_path.stat().st_size
    stack.thaw(pid)  # the stale run resumes while (or after) the second run owns the job
    measured["thawed_after_recovery"] = bool(measured.get("recovered"))
    final = finish(stack, measured)
    problems = verdict(measured)
    if final is not None:
        before = snapshot(stack, final)

        def stale_run_ended() -> str | None:
            with open(worker.log_path, "rb") as handle:
                handle.seek(log_offset)
                found = TASK_END.search(handle.read().decode(errors="replace"))
            return f"{found.group(1)} {found.group(2)}"[:120] if found else None

        deadline, line = time.monotonic() + 45, None
        while line is None and time.monotonic() < deadline and worker.alive():
            line = stale_run_ended()
            time.sleep(0.25)
        measured["stale_run_end"] = line
        time.sleep(1.0)  # anything it would write after its task returned
        after = snapshot(stack, stack.record(measured["job_id"]))
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        measured["record_changed_by_stale_run"] = changed
        if line is None:
            problems.append("the resumed stale run never ended "
                            f"(log: {log_tail(worker.log_path, 1500)})")
        if changed:
            problems.append(f"the stale run changed the final job: {changed}")
        if final.worker_id == measured["first_run"]:
            problems.append("the final record names the frozen run as its worker")
    report(request, stack, "Hung pool process (SIGSTOP) mid-training, resumed later",
           measured, problems)


def snapshot(stack: Stack, record: JobRecord) -> dict[str, Any]:
    """What a stale run must not change: the final fields and the served mesh object."""
    prefix = getattr(record, "output_prefix", None)
    served = None
    if stack.s3 is not None and record.status == "succeeded":
        keys = [k for k in stack.s3.keys(f"tenants/{record.tenant}/jobs/{record.id}/")
                if k.rsplit("/", 1)[-1] == "mesh.glb" and (prefix is None or k.startswith(prefix))]
        served = {k: stack.s3.head(k) for k in keys}
    return {
        "status": record.status.value, "finished_at": record.finished_at,
        "metrics": record.metrics, "worker_id": record.worker_id,
        "error_code": record.error_code, "output_prefix": prefix, "mesh_objects": served,
    }


def test_job_over_its_soft_time_limit_fails_with_time_limit(
    stack: Stack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A worker (with its own API and queue) under a 5 s soft / 8 s hard limit."""
    limited = Stack(tmp_path / "time-limit", workers=1, extra_env=TIME_LIMITS,
                    redis_server=stack.redis, seaweed=stack.s3)
    points = sphere_ply(tmp_path / "slow.ply", SLOW_POINTS)
    with running(limited):
        started = time.monotonic()
        job_id = limited.submit(points, {"preset": "fast"})
        try:
            final = limited.wait_final(job_id, 60)
        except AssertionError as exc:
            measured = {"job_id": job_id, "stuck": str(exc).splitlines()[0],
                        "record": describe(limited.store.get(job_id))}
            report(request, limited, "Job over its soft time limit (5 s)", measured,
                   ["the job did not end within 60 s"])
            return
        ended_s = time.monotonic() - started
        # past the visibility timeout (10 s): an unacknowledged message would be redelivered
        time.sleep(max(0.0, 12.0 - ended_s))
        later = limited.record(job_id)
        mesh_status = limited.mesh_status(job_id)
    measured = {
        "job_id": job_id, "limits": TIME_LIMITS, "points": SLOW_POINTS,
        "final_status": final.status.value, "error_code": final.error_code,
        "error_message": final.error_message, "attempts": later.attempts,
        "ended_after_s": round(ended_s, 1), "status_12s_later": later.status.value,
        "mesh_status": mesh_status,
    }
    problems = []
    if final.status != "failed" or final.error_code != "time_limit":
        problems.append(f"ended {describe(final)}")
    if later.attempts != 1 or later.status != final.status:
        problems.append(f"retried or changed afterwards: {describe(later)}")
    if mesh_status != 409:
        problems.append(f"GET mesh answered {mesh_status}")
    report(request, limited, "Job over its soft time limit (5 s)", measured, problems)
