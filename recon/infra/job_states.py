"""The job state machine as one table: which transitions exist, from where, to where, and who
may make them.

Every status change goes through `TRANSITIONS`; the job store's one Lua script reads the same
table (serialised into it) and applies a transition atomically, so no code path can move a job
along an edge that is not listed here. Each transition names its guard, the proof the caller
must hold:

- ``run``: the job's current run token (the fencing token written when the run started). A run
  that lost its lease, was requeued behind its back or was superseded holds an old token, so
  none of its writes lands, however late it wakes up.
- ``lease``: the per-job lease (a worker starting a job, before it has a run token).
- ``unleased``: nobody holds the lease (the reaper acting on a worker that is gone).
- ``client``: none (the API acting for the job's tenant; tenant checks happen before).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from recon.schemas import JobStatus

Guard = Literal["run", "lease", "unleased", "client"]

QUEUED, RUNNING = JobStatus.QUEUED.value, JobStatus.RUNNING.value
SUCCEEDED, FAILED, CANCELED = (
    JobStatus.SUCCEEDED.value, JobStatus.FAILED.value, JobStatus.CANCELED.value,
)
FINAL = (SUCCEEDED, FAILED, CANCELED)


@dataclass(frozen=True)
class Transition:
    """One edge of the state machine."""

    sources: tuple[str, ...]
    target: str
    guard: Guard
    refuse_if_cancel_requested: bool = False
    """Refused (``!cancel_requested``) once a cancel or delete was asked: the caller cancels."""


TRANSITIONS: dict[str, Transition] = {
    # A worker holding the lease starts a queued job and receives its run token.
    "start": Transition((QUEUED,), RUNNING, "lease", refuse_if_cancel_requested=True),
    # A worker that saw the cancel flag (or too many lost runs) before starting.
    "refuse_start": Transition((QUEUED,), CANCELED, "lease"),
    "give_up_at_start": Transition((QUEUED,), FAILED, "lease"),
    # The run that owns the job ends it. Success is refused after a cancel request, so a job
    # answered 202 to a cancel never ends `succeeded`.
    "succeed": Transition((RUNNING,), SUCCEEDED, "run", refuse_if_cancel_requested=True),
    "fail": Transition((RUNNING,), FAILED, "run"),
    "cancel": Transition((RUNNING,), CANCELED, "run"),
    # The run gives the job back (worker shutting down, or an infrastructure retry).
    "hand_back": Transition((RUNNING,), QUEUED, "run"),
    # The reaper, for a run whose worker is gone (heartbeat stale, lease expired).
    "requeue_lost": Transition((RUNNING,), QUEUED, "unleased"),
    "fail_lost": Transition((RUNNING,), FAILED, "unleased"),
    "cancel_lost": Transition((RUNNING,), CANCELED, "unleased"),
    # The API: a queued job is canceled at once (a running one only gets the cancel flag).
    "cancel_queued": Transition((QUEUED,), CANCELED, "client"),
}


def transitions_json() -> str:
    """The table as the Lua script reads it: name -> {sources, target, guard, refuse_cancel}."""
    return json.dumps(
        {
            name: {
                "sources": list(t.sources),
                "target": t.target,
                "guard": t.guard,
                "refuse_cancel": t.refuse_if_cancel_requested,
            }
            for name, t in TRANSITIONS.items()
        },
        separators=(",", ":"),
    )
