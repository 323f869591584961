"""The preview image, the uploaded points for display and the streamed mesh, over HTTP with real
Redis and real storage (a local folder, and SeaweedFS S3 where the backend matters)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from fastapi.testclient import TestClient
from scipy.spatial import cKDTree

from recon.api import input_points
from recon.api.app import create_app
from recon.engine.config import FrameConfig
from recon.engine.export import export_mesh
from recon.engine.formats.ply import read_ply
from recon.engine.formats.pointcloud import load_point_cloud
from recon.engine.preview import PreviewConfig, render_preview
from recon.infra.settings import Settings
from recon.infra.storage import (
    INPUT_DISPLAY_OBJECT_NAME,
    PREVIEW_OBJECT_NAME,
    job_object_key,
    job_prefix,
)
from tests.api.routes.test_reconstructions import assert_error, submit
from tests.api.support import MESH_BYTES, context_of, finish_job, start_job, succeed_run
from tests.conftest import TENANT, S3Server

Headers = dict[str, str]
TORUS_MM = Path(__file__).resolve().parents[2] / "data" / "coloured_torus_mm.ply"
"""6,000 coloured points of a z-up torus in millimetres."""
Z_UP_MM = json.dumps({"up_axis": "z", "units": "mm"})


@pytest.fixture(scope="module")
def preview_png() -> bytes:
    return render_preview(trimesh.creation.icosphere(subdivisions=2), config=PreviewConfig(size=64))


def succeed_with_preview(client: TestClient, job_id: str, png: bytes | None) -> None:
    """Run the job to `succeeded` as a worker does, with `png` as its preview (None: none)."""
    context = context_of(client)
    run = start_job(context.job_store, job_id)
    if png is not None:
        context.storage.put_bytes(run.prefix + PREVIEW_OBJECT_NAME, png)
    succeed_run(context.job_store, context.storage, run)


def glb_points(blob: bytes) -> trimesh.PointCloud:
    cloud = trimesh.load(io.BytesIO(blob), file_type="glb").to_geometry()
    assert isinstance(cloud, trimesh.PointCloud)
    return cloud


# --- preview ---------------------------------------------------------------------------------


def test_preview_is_409_until_succeeded_then_a_cacheable_png(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes, preview_png: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    url = f"/v1/reconstructions/{job_id}/preview.png"
    links = client.get(f"/v1/reconstructions/{job_id}", headers=auth_headers).json()["links"]
    assert links["preview"] is None and links["input"] == f"/v1/reconstructions/{job_id}/input"
    error = assert_error(client.get(url, headers=auth_headers), 409, "job_not_finished")
    assert error["detail"] == {"status": "queued"}
    succeed_with_preview(client, job_id, preview_png)
    links = client.get(f"/v1/reconstructions/{job_id}", headers=auth_headers).json()["links"]
    assert links["preview"] == url
    listed = client.get("/v1/reconstructions", headers=auth_headers).json()["items"]
    assert listed[0]["links"]["preview"] == url  # the list shows it too
    answer = client.get(url, headers=auth_headers)
    assert answer.status_code == 200 and answer.content == preview_png
    assert answer.headers["content-type"] == "image/png"
    assert answer.headers["cache-control"].startswith("private, max-age=")
    etag = answer.headers["etag"]
    again = client.get(url, headers={**auth_headers, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get(url, headers={**auth_headers, "If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_a_job_without_a_preview_is_404_preview_missing(
    client: TestClient, auth_headers: Headers, other_auth_headers: Headers,
    sphere_ply_bytes: bytes,
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    succeed_with_preview(client, job_id, None)
    url = f"/v1/reconstructions/{job_id}/preview.png"
    assert_error(client.get(url, headers=auth_headers), 404, "preview_missing")
    for path in (url, f"/v1/reconstructions/{job_id}/input"):
        assert_error(client.get(path, headers=other_auth_headers), 404, "job_not_found")


# --- input -----------------------------------------------------------------------------------


def test_input_glb_is_in_the_mesh_glb_frame_with_colours(
    client: TestClient, auth_headers: Headers
) -> None:
    """A z-up millimetre upload: its display points are where the mesh GLB puts the same
    coordinates (metres, y-up), whatever state the job is in."""
    job_id = submit(client, auth_headers, TORUS_MM.read_bytes(), params=Z_UP_MM).json()["id"]
    answer = client.get(f"/v1/reconstructions/{job_id}/input", headers=auth_headers,
                        params={"max_points": 1000})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "model/gltf-binary"
    assert answer.headers["cache-control"].startswith("private, max-age=")
    cloud = glb_points(answer.content)
    assert len(cloud.vertices) == 1000 and cloud.colors.shape == (1000, 4)
    upload = load_point_cloud(TORUS_MM)
    faces = np.arange(len(upload.points) // 3 * 3).reshape(-1, 3)
    as_mesh = trimesh.Trimesh(upload.points, faces, process=False)
    mesh_frame = trimesh.load(io.BytesIO(export_mesh(as_mesh, "glb", FrameConfig("z", "mm"))),
                              file_type="glb", force="mesh")
    distance, _ = cKDTree(mesh_frame.vertices).query(cloud.vertices)
    assert distance.max() < 1e-6  # metres: each shown point is one of the mesh GLB's
    extent = np.ptp(cloud.vertices, axis=0)
    assert extent[1] < extent[0] / 2 and extent[1] < extent[2] / 2  # the torus lies flat: y up
    assert 0.9 < extent[0] < 1.0  # 2 x (350 + 120) mm, in metres


def test_input_is_bounded_repeatable_cached_and_ply_keeps_the_input_frame(
    client: TestClient, auth_headers: Headers
) -> None:
    job_id = submit(client, auth_headers, TORUS_MM.read_bytes(), params=Z_UP_MM).json()["id"]
    url = f"/v1/reconstructions/{job_id}/input"
    full = glb_points(client.get(url, headers=auth_headers).content)
    assert len(full.vertices) == 6000  # the default (50,000) is more than the upload has
    first = client.get(url, headers=auth_headers, params={"max_points": 777, "format": "ply"})
    assert first.status_code == 200 and first.headers["content-type"] == "application/x-ply"
    vertex = read_ply(first.content)["vertex"]
    points = np.stack([vertex[name] for name in "xyz"], axis=1)
    assert len(points) == 777 and len(vertex["red"]) == 777
    upload = load_point_cloud(TORUS_MM).points
    assert cKDTree(upload).query(points)[0].max() == 0.0  # the upload's own mm, z-up values
    again = client.get(url, headers=auth_headers, params={"max_points": 777, "format": "ply"})
    assert again.content == first.content
    fresh = client.get(url, headers={**auth_headers, "If-None-Match": again.headers["etag"]},
                       params={"max_points": 777, "format": "ply"})
    assert fresh.status_code == 304
    storage = context_of(client).storage
    assert storage.exists(job_object_key(TENANT, job_id, INPUT_DISPLAY_OBJECT_NAME))
    for bad in (0, 500_001, "many"):
        assert_error(client.get(url, headers=auth_headers, params={"max_points": bad}), 422)
    assert_error(client.get(url, headers=auth_headers, params={"format": "obj"}), 422)
    assert client.delete(f"/v1/reconstructions/{job_id}", headers=auth_headers).status_code == 204
    assert storage.list_keys(job_prefix(TENANT, job_id)) == []  # the copy goes with the job
    assert_error(client.get(url, headers=auth_headers), 404, "job_not_found")


def test_input_gone_from_storage_is_404_input_missing(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    record = context.job_store.get(job_id)
    assert record is not None
    context.storage.delete(record.input_key)
    answer = client.get(f"/v1/reconstructions/{job_id}/input", headers=auth_headers)
    assert_error(answer, 404, "input_missing")


def test_a_damaged_display_copy_is_made_again(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    storage = context_of(client).storage
    storage.put_bytes(job_object_key(TENANT, job_id, INPUT_DISPLAY_OBJECT_NAME), b"garbage")
    answer = client.get(f"/v1/reconstructions/{job_id}/input", headers=auth_headers)
    assert answer.status_code == 200 and len(glb_points(answer.content).vertices) == 512


def test_input_parses_are_bounded_and_a_busy_server_answers_503(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every parse slot taken, a request that needs a parse waits, then says when to retry;
    a request served from the stored copy needs no slot."""
    parsed = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    assert client.get(f"/v1/reconstructions/{parsed}/input", headers=auth_headers).is_success
    fresh = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    monkeypatch.setattr(input_points, "PARSE_WAIT_S", 0.2)
    taken = [input_points._parse_slots.acquire(blocking=False)
             for _ in range(input_points.PARSE_SLOTS)]
    try:
        assert all(taken)
        busy = client.get(f"/v1/reconstructions/{fresh}/input", headers=auth_headers)
        assert_error(busy, 503, "input_busy")
        assert busy.headers["retry-after"] == str(input_points.RETRY_AFTER_S)
        cached = client.get(f"/v1/reconstructions/{parsed}/input", headers=auth_headers)
        assert cached.status_code == 200
    finally:
        for _ in taken:
            input_points._parse_slots.release()
    assert client.get(f"/v1/reconstructions/{fresh}/input", headers=auth_headers).is_success


