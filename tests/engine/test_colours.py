"""Vertex colours: the weighted mean of the nearest input colours, measured against the nearest
point's colour on smooth colour and on sharp edges; colours through a whole reconstruction into
GLB (linear COLOR_0), PLY and OBJ."""

from __future__ import annotations

import io

import numpy as np
import pytest
import trimesh

from recon.engine.colours import vertex_colours
from recon.engine.config import ColourConfig
from recon.engine.export import export_mesh
from recon.engine.formats.pointcloud import PointCloud
from recon.engine.formats.srgb import linear_to_srgb, srgb_to_linear
from recon.engine.pipeline import reconstruct
from recon.engine.presets import build_config
from tests.data.coloured_torus import MAJOR, MINOR, colour_field, coloured_torus
from tests.engine.glb_reading import glb_geometry


def test_srgb_and_linear_are_inverse() -> None:
    values = np.linspace(0, 1, 101)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(values)), values, atol=1e-12)
    assert srgb_to_linear(np.array([0.5]))[0] == pytest.approx(0.214, abs=1e-3)


def checker_field(points: np.ndarray) -> np.ndarray:
    """A red and blue checker over the torus's two angles: sharp colour edges."""
    theta = np.arctan2(points[:, 1], points[:, 0])
    phi = np.arctan2(points[:, 2], np.hypot(points[:, 0], points[:, 1]) - MAJOR)
    odd = ((np.floor(theta / np.pi * 8) + np.floor(phi / np.pi * 4)) % 2)[:, None]
    return odd * np.array([0.9, 0.2, 0.1]) + (1 - odd) * np.array([0.1, 0.3, 0.9])


def transfer_errors(field) -> dict[int, float]:
    """Mean colour error at surface vertices, nearest point (1) against the default weighting."""
    rng = np.random.default_rng(0)
    surface = trimesh.creation.torus(major_radius=MAJOR, minor_radius=MINOR)
    points, _ = trimesh.sample.sample_surface(surface, 20_000, seed=0)
    colours = np.clip(field(points) + rng.normal(0, 8 / 255, points.shape), 0, 1)
    noisy = points + rng.normal(0, 0.002, points.shape)
    vertices, _ = trimesh.sample.sample_surface(surface, 5000, seed=9)
    truth = field(vertices)
    return {k: float(np.abs(vertex_colours(vertices, noisy, colours, ColourConfig(neighbours=k))
                            - truth).mean())
            for k in (1, ColourConfig().neighbours)}


def test_the_weighted_mean_beats_the_nearest_colour_on_smooth_colour() -> None:
    error = transfer_errors(colour_field)
    assert error[ColourConfig().neighbours] < 0.7 * error[1]  # 3.6/255 against 6.5/255
    assert error[ColourConfig().neighbours] < 5 / 255


def test_the_weighted_mean_keeps_sharp_colour_edges_as_well_as_the_nearest() -> None:
    error = transfer_errors(checker_field)
    assert error[ColourConfig().neighbours] < 1.05 * error[1]  # 15.0/255 against 14.8/255


@pytest.fixture(scope="module")
def coloured_mesh() -> trimesh.Trimesh:
    config = build_config("nap", "fast", device="cpu", seed=0, max_iterations=400, resolution=64)
    result = reconstruct(coloured_torus(6000), config)
    assert result.metrics["colours"] == {"present": True, "used": True,
                                         "neighbours": ColourConfig().neighbours}
    return result.mesh


@pytest.mark.parametrize("fmt", ["glb", "ply", "obj"])
def test_colours_come_back_from_every_coloured_format(coloured_mesh, fmt) -> None:
    blob = export_mesh(coloured_mesh, fmt)
    if fmt == "glb":  # COLOR_0 holds linear light; trimesh hands it back as stored
        loaded = glb_geometry(blob)
        colours = linear_to_srgb(np.asarray(loaded.visual.vertex_colors)[:, :3] / 255)
    else:
        loaded = trimesh.load(io.BytesIO(blob), file_type=fmt, force="mesh", process=False)
        colours = np.asarray(loaded.visual.vertex_colors, dtype=np.float64)[:, :3] / 255
    truth = colour_field(np.asarray(loaded.vertices))
    assert len(colours) == len(coloured_mesh.vertices)
    assert np.abs(colours - truth).mean() < 10 / 255


def test_a_cloud_without_colours_gives_a_plain_mesh() -> None:
    cloud = coloured_torus(3000)
    config = build_config("nap", "fast", device="cpu", seed=0, max_iterations=50, resolution=32)
    result = reconstruct(PointCloud(points=cloud.points), config)
    assert result.metrics["colours"]["present"] is False
    assert result.mesh.visual.kind != "vertex"
