"""End to end on the real stack: a finished job has a preview PNG that shows its mesh, and its
input points, served for display, lie on that mesh in the GLB's frame.

The upload is a z-up torus in millimetres, so both the picture and the points go through the
frame conversion (metres, y-up) that the mesh GLB uses.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import trimesh
from e2e_support import FINAL, RUN_TIMEOUT_S, Stack, submit, watch
from PIL import Image
from scipy.spatial import cKDTree

from recon.engine.preview import preview_camera
from tests.data.coloured_torus import SHIPPED as COLOURED_TORUS
from tests.engine.glb_reading import glb_geometry
from tests.engine.silhouette import iou, projected_silhouette

pytestmark = pytest.mark.e2e

PARAMS = {"preset": "fast", "max_iterations": 150, "resolution": 48, "units": "mm",
          "up_axis": "z"}
"""A short run: the picture has to match the mesh, whatever the mesh's quality."""
MIN_IOU = 0.8
ON_SURFACE_M = 0.03
"""Median distance of the shown input points to the mesh: a few percent of the torus' 0.94 m."""


def test_preview_shows_the_mesh_and_the_input_overlays_it(local_stack: Stack) -> None:
    with local_stack.client() as client:
        created = submit(client, COLOURED_TORUS, PARAMS)
        final = watch(client, created["id"], lambda v: v["status"] in FINAL, RUN_TIMEOUT_S,
                      local_stack)
        assert final["status"] == "succeeded", final
        assert not any("preview" in warning for warning in final["warnings"])
        answer = client.get(final["links"]["preview"])
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        image = np.asarray(Image.open(io.BytesIO(answer.content)))
        mesh = glb_geometry(client.get(final["links"]["mesh"]).content)  # GLB frame

        camera = preview_camera(mesh.vertices)
        assert image.shape == (camera.size, camera.size, 4)
        expected = projected_silhouette(mesh.vertices, mesh.faces, camera)
        score = iou(image[..., 3] >= 128, expected)
        assert score >= MIN_IOU, f"preview silhouette IoU {score:.3f}"

        shown = client.get(final["links"]["input"], params={"max_points": 2000})
        assert shown.status_code == 200
        points = trimesh.load(io.BytesIO(shown.content), file_type="glb").to_geometry()
        assert isinstance(points, trimesh.PointCloud) and len(points.vertices) == 2000
        surface, _ = trimesh.sample.sample_surface(mesh, 50_000, seed=0)
        distance, _ = cKDTree(surface).query(points.vertices)
        assert float(np.median(distance)) < ON_SURFACE_M
