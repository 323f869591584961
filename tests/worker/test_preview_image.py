"""The preview never fails its job: a mesh that cannot be drawn gives a warning, not an error."""

import logging

import numpy as np
import pytest
import trimesh

import recon.engine.preview
from recon.engine.config import FrameConfig
from recon.infra.job_store import JobStore
from recon.schemas import JobStatus
from recon.worker.job_run import JobContext, Outcome, run_job
from recon.worker.preview_image import preview_png
from tests.conftest import binary_ply, sphere_points

from .conftest import make_job


@pytest.fixture
def ctx(worker_app) -> JobContext:
    return JobContext(settings=worker_app.recon_settings, store=worker_app.job_store,
                      storage=worker_app.storage, worker_id="test-worker:1")


def test_a_mesh_with_nothing_to_draw_gives_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    empty = trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), dtype=int))
    with caplog.at_level(logging.WARNING):
        png, warnings = preview_png(empty, FrameConfig(), "job-1")
    assert png is None
    assert warnings == ["no preview image was made (NothingToDraw: the mesh has no faces to draw)"]
    assert "job-1: no preview image" in caplog.text
    drawn, none = preview_png(trimesh.creation.icosphere(), FrameConfig(), "job-2")
    assert drawn is not None and drawn.startswith(b"\x89PNG") and none == []


def test_a_rasteriser_failure_leaves_the_job_succeeded_with_a_warning(
    ctx: JobContext, worker_store: JobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> bytes:
        raise MemoryError("out of memory while drawing")

    monkeypatch.setattr(recon.engine.preview, "render_preview", broken)
    record = make_job(worker_store, params={"preset": "fast", "max_iterations": 10,
                                            "resolution": 32})
    ctx.storage.put_bytes(record.input_key, binary_ply(sphere_points(300)))
    assert run_job(ctx, record.id, "acme") is Outcome.SUCCEEDED
    done = worker_store.get(record.id)
    assert done is not None and done.status is JobStatus.SUCCEEDED and done.output_prefix
    assert "no preview image was made (MemoryError: out of memory while drawing)" in done.warnings
    names = [key.rsplit("/", 1)[1] for key in ctx.storage.list_keys(done.output_prefix)]
    assert "mesh.glb" in names and "preview.png" not in names
