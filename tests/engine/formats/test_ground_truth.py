"""Ground-truth loading (PLY/OBJ/STL/OFF meshes and point sets) and surface sampling."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from recon.engine.errors import InvalidGroundTruth
from recon.engine.formats.ground_truth import (
    GroundTruth,
    load_ground_truth,
    sample_ground_truth,
    sample_surface,
)
from recon.engine.formats.ply import PlyList, write_ply, write_point_cloud_ply
from tests.data import BUNNY


@pytest.fixture
def box() -> trimesh.Trimesh:
    """A 2 x 1 x 1 box: area 10, faces with known normals."""
    return trimesh.creation.box(extents=(2.0, 1.0, 1.0))


def test_bunny_gt_mesh_loads_with_faces() -> None:
    gt = load_ground_truth(BUNNY / "gt_mesh.ply")
    assert gt.points.shape == (2502, 3) and gt.faces.shape == (5000, 3)
    assert gt.faces.dtype == np.int64
    mesh = trimesh.Trimesh(gt.points, gt.faces, process=False)
    assert mesh.is_watertight


def test_bunny_gt_samples_load_as_a_point_set_with_normals() -> None:
    gt = load_ground_truth(BUNNY / "gt_samples_10k.ply")
    assert gt.faces is None and gt.points.shape == (10_000, 3) and gt.normals is not None


@pytest.mark.parametrize("fmt", ["obj", "stl", "off", "ply"])
def test_mesh_formats_load(tmp_path, box, fmt) -> None:
    path = tmp_path / f"gt.{fmt}"
    blob = box.export(file_type=fmt)
    path.write_bytes(blob.encode() if isinstance(blob, str) else blob)
    gt = load_ground_truth(path)
    assert gt.faces is not None and len(gt.faces) == 12
    loaded = trimesh.Trimesh(gt.points, gt.faces)
    assert loaded.area == pytest.approx(10.0)


def test_quads_are_fanned_into_triangles() -> None:
    square = {"vertex": {"x": np.array([0.0, 1, 1, 0, 2]), "y": np.array([0.0, 0, 1, 1, 0]),
                         "z": np.zeros(5)},
              "face": {"vertex_indices": PlyList(np.array([4, 3]),
                                                 np.array([0, 1, 2, 3, 1, 4, 2], np.int32))}}
    gt = load_ground_truth(write_ply(square, format="ascii"))
    np.testing.assert_array_equal(gt.faces, [[0, 1, 2], [0, 2, 3], [1, 4, 2]])


@pytest.mark.parametrize(
    ("content", "fmt", "fragment"),
    [
        (b"", None, "empty"),
        (b"\x89PNG\r\n\x1a\n" + bytes(20), None, "PNG image"),
        (b"solid x\nendsolid x\n", "stl", "no triangles|cannot read"),
        (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
         b"property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
         b"0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", None, "face indices reach 7 but the mesh has 3"),
        (b"ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nend_header\n1\n", None,
         "declares 2 vertices but the data holds only 1"),
    ],
)
def test_bad_ground_truth(content, fmt, fragment) -> None:
    with pytest.raises(InvalidGroundTruth, match=fragment):
        load_ground_truth(content, format=fmt)


def test_unknown_format_name() -> None:
    with pytest.raises(ValueError, match="valid formats"):
        load_ground_truth(b"1 2 3", format="fbx")


def test_area_weighted_sampling_hits_faces_in_proportion(box) -> None:
    gt = GroundTruth(np.asarray(box.vertices, float), None, np.asarray(box.faces, np.int64))
    points, normals = sample_ground_truth(gt, 40_000, seed=1)
    assert points.shape == normals.shape == (40_000, 3)
    assert np.all(np.abs(points) <= np.array([1.0, 0.5, 0.5]) + 1e-12)
    on_x_caps = np.isclose(np.abs(points[:, 0]), 1.0)  # two 1x1 faces of the 10-unit area
    assert on_x_caps.mean() == pytest.approx(0.2, abs=0.01)
    inside_caps = on_x_caps & np.all(np.abs(points[:, 1:]) < 0.5 - 1e-9, axis=1)  # not on edges
    np.testing.assert_allclose(np.abs(normals[inside_caps, 0]), 1.0)
    again, _ = sample_ground_truth(gt, 40_000, seed=1)
    np.testing.assert_array_equal(points, again)


def test_samples_lie_inside_their_triangles() -> None:
    vertices = np.array([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    points, normals, index = sample_surface(vertices, np.array([[0, 1, 2]]), 5000,
                                            np.random.default_rng(0))
    assert np.all(points[:, :2] >= 0) and np.all(points[:, :2].sum(axis=1) <= 1 + 1e-12)
    np.testing.assert_allclose(normals, np.tile([0.0, 0, 1], (5000, 1)))
    assert np.all(index == 0)


def test_point_set_sampling_subsamples_without_replacement() -> None:
    points = np.random.default_rng(0).normal(size=(500, 3))
    gt = load_ground_truth(write_point_cloud_ply(points, points))
    sampled, normals = sample_ground_truth(gt, 100, seed=2)
    assert sampled.shape == (100, 3) and normals.shape == (100, 3)
    assert len(np.unique(sampled, axis=0)) == 100
    whole, _ = sample_ground_truth(gt, 1000)
    assert len(whole) == 500
