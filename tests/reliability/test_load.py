"""Load on real processes: many clients, three tenants, paced status polling and event streams.

One private stack (Redis, SeaweedFS S3, `recon api`, two workers) on loopback. Submitter threads
send `JOBS` tiny jobs over three tenants while poller threads read job status at a fixed total
rate and three clients follow event streams to the end. Asserted: no job lost, no job run twice,
no 5xx. Measured and recorded (not asserted): submit and status latency (p50, p99, max; the
target is a status p99 under 50 ms at 200 requests/s), the achieved request rate, and the
throughput of one batch of tiny jobs with two workers and with one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.harness import (
    FINAL,
    TINY_PARAMS,
    Stack,
    describe,
    percentile,
    stop_process,
)
from tests.reliability.record import record_scenario, scaled

pytestmark = pytest.mark.reliability

GROUP = "load"
TENANTS = ("acme", "globex", "initech")
STACK_OPTIONS: dict[str, Any] = {
    "workers": 2, "tenants": TENANTS,
    "extra_env": {"RECON_MAX_CONCURRENT_JOBS_PER_TENANT": "100"},
}
JOBS = scaled(12, 60)
SUBMITTERS = scaled(3, 6)
POLL_RATE = 200.0
"""Status requests per second, all poller threads together (paced, not as fast as possible)."""
POLLERS = 8
STREAMS = 3
DEADLINE_S = scaled(150, 600)
"""Every accepted job must have ended `succeeded` this long after the first submission."""
STATUS_P99_TARGET_MS = 50.0


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def latency_summary(samples: list[float]) -> dict[str, float | None]:
    return {"p50_ms": ms(percentile(samples, 0.5)), "p99_ms": ms(percentile(samples, 0.99)),
            "max_ms": ms(max(samples, default=None)), "count": len(samples)}


class Load:
    """Shared state of one load run (threads append under `lock`)."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.jobs: list[tuple[str, str]] = []  # (job id, tenant)
        self.submit_latency: list[float] = []
        self.status_latency: list[float] = []
        self.codes: dict[str, int] = {}
        self.errors: list[str] = []
        self.streams: list[dict[str, Any]] = []

    def count(self, kind: str, code: int | str) -> None:
        with self.lock:
            key = f"{kind} {code}"
            self.codes[key] = self.codes.get(key, 0) + 1

    def submitter(self, indices: list[int], points: Path) -> None:
        clients = {t: self.stack.service.client(t) for t in TENANTS}
        body = points.read_bytes()
        try:
            for i in indices:
                tenant = TENANTS[i % len(TENANTS)]
                started = time.monotonic()
                try:
                    answer = clients[tenant].post(
                        "/reconstructions",
                        files={"file": (points.name, body, "application/octet-stream")},
                        data={"params": json.dumps({**TINY_PARAMS, "seed": i})})
                except httpx.HTTPError as exc:
                    self.count("POST", type(exc).__name__)
                    continue
                elapsed = time.monotonic() - started
                self.count("POST", answer.status_code)
                with self.lock:
                    self.submit_latency.append(elapsed)
                    if answer.status_code == 202:
                        self.jobs.append((answer.json()["id"], tenant))
                    else:
                        self.errors.append(f"POST {answer.status_code}: {answer.text[:200]}")
        finally:
            for client in clients.values():
                client.close()

    def poller(self, index: int, period_s: float) -> None:
        clients = {t: self.stack.service.client(t, timeout=10) for t in TENANTS}
        next_at = time.monotonic() + period_s * index / POLLERS
        n = index
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                if now < next_at:
                    time.sleep(next_at - now)
                next_at = max(next_at + period_s, time.monotonic() - period_s)
                with self.lock:
                    if not self.jobs:
                        continue
                    job_id, tenant = self.jobs[n % len(self.jobs)]
                n += 1
                started = time.monotonic()
                try:
                    answer = clients[tenant].get(f"/reconstructions/{job_id}")
                except httpx.HTTPError as exc:
                    self.count("GET", type(exc).__name__)
                    continue
                elapsed = time.monotonic() - started
                self.count("GET", answer.status_code)
                with self.lock:
                    self.status_latency.append(elapsed)
        finally:
            for client in clients.values():
                client.close()

    def follower(self, job_id: str, tenant: str) -> None:
        """Hold an event stream open until the job's final event."""
        events: list[str] = []
        outcome: dict[str, Any] = {"job_id": job_id, "events": 0, "final_event": None}
        try:
            with self.stack.service.client(tenant, timeout=30) as http, http.stream(
                    "GET", f"/reconstructions/{job_id}/events") as answer:
                outcome["status"] = answer.status_code
                for line in answer.iter_lines():
                    if line.startswith("event:"):
                        name = line.split(":", 1)[1].strip()
                        events.append(name)
                        if name in FINAL:
                            outcome["final_event"] = name
                            break
                    if self.stop.is_set():
                        break
        except httpx.HTTPError as exc:
            outcome["error"] = repr(exc)
        outcome["events"] = len(events)
        with self.lock:
            self.streams.append(outcome)


