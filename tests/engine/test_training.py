"""The optimisation loop: progress callback, cancellation, divergence, early stop, schedule."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from recon.engine.config import TrainingConfig
from recon.engine.errors import Diverged, ReconstructionCanceled
from recon.engine.methods import TrainingData, get_method
from recon.engine.model import SdfNetwork
from recon.engine.sampling import QueryPool, sample_queries
from recon.engine.training import learning_rate, scaled_to_cloud, train


def _setup(cloud, config, pool: QueryPool | None = None):
    points = cloud.points / np.abs(cloud.points).max() / 2
    if pool is None:
        pool = sample_queries(points, config.preparation, np.random.default_rng(0))
    data = TrainingData(points, cloud.normals, pool)
    method = get_method(config.method)(
        config, data, torch.device("cpu"), torch.Generator().manual_seed(0)
    )
    network = SdfNetwork(config.network, generator=torch.Generator().manual_seed(0))
    return network, method


def test_on_step_reports_progress_and_loss_decreases(torus_points, tiny_config):
    network, method = _setup(torus_points, tiny_config)
    reports = []
    outcome = train(network, method, tiny_config.training, on_step=reports.append)
    assert outcome.iterations == tiny_config.training.max_iterations
    assert outcome.stop_reason == "max_iterations"
    assert reports[0].step == 1 and reports[-1].step == outcome.iterations
    assert [r.step for r in reports] == sorted(r.step for r in reports)
    assert reports[-1].loss < reports[0].loss
    assert set(outcome.final_losses) >= {"pull", "adversarial"}
    assert outcome.iterations_per_second > 0


def test_cancellation_raises_within_a_few_steps(torus_points, tiny_config):
    network, method = _setup(torus_points, tiny_config)
    calls = []

    def should_cancel() -> bool:
        calls.append(1)
        return len(calls) >= 3

    with pytest.raises(ReconstructionCanceled):
        train(network, method, tiny_config.training, should_cancel=should_cancel)
    assert len(calls) == 3


def test_non_finite_loss_raises_diverged(torus_points, tiny_config):
    config = tiny_config
    points = torus_points.points / 2
    good = sample_queries(points, config.preparation, np.random.default_rng(0))
    bad = dataclasses.replace(good, queries=np.full_like(good.queries, np.nan))
    network, method = _setup(torus_points, config, pool=bad)
    with pytest.raises(Diverged):
        train(network, method, config.training)


@pytest.mark.parametrize("min_progress", [0.0, 0.3])
def test_plateau_stops_early_and_says_so(torus_points, tiny_config, tweak, min_progress):
    training = dataclasses.replace(
        tiny_config.training, max_iterations=2000, plateau_window=50,
        plateau_min_iterations=100, plateau_rel_tol=0.5, plateau_min_progress=min_progress,
    )
    network, method = _setup(torus_points, tweak(tiny_config, training=training))
    outcome = train(network, method, training)
    assert outcome.stop_reason == "plateau"
    # Never before the step floor nor the schedule share (0.3 of 2000 steps).
    assert max(100, min_progress * 2000) <= outcome.iterations < 2000


def test_time_budget_stops_training(torus_points, tiny_config):
    training = dataclasses.replace(tiny_config.training, max_iterations=10**6, time_budget_s=0.5,
                                   progress_interval_s=0.05)
    network, method = _setup(torus_points, tiny_config)
    reports = []
    outcome = train(network, method, training, on_step=reports.append)
    assert outcome.stop_reason == "time_budget" and outcome.time_budget_s == 0.5
    assert outcome.seconds < 5
    # Progress follows the clock, not the (unreachable) step count.
    fractions = [report.fraction for report in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(0.5 < r.fraction < 1 and r.step / r.total < 0.01 for r in reports)


def test_learning_rate_warms_up_then_decays_to_the_floor():
    config = TrainingConfig(max_iterations=1000, warmup_iterations=100, learning_rate=1e-3,
                            min_learning_rate_factor=0.1)
    assert learning_rate(config, 0, 0.0) == pytest.approx(1e-5)
    assert learning_rate(config, 99, 0.099) == pytest.approx(1e-3)
    assert learning_rate(config, 500, 0.5) == pytest.approx(0.55e-3)
    assert learning_rate(config, 1000, 1.0) == pytest.approx(1e-4)


def test_warm_up_ends_by_a_tenth_of_a_time_budget_whatever_the_step_count():
    config = TrainingConfig(max_iterations=40_000, warmup_iterations=200, learning_rate=1e-3,
                            time_budget_s=15.0)
    # A slow machine: 20 steps in 5% of the budget is half-way through the warm-up in time.
    assert learning_rate(config, 19, 0.05) == pytest.approx(0.5e-3)
    # A tenth of the budget gone after 40 steps: the warm-up is over and the cosine has begun.
    cosine = 1e-3 * 0.5 * (1 + math.cos(0.1 * math.pi))
    assert learning_rate(config, 40, 0.1) == pytest.approx(cosine)
    # A fast machine finishes the 200 warm-up steps well before a tenth of the budget.
    cosine = 1e-3 * 0.5 * (1 + math.cos(0.02 * math.pi))
    assert learning_rate(config, 200, 0.02) == pytest.approx(cosine)


def test_same_seed_same_weights(torus_points, tiny_config, tweak):
    config = tweak(tiny_config, training={"max_iterations": 30})
    results = []
    for _ in range(2):
        network, method = _setup(torus_points, config)
        train(network, method, config.training)
        results.append(torch.cat([p.detach().flatten() for p in network.parameters()]))
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)


def test_budget_and_step_cap_grow_with_the_cube_root_of_the_cloud_size_up_to_the_caps():
    config = TrainingConfig(time_budget_s=30.0, max_iterations=1000, budget_reference_points=1000,
                            budget_growth_cap=3.0)

    def grown(config: TrainingConfig, points: int) -> tuple[float | None, int]:
        scaled = scaled_to_cloud(config, points)
        return scaled.time_budget_s, scaled.max_iterations

    assert grown(config, 10) == (30.0, 1000)  # small clouds never shrink the budget
    assert grown(config, 1000) == (30.0, 1000)
    assert grown(config, 8000) == (pytest.approx(60.0), 2000)
    assert grown(config, 1_000_000) == (pytest.approx(90.0), 3000)  # growth cap
    ceiling = dataclasses.replace(config, max_time_budget_s=45.0)
    assert grown(ceiling, 8000) == (45.0, 2000)  # the job's time limit wins
    fixed = dataclasses.replace(config, budget_growth_cap=1.0)
    assert grown(fixed, 8000) == (30.0, 1000)
    assert grown(dataclasses.replace(config, time_budget_s=None), 8000) == (None, 2000)
