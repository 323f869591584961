"""End-to-end engine runs on synthetic shapes with a tiny config: quality, determinism, metrics."""

import dataclasses

import numpy as np
import pytest
import torch

from recon.engine.errors import ReconstructionCanceled
from recon.engine.examples import sphere_distance, torus_distance
from recon.engine.formats.ground_truth import GroundTruth
from recon.engine.pipeline import reconstruct

SPHERE_OFFSET = np.array([1.0, -2.0, 0.5])
SPHERE_SCALE = 3.0


def test_sphere_fit_is_watertight_and_on_the_sphere(sphere_points, tiny_config, tweak):
    # Start from a smaller sphere than the target so the fit has to move the surface.
    config = tweak(tiny_config, network={"init_radius": 0.3})
    result = reconstruct(sphere_points, config)
    mesh = result.mesh
    assert mesh.is_watertight and result.metrics["mesh"]["watertight"]
    distance = sphere_distance((mesh.vertices - SPHERE_OFFSET) / SPHERE_SCALE) * SPHERE_SCALE
    # Input units: radius 1.5, tolerance 2% of the radius on average.
    assert distance.mean() < 0.03 and distance.max() < 0.15
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 1.5**3, rel=0.1)


@pytest.mark.parametrize("activation", ["relu", "softplus"])  # softplus: as under `balanced`
def test_torus_fit_is_watertight_genus_one_and_close(torus_points, tiny_config, tweak, activation):
    result = reconstruct(torus_points, tweak(tiny_config, network={"activation": activation}))
    mesh = result.mesh
    assert mesh.is_watertight
    assert mesh.euler_number == 0
    assert torus_distance(mesh.vertices).mean() < 0.01
    fit = result.metrics["fit_to_input"]
    assert fit["relative"]["mean"] < 0.01


def test_same_seed_same_mesh_different_seed_different_mesh(torus_points, tiny_config, tweak):
    config = tweak(tiny_config, training={"max_iterations": 60}, meshing={"resolution": 32})
    a = reconstruct(torus_points, config).mesh
    b = reconstruct(torus_points, config).mesh
    c = reconstruct(torus_points, dataclasses.replace(config, seed=1)).mesh
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.faces, b.faces)
    assert a.vertices.shape != c.vertices.shape or not np.array_equal(a.vertices, c.vertices)


def test_metrics_layout_and_progress_stages(torus_points, tiny_config, tweak):
    config = tweak(tiny_config, training={"max_iterations": 50}, meshing={"resolution": 32})
    events = []
    truth = GroundTruth(points=torus_points.points, normals=torus_points.normals, faces=None)
    result = reconstruct(torus_points, config, ground_truth=truth, on_progress=events.append)
    stages = [event.stage for event in events]
    assert stages[0] == "prepare" and "train" in stages and "mesh" in stages
    assert stages[-1] == "metrics"
    metrics = result.metrics
    assert set(metrics) == {"fit_to_input", "mesh", "run", "ground_truth", "surface", "support",
                            "decimation", "frame", "colours"}
    assert metrics["decimation"] is None and metrics["colours"]["present"] is False
    assert metrics["frame"]["units"] == "m" and not metrics["frame"]["units_given"]
    assert metrics["surface"] == {"kind": "closed", "watertight": True}
    assert 0 <= metrics["fit_to_input"]["far_area_share"] <= 1
    assert 0 < metrics["mesh"]["largest_component_area_share"] <= 1
    run = metrics["run"]
    assert run["iterations"] == 50 and run["stop_reason"] == "max_iterations"
    assert run["time_budget_s"] is None
    assert set(run["seconds_by_stage"]) == {"prepare", "train", "mesh", "metrics"}
    assert run["method"] == "nap" and run["device"] == "cpu" and run["points"] == 1500
    assert (run["precision"], run["threads"]) == ("fp32", 1) and run["engine_version"]
    assert run["input_normals"] in ("used", "ignored")  # the torus comes with its normals
    assert run["sign_prior"] == "not watched"  # under SignPriorConfig.min_points
    # A torus fit is one closed piece: nothing to drop, and the count says so.
    assert run["specks_removed"] == 0 and metrics["mesh"]["components"] == 1
    assert {"cd1_x100", "cd2_x100", "nc", "fscore_0.01"} <= set(metrics["ground_truth"])
    assert run["seconds_total"] >= sum(run["seconds_by_stage"].values()) - 1e-6


def test_a_larger_cloud_gets_a_larger_time_budget_and_step_cap(torus_points, tiny_config, tweak):
    config = tweak(tiny_config, meshing={"resolution": 32}, training={
        "max_iterations": 20, "time_budget_s": 100.0, "budget_reference_points": 500,
        "budget_growth_cap": 3.0})
    run = reconstruct(torus_points, config).metrics["run"]
    assert run["points"] == 1500 and run["iterations"] == round(20 * 3 ** (1 / 3)) == 29
    assert run["time_budget_s"] == pytest.approx(100.0 * 3 ** (1 / 3))


def test_cancellation_raises(torus_points, tiny_config):
    with pytest.raises(ReconstructionCanceled):
        reconstruct(torus_points, tiny_config, should_cancel=lambda: True)


def test_duplicates_are_removed_with_a_warning(torus_points, tiny_config, tweak):
    doubled = dataclasses.replace(
        torus_points,
        points=np.vstack([torus_points.points, torus_points.points[:10]]),
        normals=np.vstack([torus_points.normals, torus_points.normals[:10]]),
    )
    config = tweak(tiny_config, training={"max_iterations": 20}, meshing={"resolution": 24})
    result = reconstruct(doubled, config)
    assert any("10 duplicate" in warning for warning in result.warnings)
    assert result.metrics["run"]["points"] == 1500


def test_global_random_state_and_threads_are_left_alone(torus_points, tiny_config, tweak):
    config = tweak(tiny_config, training={"max_iterations": 20, "num_threads": 2},
                   meshing={"resolution": 24})
    torch.manual_seed(123)
    np.random.seed(123)
    threads = torch.get_num_threads()
    reconstruct(torus_points, config)
    assert torch.get_num_threads() == threads
    torch_after, numpy_after = torch.rand(1), np.random.rand()
    torch.manual_seed(123)
    np.random.seed(123)
    assert torch.equal(torch_after, torch.rand(1)) and numpy_after == np.random.rand()
