"""Test helpers that play the worker's part through the real job store and storage.

They follow the worker's protocol (`recon.worker.job_run`): take the job's lease with a run
token, start the run, write the outputs under the run's own prefix, then publish them with the
`succeeded` transition, fenced by the token.
"""

import json
import uuid
from dataclasses import dataclass

import numpy as np
from fastapi.testclient import TestClient

from recon.api.context import ServiceContext
from recon.infra.job_store import JobStore
from recon.infra.storage import METRICS_OBJECT_NAME, ObjectStorage, mesh_object_name, run_prefix
from tests.conftest import binary_ply, sphere_points

MESH_BYTES = {"glb": b"glTF\x02\x00\x00\x00fake-glb", "ply": b"ply\nfake", "obj": b"v 0 0 0\n"}
METRICS = {"mesh": {"watertight": True}}
RUN_LEASE_TTL_S = 60.0


@dataclass(frozen=True)
class TestRun:
    """One run of a job started by `start_job`: its fencing token and its output prefix."""

    __test__ = False  # not a test class, whatever its name

    job_id: str
    tenant: str
    token: str
    prefix: str


def start_job(store: JobStore, job_id: str, worker_id: str = "test-worker") -> TestRun:
    """Take the lease and start a queued job as a worker does; the lease stays held."""
    record = store.get(job_id)
    assert record is not None
    run_id = uuid.uuid4().hex
    token = f"{worker_id}/{run_id}"
    assert store.acquire_lease(job_id, token, RUN_LEASE_TTL_S)
    assert store.start_run(job_id, token, worker_id) is not None
    return TestRun(job_id, record.tenant, token, run_prefix(record.tenant, job_id, run_id))


def upload_outputs(storage: ObjectStorage, run: TestRun, formats: tuple[str, ...]) -> None:
    """Write the run's meshes and metrics under its own prefix."""
    for fmt in formats:
        storage.put_bytes(run.prefix + mesh_object_name(fmt), MESH_BYTES[fmt])
    storage.put_bytes(run.prefix + METRICS_OBJECT_NAME, json.dumps(METRICS).encode())


def succeed_run(
    store: JobStore, storage: ObjectStorage, run: TestRun, formats: tuple[str, ...] = ("glb",)
) -> None:
    """Upload the outputs, publish them with `succeed` and let go of the lease."""
    upload_outputs(storage, run, formats)
    applied = store.succeed(
        run.job_id, run.token, metrics=METRICS, warnings=[], formats=list(formats),
        output_prefix=run.prefix,
    )
    assert applied, applied.reason
    store.release_lease(run.job_id, run.token)


def finish_job(
    store: JobStore, storage: ObjectStorage, job_id: str, formats: tuple[str, ...] = ("glb",)
) -> TestRun:
    """Run a queued job to `succeeded` the way a worker does: outputs first, then the status."""
    run = start_job(store, job_id)
    succeed_run(store, storage, run, formats)
    return run


def nan_ply() -> bytes:
    """A well-formed PLY whose 8th point has a NaN coordinate."""
    points = sphere_points()
    points[7, 1] = np.nan
    return binary_ply(points)


def jpeg_bytes() -> bytes:
    """The start of a real JFIF JPEG file."""
    return bytes.fromhex("ffd8ffe000104a46494600010101004800480000ffdb004300") + bytes(600)


def context_of(client: TestClient) -> ServiceContext:
    """The `ServiceContext` of the app behind a TestClient (its job store, storage, settings)."""
    context: ServiceContext = client.app.state.context  # type: ignore[attr-defined]
    return context
