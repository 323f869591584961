"""The preview PNG shows the mesh: its silhouette matches the mesh projected with the same camera
(drawn independently, triangle by triangle, with scikit-image), holes stay open, colours stay,
the picture is upright in the GLB frame, and a mesh with nothing to draw is a clear error."""

from __future__ import annotations

import io

import numpy as np
import pytest
import trimesh
from PIL import Image

from recon.engine.config import FrameConfig
from recon.engine.formats.frame import to_glb_frame
from recon.engine.preview import (
    NothingToDraw,
    PreviewConfig,
    preview_camera,
    render_preview,
)
from recon.engine.rasterise import rasterise
from tests.engine.silhouette import iou, projected_silhouette

SIZE = 160
CONFIG = PreviewConfig(size=SIZE)
MIN_IOU = 0.8


def torus(axis_z: bool = True) -> trimesh.Trimesh:
    """A torus (radii 1 and 0.3) around z, or around y."""
    mesh = trimesh.creation.torus(major_radius=1.0, minor_radius=0.3, major_sections=64,
                                  minor_sections=24)
    if not axis_z:
        mesh.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))
    return mesh


def rgba(png: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.mode == "RGBA"
    return np.asarray(image)


def reference_silhouette(mesh: trimesh.Trimesh, frame: FrameConfig) -> np.ndarray:
    vertices = to_glb_frame(mesh.vertices, frame.up_axis, frame.units)
    return projected_silhouette(vertices, mesh.faces, preview_camera(vertices, CONFIG))


@pytest.mark.parametrize(("mesh", "frame"), [
    (torus(), FrameConfig(up_axis="z")),
    (torus(axis_z=False), FrameConfig()),
    (trimesh.creation.icosphere(subdivisions=3), FrameConfig(units="mm")),
    (trimesh.creation.box(extents=(3.0, 1.0, 0.5)), FrameConfig(up_axis="z", units="ft")),
])
def test_silhouette_matches_the_projected_mesh(mesh: trimesh.Trimesh, frame: FrameConfig) -> None:
    image = rgba(render_preview(mesh, frame, CONFIG))
    assert image.shape == (SIZE, SIZE, 4)
    drawn = image[..., 3] >= 128
    reference = reference_silhouette(mesh, frame)
    assert reference.sum() > 0.1 * SIZE * SIZE  # fitted to the frame, not a speck
    assert iou(drawn, reference) >= MIN_IOU, iou(drawn, reference)
    border = np.concatenate([image[0, :, 3], image[-1, :, 3], image[:, 0, 3], image[:, -1, 3]])
    assert not border.any()  # the margin keeps the whole mesh inside the picture


def test_the_torus_hole_is_see_through_and_the_picture_upright() -> None:
    """A z-up torus lies flat in the GLB frame: wider than tall, its hole transparent."""
    frame = FrameConfig(up_axis="z")
    image = rgba(render_preview(torus(), frame, CONFIG))
    camera = preview_camera(to_glb_frame(torus().vertices, "z"), CONFIG)
    (x, y), = camera.project(np.zeros((1, 3)))[0]  # the hole's centre
    assert image[int(y), int(x), 3] == 0
    rows, cols = np.nonzero(image[..., 3])
    assert np.ptp(cols) > 1.5 * np.ptp(rows)
    standing = rgba(render_preview(torus(), FrameConfig(), CONFIG))  # read as y-up: on edge
    rows, cols = np.nonzero(standing[..., 3])
    assert np.ptp(rows) > np.ptp(cols) * 0.8


def test_vertex_colours_are_kept_and_plain_meshes_are_grey() -> None:
    mesh = torus()
    red, blue = np.array([220, 30, 30, 255]), np.array([30, 30, 220, 255])
    mesh.visual.vertex_colors = np.where(mesh.vertices[:, :1] < 0, red, blue).astype(np.uint8)
    image = rgba(render_preview(mesh, FrameConfig(up_axis="z"), CONFIG)).astype(int)
    opaque = image[..., 3] == 255
    left, right = opaque.copy(), opaque.copy()
    left[:, SIZE // 3:] = False
    right[:, : 2 * SIZE // 3] = False
    assert left.sum() > 100 and right.sum() > 100
    assert (image[left, 0] > 2 * image[left, 2]).mean() > 0.95  # world -x: red, on the left
    assert (image[right, 2] > 2 * image[right, 0]).mean() > 0.95
    plain = rgba(render_preview(torus(), FrameConfig(up_axis="z"), CONFIG)).astype(int)
    shown = plain[plain[..., 3] == 255]
    assert np.ptp(shown[:, :3], axis=1).max() <= 1  # grey: R = G = B
    assert np.ptp(shown[:, 0]) > 60  # and shaded, not flat


def test_a_mesh_with_nothing_to_draw_is_a_clear_error() -> None:
    empty = trimesh.Trimesh(vertices=np.zeros((0, 3)), faces=np.zeros((0, 3), dtype=int))
    with pytest.raises(NothingToDraw, match="no faces"):
        render_preview(empty)
    point = trimesh.Trimesh(vertices=np.ones((3, 3)), faces=[[0, 1, 2]], process=False)
    with pytest.raises(NothingToDraw, match="one point"):
        render_preview(point)
    line = trimesh.Trimesh(vertices=[[0, 0, 0], [1, 1, 1], [2, 2, 2]], faces=[[0, 1, 2]],
                           process=False)
    with pytest.raises(NothingToDraw, match="degenerate"):
        render_preview(line)
    assert issubclass(NothingToDraw, ValueError)


def test_the_nearer_triangle_wins_whatever_the_order_and_chunking() -> None:
    xy = np.array([[2.0, 2.0], [30.0, 2.0], [2.0, 30.0], [0.0, 0.0], [32.0, 0.0], [0.0, 32.0]])
    depth = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0])
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    expected = None
    for order in (faces, faces[::-1]):
        for chunk in (1, 10**6):
            coverage = rasterise(xy, depth, order, 32, 32, chunk_fragments=chunk)
            near = (order == [0, 1, 2]).all(axis=1).nonzero()[0][0]
            seen = coverage.face == near
            assert seen.sum() == pytest.approx(28 * 28 / 2, rel=0.1)  # the near one's area
            assert coverage.mask.sum() == pytest.approx(32 * 32 / 2, rel=0.1)
            np.testing.assert_allclose(coverage.weights[coverage.mask].sum(axis=1), 1.0)
            expected = seen if expected is None else expected
            assert (seen == expected).all()
