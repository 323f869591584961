"""A job's uploaded points for display: parsed once, kept in storage, subsampled per request.

`GET /reconstructions/{id}/input` lets a page overlay the input on the mesh. Parsing a
multi-million-point upload takes seconds and memory, so the first request reads it, keeping
at most MAX_DISPLAY_POINTS (a seeded subset), and stores that beside the input
(INPUT_DISPLAY_OBJECT_NAME, removed with the job); later requests read that copy and take
their own smaller subset of it. Parses are bounded per process (PARSE_SLOTS): a request that
waits longer than PARSE_WAIT_S for one answers 503 with Retry-After rather than queueing
unboundedly. The functions here block: handlers call them in the thread pool.
"""

import logging
import tempfile
import threading
from pathlib import Path

from recon.api.context import ServiceContext
from recon.api.errors import NotFound, ServiceUnavailable, Unprocessable
from recon.api.uploads import upload_temp_root
from recon.engine.formats import (
    DisplayPoints,
    InvalidPointCloud,
    load_display_points,
    points_glb,
    points_ply,
)
from recon.infra.job_record import JobRecord
from recon.infra.storage import INPUT_DISPLAY_OBJECT_NAME, ObjectNotFound, job_object_key
from recon.schemas import ReconstructionParams

logger = logging.getLogger(__name__)

MAX_DISPLAY_POINTS = 500_000
"""The most points a request may ask for, and how many the stored copy keeps."""
DEFAULT_DISPLAY_POINTS = 50_000
"""Points served when the request does not say: smooth in a browser, dense enough to judge."""
PARSE_SLOTS = 2
"""Uploads parsed at once by one API process (each holds up to MAX_DISPLAY_POINTS points)."""
PARSE_WAIT_S = 20.0
"""How long a request waits for a parse slot before answering 503."""
RETRY_AFTER_S = 5

_parse_slots = threading.BoundedSemaphore(PARSE_SLOTS)


def input_view(context: ServiceContext, record: JobRecord, max_points: int, fmt: str) -> bytes:
    """The job's input as `fmt` ("glb": the mesh GLB's frame; "ply": the input's frame)."""
    display = display_points(context, record).subset(max_points)
    if fmt == "ply":
        return points_ply(display)
    params = ReconstructionParams.model_validate(record.params)
    units = None if params.units is None else params.units.value
    return points_glb(display, params.up_axis.value, units)


def display_points(context: ServiceContext, record: JobRecord) -> DisplayPoints:
    """The stored display copy of the job's input, made from the upload when missing."""
    storage = context.storage
    key = job_object_key(record.tenant, record.id, INPUT_DISPLAY_OBJECT_NAME)
    try:
        return DisplayPoints.decode(storage.get_bytes(key))
    except ObjectNotFound:
        pass
    except ValueError as exc:  # written by an older or interrupted process: make it again
        logger.warning("job %s: unreadable display copy of the input (%s)", record.id, exc)
    if not _parse_slots.acquire(timeout=PARSE_WAIT_S):
        raise ServiceUnavailable(
            "the server is busy reading other uploads; try again shortly", code="input_busy",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    try:
        display = _parse_upload(context, record)
    finally:
        _parse_slots.release()
    storage.put_bytes(key, display.encode(), content_type="application/octet-stream")
    if context.job_store.get_for_tenant(record.id, record.tenant) is None:
        storage.delete(key)  # deleted meanwhile: its prefix may have been swept before the put
    return display


def _parse_upload(context: ServiceContext, record: JobRecord) -> DisplayPoints:
    """Read the upload (downloaded to a temporary file unless storage is a local folder)."""
    storage, key = context.storage, record.input_key
    try:
        path = storage.local_path(key)
        if path is not None:
            if not path.is_file():
                raise ObjectNotFound(key)
            return load_display_points(path, MAX_DISPLAY_POINTS)
        root = upload_temp_root(context.settings)
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix="input-view-") as folder:
            local = Path(folder) / Path(key).name
            storage.download_to(key, local)
            return load_display_points(local, MAX_DISPLAY_POINTS)
    except ObjectNotFound as exc:
        raise NotFound("the job's uploaded points are gone", code="input_missing") from exc
    except InvalidPointCloud as exc:  # it was accepted once: the stored copy is damaged
        raise Unprocessable(f"the stored input cannot be read: {exc}",
                            code="input_unreadable") from exc