def start(target: Callable[..., None], *args: Any) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def wait_all_final(stack: Stack, job_ids: list[str], deadline: float) -> dict[str, Any]:
    """Poll the job store until every job is final or the deadline passes."""
    records: dict[str, Any] = {}
    pending = set(job_ids)
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            record = stack.store.get(job_id)
            records[job_id] = record
            if record is not None and record.status in FINAL:
                pending.discard(job_id)
        time.sleep(0.25)
    for job_id in pending:
        records[job_id] = stack.store.get(job_id)
    return records


def batch_throughput(stack: Stack, points: Path, jobs: int) -> dict[str, Any]:
    """Submit `jobs` tiny jobs at once; jobs/min from the first submission to the last end."""
    started = time.monotonic()
    ids = [stack.submit(points, {**TINY_PARAMS, "seed": i}, tenant=TENANTS[i % len(TENANTS)])
           for i in range(jobs)]
    records = wait_all_final(stack, ids, started + DEADLINE_S)
    elapsed = time.monotonic() - started
    ok = sum(1 for r in records.values() if r is not None and r.status == "succeeded")
    return {"jobs": jobs, "succeeded": ok, "seconds": round(elapsed, 1),
            "jobs_per_min": round(60.0 * ok / elapsed, 1)}


def test_load_many_clients_three_tenants_paced_polling_and_event_streams(
    stack: Stack, tiny_points: Path, request: pytest.FixtureRequest
) -> None:
    load = Load(stack)
    shares = [list(range(i, JOBS, SUBMITTERS)) for i in range(SUBMITTERS)]
    started = time.monotonic()
    pollers = [start(load.poller, i, POLLERS / POLL_RATE) for i in range(POLLERS)]
    submitters = [start(load.submitter, share, tiny_points) for share in shares]
    followers: list[threading.Thread] = []
    while any(t.is_alive() for t in submitters) or len(followers) < min(STREAMS, len(load.jobs)):
        with load.lock:
            for job_id, tenant in load.jobs[len(followers):STREAMS]:
                followers.append(start(load.follower, job_id, tenant))
        time.sleep(0.05)
    submitted_s = time.monotonic() - started
    poll_started = started
    records = wait_all_final(stack, [j for j, _ in load.jobs], started + DEADLINE_S)
    all_done_s = time.monotonic() - started
    load.stop.set()
    for thread in [*pollers, *followers]:
        thread.join(timeout=35)
    poll_seconds = time.monotonic() - poll_started

    lost = [j for j, r in records.items() if r is None or r.status != "succeeded"]
    duplicates = [j for j, r in records.items() if r is not None and r.attempts > 1]
    server_errors = {k: v for k, v in load.codes.items() if k.split()[1].startswith("5")}
    status_summary = latency_summary(load.status_latency)
    finished_streams = sum(1 for s in load.streams if s.get("final_event") in FINAL)
    outcome: dict[str, Any] = {
        "jobs_completed": sum(1 for r in records.values()
                              if r is not None and r.status == "succeeded"),
        "jobs_lost": len(lost), "duplicate_executions": len(duplicates),
        "answers_5xx": sum(server_errors.values()) if server_errors else 0,
        "status_latency": status_summary,
        "status_poll_rate_achieved_per_s": round(len(load.status_latency) / poll_seconds, 1),
        "status_poll_rate_target_per_s": POLL_RATE,
        "status_p99_target_met": (status_summary["p99_ms"] or 1e9) < STATUS_P99_TARGET_MS,
        "submit_latency": latency_summary(load.submit_latency),
        "event_streams_to_final_event": f"{finished_streams} of {len(load.streams)}",
        "all_ended_in_s": round(all_done_s, 1),
        "jobs_submitted": JOBS, "jobs_accepted": len(load.jobs), "tenants": len(TENANTS),
        "submitters": SUBMITTERS, "workers": 2,
        "pollers": POLLERS, "status_p99_target_ms": STATUS_P99_TARGET_MS,
        "answers": load.codes, "event_streams": load.streams,
        "submitted_in_s": round(submitted_s, 1),
        "throughput_under_load_jobs_per_min": round(60.0 * (len(load.jobs) - len(lost))
                                                    / all_done_s, 1),
    }
    problems = []
    if len(load.jobs) != JOBS:
        problems.append(f"only {len(load.jobs)} of {JOBS} submissions accepted: {load.errors[:3]}")
    if lost:
        problems.append(f"lost jobs: {[describe(records[j]) for j in lost]}")
    if duplicates:
        problems.append(f"jobs run more than once: {[describe(records[j]) for j in duplicates]}")
    if server_errors:
        problems.append(f"5xx answers: {server_errors}")
    unfinished = [s for s in load.streams if s.get("final_event") is None]
    if len(load.streams) < min(STREAMS, JOBS) or unfinished:
        problems.append(f"event streams without a final event: {load.streams}")
    record_scenario(GROUP, f"{JOBS} tiny jobs, {SUBMITTERS} submitters, 3 tenants, "
                    f"status polled at {POLL_RATE:.0f}/s, {STREAMS} event streams",
                    outcome, passed=not problems, test=request.node.nodeid)
    assert not problems, f"{'; '.join(problems)}\noutcome: {outcome}\n{stack.logs()}"


def test_throughput_with_two_workers_and_with_one(
    stack: Stack, tiny_points: Path, request: pytest.FixtureRequest
) -> None:
    two = batch_throughput(stack, tiny_points, JOBS)
    stop_process(stack.service.workers[stack.worker_names[-1]].process, timeout_s=30)
    one = batch_throughput(stack, tiny_points, JOBS)
    outcome = {
        "two_workers_jobs_per_min": two["jobs_per_min"],
        "one_worker_jobs_per_min": one["jobs_per_min"],
        "speedup": round(two["jobs_per_min"] / one["jobs_per_min"], 2)
        if one["jobs_per_min"] else None,
        "batch": JOBS, "cpus": os.cpu_count(), "two_workers": two, "one_worker": one,
        "params": TINY_PARAMS,
    }
    problems = [f"{name}: {r['succeeded']} of {r['jobs']} succeeded"
                for name, r in (("two workers", two), ("one worker", one))
                if r["succeeded"] != r["jobs"]]
    record_scenario(GROUP, f"Throughput of {JOBS} tiny jobs: two workers vs one", outcome,
                    passed=not problems, test=request.node.nodeid)
    assert not problems, f"{'; '.join(problems)}\noutcome: {outcome}\n{stack.logs()}"
