"""Server-sent events for one job: progress while it runs, then one final event, then close.

The stream polls the job store (every `events_poll_interval_s`), sends an event whenever the
job's view changes, a comment line as keep-alive when it does not, and closes after the final
status or after `events_max_duration_s`, whichever comes first.
"""

import time
from collections.abc import AsyncIterator

import anyio
from starlette.concurrency import run_in_threadpool

from recon.api.job_views import to_job_public
from recon.infra.job_store import JobStore

KEEPALIVE_EVERY_S = 15.0
PROGRESS_EVENT = "progress"
TIMEOUT_EVENT = "timeout"
DELETED_EVENT = "deleted"


def format_event(event: str, data: str, event_id: int) -> str:
    """One SSE message (``data`` must be a single line, e.g. compact JSON)."""
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"


async def job_events(
    store: JobStore,
    job_id: str,
    *,
    poll_interval_s: float,
    max_duration_s: float,
) -> AsyncIterator[str]:
    """Yield SSE messages for `job_id`; the last one is named after the final status."""
    deadline = time.monotonic() + max_duration_s
    last_sent, last_activity, event_id = "", time.monotonic(), 0
    while True:
        record = await run_in_threadpool(store.get, job_id)
        event_id += 1
        if record is None:
            yield format_event(DELETED_EVENT, '{"status":"deleted"}', event_id)
            return
        data = to_job_public(record).model_dump_json()
        if record.is_final:
            yield format_event(record.status.value, data, event_id)
            return
        if data != last_sent:
            yield format_event(PROGRESS_EVENT, data, event_id)
            last_sent, last_activity = data, time.monotonic()
        elif time.monotonic() - last_activity >= KEEPALIVE_EVERY_S:
            yield ": keep-alive\n\n"
            last_activity = time.monotonic()
        if time.monotonic() >= deadline:
            yield format_event(TIMEOUT_EVENT, data, event_id)
            return
        await anyio.sleep(poll_interval_s)
