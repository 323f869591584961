"""Server-sent events for one job: progress while it runs, then one final event, then close.

Each event's id is the job record's `version`, which every visible change increments, so a
client that lost its stream reconnects with ``Last-Event-ID`` and receives only what changed
since (the final event is always sent). The stream polls that one field every
`events_poll_interval_s` (a single HGET) and reads the whole record only when it moved; it sends
a comment line as keep-alive while nothing changes, and closes after the final status or after
`events_max_duration_s`, whichever comes first.
"""

import time
from collections.abc import AsyncIterator

import anyio
from starlette.concurrency import run_in_threadpool

from recon.infra.job_store import JobStore
from recon.infra.job_views import to_job_public

KEEPALIVE_EVERY_S = 15.0
PROGRESS_EVENT = "progress"
TIMEOUT_EVENT = "timeout"
DELETED_EVENT = "deleted"
MAX_EVENT_ID = 2**53


def format_event(event: str, data: str, event_id: int) -> str:
    """One SSE message (``data`` must be a single line, e.g. compact JSON)."""
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"


def parse_last_event_id(value: str | None) -> int:
    """The version a reconnecting client has seen (0 when absent or not one of our ids)."""
    if value is None or not value.strip().isdigit():
        return 0
    return min(int(value.strip()), MAX_EVENT_ID)


async def job_events(
    store: JobStore,
    job_id: str,
    *,
    poll_interval_s: float,
    max_duration_s: float,
    last_event_id: int = 0,
) -> AsyncIterator[str]:
    """Yield SSE messages for `job_id` newer than `last_event_id`; the last one is named after
    the final status (or `deleted`, or `timeout`)."""
    deadline = time.monotonic() + max_duration_s
    seen, last_activity, first = last_event_id, time.monotonic(), True
    while True:
        version = await run_in_threadpool(store.version, job_id)
        record = None
        if version is None or version != seen or first:  # the first look may find it final
            record = await run_in_threadpool(store.get, job_id)
            first = False
        if version is None or (record is not None and record.deleted_at is not None):
            yield format_event(DELETED_EVENT, '{"status":"deleted"}', seen + 1)
            return
        if record is not None:
            data = to_job_public(record).model_dump_json()
            if record.is_final:
                yield format_event(record.status.value, data, record.version)
                return
            if record.version > seen:
                yield format_event(PROGRESS_EVENT, data, record.version)
                seen, last_activity = record.version, time.monotonic()
        if time.monotonic() - last_activity >= KEEPALIVE_EVERY_S:
            yield ": keep-alive\n\n"
            last_activity = time.monotonic()
        if time.monotonic() >= deadline:
            current = await run_in_threadpool(store.get, job_id)
            if current is not None:
                data = to_job_public(current).model_dump_json()
                yield format_event(TIMEOUT_EVENT, data, current.version)
            return
        await anyio.sleep(poll_interval_s)
