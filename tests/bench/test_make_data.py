"""A held-out benchmark shape built from a mesh: its layout, frame and noise, and a run on it.

The mesh is a torus off the origin and out of scale, stored gzip-compressed, so the normalisation
and the ``.gz`` path are exercised; the torus's exact distance function checks every sample.
"""

import gzip
import json

import numpy as np
import pytest
import trimesh

from bench import make_data
from bench.cli import parse_options
from bench.data import REGIMES, bench_case
from bench.report import build_report
from bench.results import RESULTS_FILE, RunSpec, row_from_json
from bench.runner import MatrixPlan, plan_specs, run_matrix
from bench.summary import group_rows
from bench.targets import check_targets

MAJOR, MINOR = 3.0, 0.9
CENTRE = np.array([5.0, -2.0, 1.0])
SCALE = 2 * (MAJOR + MINOR)
"""The torus's longest bounding-box side, which normalisation divides by."""
TESSELLATION_TOLERANCE = 2e-3
"""How far the tessellated torus strays from the exact one, in the unit frame."""


def unit_torus_distance(points: np.ndarray) -> np.ndarray:
    """Signed distance to the normalised torus (axis z, centred at the origin)."""
    major, minor = MAJOR / SCALE, MINOR / SCALE
    ring = np.hypot(points[:, 0], points[:, 1]) - major
    return np.hypot(ring, points[:, 2]) - minor


def offset_from_core(points: np.ndarray) -> np.ndarray:
    """Each point minus its nearest point on the torus's core circle: the outward direction."""
    radial = points[:, :2] / np.hypot(points[:, 0], points[:, 1])[:, None]
    core = np.c_[radial * MAJOR / SCALE, np.zeros(len(points))]
    return points - core


@pytest.fixture(scope="module")
def torus_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("heldout")
    mesh = trimesh.creation.torus(major_radius=MAJOR, minor_radius=MINOR,
                                  major_sections=128, minor_sections=64)
    mesh.apply_translation(CENTRE)
    source = root / "torus.ply.gz"
    source.write_bytes(gzip.compress(mesh.export(file_type="ply")))
    assert make_data.main([str(source), "--name", "torus", "--data", str(root / "data")]) == 0
    return root


def test_every_regime_follows_the_shared_recipe(torus_data):
    data = torus_data / "data"
    transform = json.loads((data / "torus" / make_data.TRANSFORM_FILE).read_text())
    assert np.allclose(transform["centre"], CENTRE, atol=1e-6)
    assert transform["scale"] == pytest.approx(SCALE)
    assert tuple(make_data.REGIME_RECIPES) == REGIMES
    assert sorted(p.name for p in data.iterdir()) == ["torus"]  # no staging folder left behind
    for regime, recipe in make_data.REGIME_RECIPES.items():
        case = bench_case(data, regime, "torus")
        cloud = case.load_points(with_normals=True)
        assert len(cloud.points) == recipe.points
        distance = unit_torus_distance(cloud.points)
        if recipe.noise_sigma == 0.0:
            assert np.abs(distance).max() < TESSELLATION_TOLERANCE
        else:
            assert np.std(distance) == pytest.approx(recipe.noise_sigma, rel=0.2)
        # Clean normals: unit length and outward (along the exact torus's gradient).
        assert np.allclose(np.linalg.norm(cloud.normals, axis=1), 1.0, atol=1e-5)
        outward = np.sum(offset_from_core(cloud.points) * cloud.normals, axis=1)
        assert np.mean(outward > 0) > 0.99
    gt = bench_case(data, "sparse", "torus").load_ground_truth()
    assert len(gt.points) == make_data.GROUND_TRUTH_SAMPLES
    assert np.abs(unit_torus_distance(gt.points)).max() < TESSELLATION_TOLERANCE
    low, high = gt.points.min(axis=0), gt.points.max(axis=0)
    assert np.max(high - low) == pytest.approx(1.0, abs=1e-2)
    assert np.allclose((low + high) / 2, 0.0, atol=1e-2)


def test_an_existing_shape_is_kept_and_a_non_mesh_is_refused(torus_data, capsys):
    data = torus_data / "data"
    before = (data / "torus" / "sparse" / "points.ply").read_bytes()
    assert make_data.main([str(torus_data / "torus.ply.gz"), "--name", "torus",
                           "--data", str(data)]) == 2
    assert "pass --force" in capsys.readouterr().err
    assert (data / "torus" / "sparse" / "points.ply").read_bytes() == before
    text = torus_data / "notes.obj"
    text.write_text("# no faces here\nv 0 0 0\n")
    assert make_data.main([str(text), "--name", "notes", "--data", str(data)]) == 2
    assert "no triangles" in capsys.readouterr().err
    assert sorted(p.name for p in data.iterdir()) == ["torus"]  # nothing half-written


def test_a_held_out_shape_runs_through_the_benchmark(torus_data):
    data = torus_data / "data"
    options = parse_options(["--data", str(data), "--shape", "torus", "--regimes", "sparse",
                             "--methods", "nap", "--presets", "fast", "--seeds", "0",
                             "--max-iterations", "30", "--resolution", "32",
                             "--time-budget", "3600", "--curve-budgets",
                             "--out", str(torus_data / "out")])
    assert options.plan.shape == "torus"
    assert [spec.shape for spec in plan_specs(options.plan)] == ["torus"]
    rows = run_matrix(options.plan, data, options.out / RESULTS_FILE, lambda _: None)
    assert [row.status for row in rows] == ["ok"], rows[0].error
    # A held-out torus is one the presets never saw; 30 steps already put the mesh near it.
    assert rows[0].ground_truth["cd1_x100"] < 5.0
    report = build_report(rows, None, None, plot_name=None)
    assert "| torus/sparse | nap | fast |" in report
    assert "held-out check" in report
    # The engine's targets are the bunny's: a torus row never answers them.
    assert {check.verdict for check in check_targets(group_rows(rows), None)} == {"not measured"}


def test_rows_written_before_shapes_existed_are_the_bunnys():
    row = row_from_json({"regime": "sparse", "method": "nap", "preset": "fast", "seed": 0,
                         "status": "ok"})
    assert row.spec.shape == "bunny" and row.spec.case == "sparse"
    assert RunSpec("sparse", "nap", "fast", 0, shape="dragon").case == "dragon/sparse"
    assert MatrixPlan(("sparse",), ("nap",), ("fast",), (0,)).shape == "bunny"
