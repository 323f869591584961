"""Reading a server-sent event stream (the job's `/events`) into events.

Only what the service sends is handled: `id`, `event` and `data` fields, comment lines (its
keep-alives) and a blank line ending each event, as the SSE specification has them.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

DEFAULT_EVENT = "message"


@dataclass(frozen=True)
class ServerEvent:
    """One event: its name, its data (lines joined with newlines) and its id, if it had one."""

    event: str
    data: str
    id: str | None = None


def parse_events(lines: Iterable[str]) -> Iterator[ServerEvent]:
    """The events in `lines` (without line endings), each once its blank line has arrived.

    An event cut off by the end of the stream is dropped, as the specification says: it may be
    incomplete.
    """
    event, event_id = DEFAULT_EVENT, None
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield ServerEvent(event, "\n".join(data), event_id)
            event, data, event_id = DEFAULT_EVENT, [], None
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\0" not in value:
            event_id = value
