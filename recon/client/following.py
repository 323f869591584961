"""Following a job until it ends: its event stream, resumed where it broke, else polling.

The service streams every change of the job (`/events`, ids are the job's version) and closes
after the final one. A stream that breaks is reopened with `Last-Event-ID`, so nothing is seen
twice and the final event is never missed; after a few breaks in a row with nothing received
(a proxy that buffers or cuts event streams), the follower polls the job instead.
"""

import time
from collections.abc import Callable

import httpx

from recon.client.errors import (
    ConnectionFailed,
    JobCanceledError,
    JobFailedError,
    NotFoundError,
    WaitTimedOut,
)
from recon.client.events import parse_events
from recon.client.transport import CONNECT_TIMEOUT_S, RETRIED_TRANSPORT_ERRORS, Transport
from recon.schemas import JobPublic, JobStatus

ProgressCallback = Callable[[JobPublic], None]

FINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED})
PROGRESS_EVENT = "progress"
TIMEOUT_EVENT = "timeout"
"""The service closes a stream after `RECON_EVENTS_MAX_DURATION_S`; the follower reopens it."""
DELETED_EVENT = "deleted"
STREAM_READ_TIMEOUT_S = 60.0
"""Silence after which a stream counts as broken; the service sends a keep-alive every 15 s."""
STREAM_BREAKS_BEFORE_POLLING = 3
"""Consecutive stream failures with no event received before switching to polling."""
DEFAULT_POLL_INTERVAL_S = 2.0


def final_result(job: JobPublic) -> JobPublic:
    """`job` when it succeeded; its failure or cancellation as the matching error."""
    if job.status is JobStatus.FAILED:
        raise JobFailedError(job)
    if job.status is JobStatus.CANCELED:
        raise JobCanceledError(job)
    return job


class JobFollower:
    """Follows one job to its end, telling `on_progress` every state it sees."""

    def __init__(self, transport: Transport, job_path: str, *,
                 on_progress: ProgressCallback | None = None, timeout_s: float | None = None,
                 poll_interval_s: float = DEFAULT_POLL_INTERVAL_S) -> None:
        self.transport = transport
        self.job_path = job_path
        self.on_progress = on_progress
        self.timeout_s = timeout_s
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.poll_interval_s = poll_interval_s
        self.last_event_id: str | None = None
        self.latest: JobPublic | None = None

    def run(self) -> JobPublic:
        """The succeeded job; raises `JobFailedError`, `JobCanceledError`, `WaitTimedOut`."""
        job = self.follow_stream()
        if job is None:
            job = self.poll()
        return final_result(job)

    def follow_stream(self) -> JobPublic | None:
        """The final job from the event stream, or None when the stream keeps breaking."""
        breaks = 0
        while breaks < STREAM_BREAKS_BEFORE_POLLING:
            self.check_deadline()
            seen_before = self.last_event_id
            try:
                job = self.read_stream()
            except (ConnectionFailed, *RETRIED_TRANSPORT_ERRORS):
                breaks = 0 if self.last_event_id != seen_before else breaks + 1
                self.pause()
                continue
            if job is not None:
                return job
        return None

    def read_stream(self) -> JobPublic | None:
        """Read one connection of the stream: the final job, or None when it closed before."""
        headers = {"Accept": "text/event-stream"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        response = self.transport.request("GET", f"{self.job_path}/events", headers=headers,
                                          stream=True, timeout=self.stream_timeout())
        try:
            for event in parse_events(response.iter_lines()):
                if event.event == DELETED_EVENT:
                    raise NotFoundError("the job was deleted while waiting for it",
                                        code="job_deleted")
                if event.event == TIMEOUT_EVENT:
                    return None
                job = JobPublic.model_validate_json(event.data)
                self.last_event_id = event.id or self.last_event_id
                self.seen(job)
                if job.status in FINAL_STATUSES:
                    return job
        finally:
            response.close()
        return None

    def poll(self) -> JobPublic:
        """The final job, asking for it every `poll_interval_s`."""
        while True:
            self.check_deadline()
            job = JobPublic.model_validate_json(
                self.transport.request("GET", self.job_path).content)
            if self.latest is None or job != self.latest:
                self.seen(job)
            if job.status in FINAL_STATUSES:
                return job
            self.pause()

    def seen(self, job: JobPublic) -> None:
        self.latest = job
        if self.on_progress is not None:
            self.on_progress(job)

    def remaining_s(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def check_deadline(self) -> None:
        remaining = self.remaining_s()
        if remaining is not None and remaining <= 0:
            status = self.latest.status.value if self.latest else "unknown"
            raise WaitTimedOut(f"the job is still {status} after {self.timeout_s:g} s",
                               code="wait_timeout")

    def pause(self) -> None:
        remaining = self.remaining_s()
        wait = self.poll_interval_s if remaining is None else min(self.poll_interval_s, remaining)
        if wait > 0:
            time.sleep(wait)

    def stream_timeout(self) -> httpx.Timeout:
        """Reads wait for the keep-alive, or only until the deadline when that comes first."""
        remaining = self.remaining_s()
        read = STREAM_READ_TIMEOUT_S if remaining is None else min(STREAM_READ_TIMEOUT_S,
                                                                   max(remaining, 0.1))
        return httpx.Timeout(read, connect=CONNECT_TIMEOUT_S)
