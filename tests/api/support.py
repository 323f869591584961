"""Test helpers that play the worker's part through the real job store and storage."""

import json

import numpy as np

from recon.infra.job_store import JobStore
from recon.infra.storage import METRICS_OBJECT_NAME, ObjectStorage, job_object_key, mesh_object_name
from tests.conftest import binary_ply, sphere_points

MESH_BYTES = {"glb": b"glTF\x02\x00\x00\x00fake-glb", "ply": b"ply\nfake", "obj": b"v 0 0 0\n"}


def finish_job(
    store: JobStore, storage: ObjectStorage, job_id: str, formats: tuple[str, ...] = ("glb",)
) -> None:
    """Run a queued job to `succeeded` the way a worker does: outputs first, then the status."""
    record = store.get(job_id)
    assert record is not None
    assert store.mark_running(job_id, "test-worker") is not None
    for fmt in formats:
        key = job_object_key(record.tenant, job_id, mesh_object_name(fmt))
        storage.put_bytes(key, MESH_BYTES[fmt])
    metrics = {"mesh": {"watertight": True}}
    storage.put_bytes(
        job_object_key(record.tenant, job_id, METRICS_OBJECT_NAME), json.dumps(metrics).encode()
    )
    assert store.mark_succeeded(job_id, metrics=metrics, warnings=[], formats=list(formats))


def nan_ply() -> bytes:
    """A well-formed PLY whose 8th point has a NaN coordinate."""
    points = sphere_points()
    points[7, 1] = np.nan
    return binary_ply(points)


def jpeg_bytes() -> bytes:
    """The start of a real JFIF JPEG file."""
    return bytes.fromhex("ffd8ffe000104a46494600010101004800480000ffdb004300") + bytes(600)
