"""The whole-run time plan: training is capped so that meshing fits, and the mesh resolution
comes down when the time left does not cover it; measured on a real network and real runs."""

import dataclasses
import time

import torch

from recon.engine import build_config, reconstruct
from recon.engine.config import NetworkConfig, TrainingConfig
from recon.engine.formats.pointcloud import PointCloud
from recon.engine.model import SdfNetwork
from recon.engine.time_plan import (
    MIN_TRAINING_S,
    TimePlan,
    capped_training,
    seconds_per_evaluation,
)


def test_evaluation_cost_is_measured_on_the_network() -> None:
    network = SdfNetwork(NetworkConfig(), generator=torch.Generator().manual_seed(0))
    cost = seconds_per_evaluation(network, torch.device("cpu"))
    assert 1e-9 < cost < 1e-3
    assert network.training  # left as it was


def test_plan_caps_training_and_lowers_the_resolution_when_time_is_short() -> None:
    plan = TimePlan(limit_s=60.0, started_at=time.perf_counter(), seconds_per_eval=2e-6)
    assert plan.mesh_seconds(512) > plan.mesh_seconds(256) > plan.mesh_seconds(128)
    assert plan.training_cap(128) > plan.training_cap(512)
    assert plan.fitting_resolution(128) == 128  # a few seconds: fits
    lowered = plan.fitting_resolution(1024)  # minutes of grid work: does not
    assert 32 <= lowered < 1024 and plan.mesh_seconds(lowered) <= plan.remaining()
    late = TimePlan(limit_s=60.0, started_at=time.perf_counter() - 59.0, seconds_per_eval=2e-6)
    assert late.training_cap(128) == 0.0 and late.fitting_resolution(256) == 32


def test_capped_training_keeps_the_smaller_budget() -> None:
    assert capped_training(TrainingConfig(time_budget_s=10.0), 30.0).time_budget_s == 10.0
    assert capped_training(TrainingConfig(time_budget_s=None), 30.0).time_budget_s == 30.0
    assert capped_training(TrainingConfig(time_budget_s=10.0), 0.0).time_budget_s == MIN_TRAINING_S


def test_a_run_with_a_short_limit_ends_within_it_at_a_lower_resolution(
    sphere_points: PointCloud,
) -> None:
    """Asked for 512^3 (minutes of grid work on this CPU) with 12 s for everything: training is
    cut short and the mesh comes at the resolution the remaining time allows, with a warning."""
    config = build_config("nap", "fast", device="cpu", seed=0, resolution=512,
                          max_iterations=100_000)
    config = dataclasses.replace(config, time_limit_s=12.0)
    started = time.perf_counter()
    result = reconstruct(sphere_points, config)
    elapsed = time.perf_counter() - started
    facts = result.metrics["run"]
    assert facts["resolution"] < 512
    assert any("time limit" in warning for warning in result.warnings)
    assert elapsed < 12.0 * 1.5, f"took {elapsed:.1f} s"