# --- S3: the API streams what a page fetches with its key header -----------------------------


def test_s3_mesh_without_redirect_preview_and_input_are_streamed_by_the_api(
    settings: Settings, seaweed_s3: S3Server, auth_headers: Headers, preview_png: bytes
) -> None:
    with TestClient(create_app(seaweed_s3.settings(settings))) as client:
        job_id = submit(client, auth_headers, TORUS_MM.read_bytes(), params=Z_UP_MM).json()["id"]
        base = f"/v1/reconstructions/{job_id}"
        shown = client.get(f"{base}/input", headers=auth_headers, params={"max_points": 500})
        assert shown.status_code == 200 and len(glb_points(shown.content).vertices) == 500
        succeed_with_preview(client, job_id, preview_png)
        redirect = client.get(f"{base}/mesh", headers=auth_headers, follow_redirects=False)
        assert redirect.status_code == 307
        streamed = client.get(f"{base}/mesh", headers=auth_headers,
                              params={"redirect": "false"}, follow_redirects=False)
        assert streamed.status_code == 200 and streamed.content == MESH_BYTES["glb"]
        assert streamed.headers["content-type"] == "model/gltf-binary"
        assert streamed.headers["content-length"] == str(len(MESH_BYTES["glb"]))
        assert f'filename="reconstruction-{job_id}.glb"' in streamed.headers["content-disposition"]
        image = client.get(f"{base}/preview.png", headers=auth_headers, follow_redirects=False)
        assert image.status_code == 200 and image.content == preview_png
        storage = context_of(client).storage
        record = context_of(client).job_store.get(job_id)
        assert record is not None and record.output_prefix is not None
        storage.delete(record.output_key("mesh.glb"))
        gone = client.get(f"{base}/mesh", headers=auth_headers, params={"redirect": "false"})
        assert_error(gone, 404, "artifact_missing")
        assert client.delete(base, headers=auth_headers).status_code == 204
        assert storage.list_keys(job_prefix(TENANT, job_id)) == []


def test_local_mesh_ignores_redirect_false(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    job_id = submit(client, auth_headers, sphere_ply_bytes).json()["id"]
    context = context_of(client)
    finish_job(context.job_store, context.storage, job_id)
    for redirect in ("true", "false"):
        answer = client.get(f"/v1/reconstructions/{job_id}/mesh", headers=auth_headers,
                            params={"redirect": redirect}, follow_redirects=False)
        assert answer.status_code == 200 and answer.content == MESH_BYTES["glb"]

