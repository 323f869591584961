"""Metrics against hand-computed values on tiny point sets and known meshes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from recon.engine.formats.ground_truth import GroundTruth, load_ground_truth
from recon.engine.metrics import (
    fit_to_input_metrics,
    ground_truth_metrics,
    mesh_facts,
    point_to_mesh_distance,
    surface_distance_metrics,
)
from tests.data import BUNNY


@pytest.fixture
def grid() -> np.ndarray:
    """(125, 3) points on a 5x5x5 grid with spacing 1: bbox longest side 4."""
    axis = np.arange(5.0)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def test_uniform_offset_gives_exact_chamfer_fscore_hausdorff(grid) -> None:
    pred = grid + np.array([0.0, 0.0, 0.03])
    m = surface_distance_metrics(pred, None, grid, None, unit_scale=4.0)
    assert m["cd1"] == pytest.approx(0.03)
    assert m["cd1_x100"] == pytest.approx(0.03 / 4 * 100)
    assert m["cd2"] == pytest.approx(0.03**2)
    assert m["cd2_x100"] == pytest.approx(0.03**2 / 16 * 100)
    assert m["hausdorff"] == pytest.approx(0.03)
    assert m["hausdorff_x100"] == pytest.approx(0.75)
    assert m["fscore_0.01"] == 1.0  # tau = 0.04 input units
    assert m["fscore_0.005"] == 0.0  # tau = 0.02 input units
    assert m["nc"] is None


def test_partial_shift_gives_exact_fscore(grid) -> None:
    pred = grid.copy()
    pred[:25] += np.array([0.0, 0.03, 0.0])
    m = surface_distance_metrics(pred, None, grid, None, unit_scale=4.0)
    assert m["fscore_0.005"] == pytest.approx(100 / 125)
    assert m["cd1"] == pytest.approx(25 * 0.03 / 125)


def test_outlier_sets_hausdorff_and_precision(grid) -> None:
    pred = np.vstack([grid, [[2.0, 2.0, 6.5]]])  # 2.5 above the grid's top
    m = surface_distance_metrics(pred, None, grid, None, unit_scale=4.0)
    assert m["hausdorff"] == pytest.approx(2.5)
    assert m["cd1"] == pytest.approx(0.5 * 2.5 / 126)
    assert m["cd2"] == pytest.approx(0.5 * 6.25 / 126)
    precision, recall = 125 / 126, 1.0
    assert m["fscore_0.01"] == pytest.approx(2 * precision * recall / (precision + recall))


def test_normal_consistency_uses_absolute_cosine(grid) -> None:
    pred_normals = np.tile([0.0, 0.0, 1.0], (125, 1))
    gt_normals = np.tile([0.0, np.sin(np.pi / 3), np.cos(np.pi / 3)], (125, 1))
    gt_normals[::2] = [0.0, 0.0, -1.0]  # flipped: |cos| = 1
    m = surface_distance_metrics(grid, pred_normals, grid, gt_normals, unit_scale=4.0)
    assert m["nc"] == pytest.approx((63 * 1.0 + 62 * 0.5) / 125)
    assert m["cd1"] == 0.0 and m["fscore_0.005"] == 1.0


def test_bad_unit_scale(grid) -> None:
    with pytest.raises(ValueError, match="unit_scale"):
        surface_distance_metrics(grid, None, grid, None, unit_scale=0.0)


def test_unit_sphere_facts() -> None:
    facts = mesh_facts(trimesh.creation.icosphere(subdivisions=5))
    assert facts["watertight"] is True and facts["genus"] == 0 and facts["euler"] == 2
    assert facts["components"] == 1
    assert facts["area"] == pytest.approx(4 * np.pi, rel=2e-3)
    assert facts["volume"] == pytest.approx(4 / 3 * np.pi, rel=3e-3)
    assert json.loads(json.dumps(facts)) == facts


def test_torus_two_spheres_and_open_mesh_facts() -> None:
    assert mesh_facts(trimesh.creation.torus(1.0, 0.3))["genus"] == 1
    sphere = trimesh.creation.icosphere(2)
    pair = trimesh.util.concatenate([sphere, sphere.copy().apply_translation([3, 0, 0])])
    facts = mesh_facts(pair)
    assert (facts["components"], facts["euler"], facts["genus"]) == (2, 4, 0)
    opened = trimesh.Trimesh(sphere.vertices, sphere.faces[1:], process=False)
    facts = mesh_facts(opened)
    assert facts["watertight"] is False and facts["genus"] is None and facts["volume"] is None
    assert facts["faces"] == len(sphere.faces) - 1 and facts["euler"] == 1


def test_point_to_mesh_distance_matches_brute_force() -> None:
    mesh = trimesh.creation.icosphere(2)
    rng = np.random.default_rng(5)
    points = rng.normal(scale=0.8, size=(300, 3))
    fast = point_to_mesh_distance(mesh, points, np.random.default_rng(0))
    triangles = np.repeat(mesh.triangles[None], len(points), axis=0).reshape(-1, 3, 3)
    queries = np.repeat(points, len(mesh.faces), axis=0)
    closest = trimesh.triangles.closest_point(triangles, queries)
    exact = np.linalg.norm(closest - queries, axis=1).reshape(len(points), -1).min(axis=1)
    np.testing.assert_allclose(fast, exact, atol=1e-12)


def test_fit_to_input_on_a_box_with_known_offsets() -> None:
    box = trimesh.creation.box(extents=(2.0, 2.0, 2.0))
    xy = np.random.default_rng(2).uniform(-0.8, 0.8, size=(50, 2))
    above = np.column_stack([xy, np.full(50, 1.1)])  # 0.1 above the top face
    on_bottom = np.column_stack([xy, np.full(50, -1.0)])
    m = fit_to_input_metrics(box, np.vstack([above, on_bottom]))
    assert m["mean"] == pytest.approx(0.05)
    assert m["max"] == pytest.approx(0.1)
    assert m["p95"] == pytest.approx(0.1)
    lo, hi = np.vstack([above, on_bottom]).min(axis=0), np.vstack([above, on_bottom]).max(axis=0)
    assert m["bbox_diagonal"] == pytest.approx(np.linalg.norm(hi - lo))
    assert m["chamfer"] == pytest.approx(0.5 * (m["mean"] + m["mesh_to_input_mean"]))
    assert m["mesh_to_input_mean"] > 0.1  # the box's sides are far from every input point
    assert m["relative"]["max"] == pytest.approx(0.1 / m["bbox_diagonal"])
    assert json.loads(json.dumps(m)) == m


def test_ground_truth_metrics_are_scale_free_in_the_unit_cube_frame() -> None:
    sphere = trimesh.creation.icosphere(3)
    shifted = sphere.copy().apply_translation([0.0, 0.0, 0.02])
    gt = GroundTruth(np.asarray(sphere.vertices), None, np.asarray(sphere.faces))
    base = ground_truth_metrics(shifted, gt, n_samples=5000, seed=3)
    scaled_gt = GroundTruth(gt.points * 10, None, gt.faces)
    scaled = ground_truth_metrics(shifted.copy().apply_scale(10), scaled_gt, n_samples=5000, seed=3)
    for key in ("cd1_x100", "cd2_x100", "fscore_0.01", "fscore_0.005", "hausdorff_x100", "nc"):
        assert scaled[key] == pytest.approx(base[key], rel=1e-9)
    assert scaled["cd1"] == pytest.approx(10 * base["cd1"])
    assert scaled["cd2"] == pytest.approx(100 * base["cd2"])
    assert base["n_samples"] == 5000 and base["hausdorff"] >= 0.02 - 1e-9
    assert json.loads(json.dumps(base)) == base


def test_bunny_against_itself_sits_at_the_sampling_floor() -> None:
    gt = load_ground_truth(BUNNY / "gt_mesh.ply")
    mesh = trimesh.Trimesh(gt.points, gt.faces, process=False)
    m = ground_truth_metrics(mesh, gt, n_samples=100_000, seed=0)
    # Two independent sample sets of one 5,000-face mesh: next to a crease a sample's nearest
    # neighbour may lie on the next face, which costs a little normal consistency.
    assert m["cd1_x100"] < 0.3 and m["nc"] > 0.98 and m["fscore_0.01"] > 0.999


def test_empty_mesh_is_rejected() -> None:
    empty = trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), int))
    with pytest.raises(ValueError, match="no faces"):
        fit_to_input_metrics(empty, np.zeros((3, 3)))
