"""The uploaded points for display: a bounded, repeatable subset; GLB points in the mesh GLB's
frame (so the two overlay), PLY in the input's frame; the stored copy round-trips."""

from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest
import trimesh

from recon.engine.config import FrameConfig
from recon.engine.export import export_mesh
from recon.engine.formats import DisplayPoints, load_display_points, points_glb, points_ply
from recon.engine.formats.frame import glb_transform
from recon.engine.formats.ply import read_ply
from recon.engine.formats.srgb import srgb_to_linear
from tests.engine.glb_reading import glb_geometry

SURVEY_OFFSET_M = np.array([512_345.0, 4_123_456.0, 250.0])
"""Projected survey coordinates (UTM-like easting, northing, height), far from the origin."""


@pytest.fixture
def survey() -> DisplayPoints:
    """2,000 points of a 3 m sphere around survey coordinates (mm, z-up), with colours."""
    rng = np.random.default_rng(3)
    directions = rng.normal(size=(2000, 3))
    points = directions / np.linalg.norm(directions, axis=1, keepdims=True) * 1500.0
    colours = rng.integers(0, 256, size=(2000, 3)).astype(np.uint8)
    return DisplayPoints(points + SURVEY_OFFSET_M * 1000.0, colours)


def glb_points(blob: bytes) -> trimesh.PointCloud:
    """The GLB's one point cloud with its node translation applied."""
    scene = trimesh.load(io.BytesIO(blob), file_type="glb")
    cloud = scene.to_geometry()
    assert isinstance(cloud, trimesh.PointCloud)
    return cloud


def primitive_of(blob: bytes) -> dict:
    length, kind = struct.unpack_from("<I4s", blob, 12)
    assert blob[:4] == b"glTF" and kind == b"JSON"
    document = json.loads(blob[20:20 + length])
    (mesh,) = document["meshes"]
    (primitive,) = mesh["primitives"]
    return dict(primitive)


def test_subset_is_bounded_repeatable_and_keeps_colours_with_their_points(survey) -> None:
    small = survey.subset(300)
    assert len(small.points) == 300 and small.colours is not None
    again = survey.subset(300)
    np.testing.assert_array_equal(small.points, again.points)
    rows = [np.flatnonzero((survey.points == p).all(axis=1))[0] for p in small.points[:20]]
    np.testing.assert_array_equal(survey.colours[rows], small.colours[:20])
    assert np.all(np.diff(rows) > 0)  # file order
    assert survey.subset(10**6) is survey


def test_glb_points_overlay_the_mesh_glb(survey) -> None:
    """Same frame as the mesh export: a mesh through some of the points has them as vertices."""
    frame = FrameConfig(up_axis="z", units="mm")
    blob = points_glb(survey, "z", "mm")
    primitive = primitive_of(blob)
    assert primitive["mode"] == 0 and "indices" not in primitive
    assert set(primitive["attributes"]) == {"POSITION", "COLOR_0"}
    cloud = glb_points(blob)
    expected = survey.points @ glb_transform("z", "mm").T
    np.testing.assert_allclose(cloud.vertices, expected, atol=1e-4)  # 0.1 mm, 4,000 km out
    mesh = trimesh.Trimesh(vertices=survey.points[:3], faces=[[0, 1, 2]], process=False)
    mesh_glb = glb_geometry(export_mesh(mesh, "glb", frame))
    np.testing.assert_allclose(mesh_glb.vertices, cloud.vertices[:3], atol=1e-4)
    linear = np.asarray(cloud.colors)[:, :3] / 255.0  # trimesh rounds COLOR_0 to 8 bits
    assert np.abs(linear - srgb_to_linear(survey.colours / 255.0)).max() <= 0.51 / 255.0


def test_points_without_colours_have_no_colour_attribute() -> None:
    plain = DisplayPoints(np.random.default_rng(0).normal(size=(50, 3)))
    primitive = primitive_of(points_glb(plain))
    assert set(primitive["attributes"]) == {"POSITION"}
    np.testing.assert_allclose(glb_points(points_glb(plain)).vertices, plain.points, atol=1e-6)


def test_ply_keeps_the_input_frame_exactly(survey) -> None:
    vertex = read_ply(points_ply(survey))["vertex"]
    points = np.stack([vertex[name] for name in "xyz"], axis=1)
    np.testing.assert_array_equal(points, survey.points)
    colours = np.stack([vertex[name] for name in ("red", "green", "blue")], axis=1)
    np.testing.assert_array_equal(colours, survey.colours)


def test_stored_copy_round_trips_and_refuses_garbage(survey) -> None:
    back = DisplayPoints.decode(survey.encode())
    np.testing.assert_array_equal(back.points, survey.points)
    np.testing.assert_array_equal(back.colours, survey.colours)
    plain = DisplayPoints.decode(DisplayPoints(survey.points).encode())
    assert plain.colours is None
    buffer = io.BytesIO()
    np.savez(buffer, points=np.zeros((4, 2)))
    with pytest.raises(ValueError):
        DisplayPoints.decode(buffer.getvalue())
    with pytest.raises(ValueError):
        DisplayPoints.decode(b"not an archive")


def test_load_reads_an_upload_keeping_at_most_max_points(survey) -> None:
    display = load_display_points(points_ply(survey), max_points=500)
    assert len(display.points) == 500 and display.colours is not None
    assert np.isin(display.points[:, 0], survey.points[:, 0]).all()
    np.testing.assert_array_equal(display.points,
                                  load_display_points(points_ply(survey), 500).points)
