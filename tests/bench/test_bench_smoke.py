"""Smoke test of the benchmark: one tiny engine run end to end, Poisson rows, report and plot.

Uses the bunny shipped in bench/data and the real engine; the Poisson part is skipped when the
optional `bench` extra (open3d) is not installed.
"""

import json
import math
from pathlib import Path

import pytest

from bench.cli import main
from bench.data import DEFAULT_DATA_DIR, bench_case
from bench.flops import analytic_step_flops, counted_step_flops
from bench.hardware import time_matmul
from bench.poisson import poisson_available
from bench.report import build_report, glance_table, write_report
from bench.results import RESULTS_FILE, RunRow, RunSpec, read_rows
from bench.runner import MatrixPlan, plan_specs, run_matrix, run_one
from bench.summary import group_rows

TINY = {"max_iterations": 50, "resolution": 32}
NO_TIME_CAP_S = 3600.0
"""Longer than 50 tiny steps can take, so the iteration count (not the clock) ends the run."""

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One nap/fast run on bunny/sparse with 50 iterations and a 32^3 mesh, through the runner."""
    out = tmp_path_factory.mktemp("bench")
    plan = MatrixPlan(regimes=("sparse",), methods=("nap",), presets=("fast",), seeds=(0,),
                      device="cpu", time_budget_s=NO_TIME_CAP_S, **TINY)
    rows = run_matrix(plan, DEFAULT_DATA_DIR, out / RESULTS_FILE, lambda _: None)
    return plan, out, rows


def test_runner_writes_a_real_row_and_resumes(tiny_run):
    plan, out, rows = tiny_run
    assert len(rows) == 1
    row = rows[0]
    assert row.status == "ok", row.error
    assert row.iterations == TINY["max_iterations"]
    assert 0 < row.ground_truth["cd1_x100"] < 10
    assert 0 < row.ground_truth["nc"] <= 1
    assert row.mesh["faces"] > 0 and row.wall_s > 0 and row.loss_curve
    stored = read_rows(out / RESULTS_FILE)
    assert [r.spec for r in stored] == [row.spec]
    # Resuming skips the finished row instead of running it again.
    assert run_matrix(plan, DEFAULT_DATA_DIR, out / RESULTS_FILE, lambda _: None) == []


@pytest.mark.skipif(not poisson_available()[0], reason="open3d (bench extra) not installed")
def test_poisson_rows_use_the_same_metrics(tmp_path):
    estimated = run_one(RunSpec("sparse", "poisson", "default", 0), DEFAULT_DATA_DIR, "cpu")
    given = run_one(RunSpec("sparse", "poisson-normals", "default", 0), DEFAULT_DATA_DIR, "cpu")
    assert estimated.status == "ok" and given.status == "ok", (estimated.error, given.error)
    # Screened Poisson on 1,000 clean bunny points: ~0.9 estimated, ~0.5 with the true normals.
    assert given.ground_truth["cd1_x100"] < estimated.ground_truth["cd1_x100"] < 2.0
    assert set(given.ground_truth) == set(estimated.ground_truth)


def test_report_turns_rows_into_a_table_and_a_png(tiny_run, tmp_path):
    _, out, rows = tiny_run
    hardware = {"cpu_model": "test cpu", "usable_cpus": 2, "logical_cpus": 2,
                "torch_version": "x", "torch_threads": 2, "python": "3.11", "device": "cpu",
                "matmul": [{"m": 8, "k": 8, "n": 8, "gflops": 10.0}],
                "matmul_gflops_best": 10.0}
    report_path, plot_path = write_report(rows, hardware, None, tmp_path)
    text = report_path.read_text()
    cd1 = rows[0].ground_truth["cd1_x100"]
    table_lines = [line for line in text.splitlines() if line.startswith("| sparse | nap |")]
    assert len(table_lines) == 2  # one median line, one per-run line
    assert f"{cd1:.3f}" in table_lines[0]
    assert "test cpu" in text and "not measured" in text
    assert plot_path is not None and plot_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rebuilds_the_report_from_the_results_file(tiny_run, tmp_path):
    _, out, rows = tiny_run
    assert main(["--report-only", "--out", str(out), "--report-dir", str(tmp_path)]) == 0
    assert "| sparse | nap | fast r32 |" in (tmp_path / "RESULTS.md").read_text()


def test_plan_covers_the_matrix_and_caps_paper_on_cpu():
    plan = MatrixPlan(regimes=("sparse", "dense"), methods=("nap", "poisson"),
                      presets=("fast", "paper"), seeds=(0, 1), curve_budgets=(30.0,))
    specs = plan_specs(plan)
    assert len(specs) == 2 * 2 + 2 * 2 * 2 + 1 * 2  # poisson, neural, sweep (nap, sparse_noisy)
    paper = [s for s in specs if s.preset == "paper" and s.time_budget_s != 30.0]
    assert paper and all(s.time_budget_s == 600.0 for s in paper)
    assert len({s.key() for s in specs}) == len(specs)


@pytest.mark.parametrize("preset, activation", [("fast", "relu"), ("balanced", "softplus")])
def test_analytic_flops_match_torch_flop_counter(preset, activation):
    import torch

    from bench.speed import _synthetic_method
    from recon.engine.model import SdfNetwork
    from recon.engine.presets import build_config

    config = build_config("neural-pull", preset, device="cpu", seed=0)
    assert config.network.activation == activation
    network = SdfNetwork(config.network)
    method = _synthetic_method("neural-pull", config, "cpu")
    counted = counted_step_flops(method, network)
    analytic = analytic_step_flops(network, config.training.batch_size)
    assert math.isclose(counted, analytic, rel_tol=0.05)
    assert all(p.grad is None for p in network.parameters())
    assert torch.get_num_threads() >= 1


def test_a_linearised_nap_step_costs_neural_pull_matmuls():
    import dataclasses

    from bench.runner import _mean_step_flops
    from bench.speed import _synthetic_method
    from recon.engine.model import SdfNetwork
    from recon.engine.presets import build_config

    config = build_config("nap", "fast", device="cpu", seed=0)
    network = SdfNetwork(config.network)
    pull_only = analytic_step_flops(network, config.training.batch_size)
    for adversarial_pass, expected in (("linearised", 1.0), ("network", 2.0)):
        nap_config = dataclasses.replace(config.method_config, adversarial_pass=adversarial_pass,
                                         adversarial_share=1.0, warmup_fraction=0.0)
        nap = dataclasses.replace(config, method_config=nap_config)
        counted = counted_step_flops(_synthetic_method("nap", nap, "cpu"), network)
        assert math.isclose(counted / pull_only, expected, rel_tol=0.05)
        assert math.isclose(_mean_step_flops(nap, network) / pull_only, expected, rel_tol=1e-9)


def test_step_speeds_time_fp32_and_the_presets_bf16(tmp_path, monkeypatch):
    from bench.speed import step_speeds

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu avx512f avx512_bf16\n")
    monkeypatch.setattr("recon.engine.device.CPU_FLAGS_FILE", cpuinfo)
    steps = step_speeds("cpu", gflops=100.0, seconds=0.2, rounds=1)
    assert steps["precision"] == "bf16"
    for name in ("neural-pull", "nap"):
        assert steps[f"{name}_it_s"] == steps[f"{name}_bf16_it_s"] > 0
        assert steps[f"{name}_fp32_it_s"] > 0
        assert math.isclose(steps[f"{name}_utilisation"], steps[f"{name}_fp32_it_s"]
                            * steps[f"{name}_gflop_per_step_counted"] / 100.0)
    assert steps["nap_cost_ratio"] == steps["neural-pull_it_s"] / steps["nap_it_s"]


def test_meshing_comparison_meshes_one_fitted_network_both_ways():
    from bench.speed import meshing_comparison

    result = meshing_comparison(DEFAULT_DATA_DIR, "cpu", resolution=64, fit_steps=3)
    assert result["sdf"].startswith("Neural-Pull 8x256 after 3 steps")
    assert result["dense_evaluations"] == 64**3 > result["coarse_to_fine_evaluations"]
    assert result["hausdorff_rel"] < 1e-6  # same sign pattern: vertices differ by rounding only
    assert result["dense_watertight"] and result["coarse_to_fine_watertight"]
    assert result["speedup"] == result["dense_s"] / result["coarse_to_fine_s"] > 0


def test_matmul_rate_is_measured():
    rate = time_matmul(64, 64, 64)
    assert rate.gflops > 0 and (rate.m, rate.k, rate.n) == (64, 64, 64)


def test_report_checks_targets_from_speed_results():
    speed = {"steps": {"neural-pull_it_s": 7.0, "nap_cost_ratio": 3.0, "precision": "bf16",
                       "neural-pull_fp32_it_s": 3.9},
             "meshing": {"speedup": 9.0, "hausdorff_rel": 0.0}, "memory": {"peak_gib": 1.0}}
    text = build_report([], None, speed, plot_name=None)
    lines = {line.split(" | ")[0].lstrip("| "): line for line in text.splitlines()}
    assert "| pass | 7.00 it/s (bf16; fp32 3.90 it/s)" in lines[
        "neural-pull step at 8x256, batch 5000 >= 6 it/s"]
    assert "| FAIL |" in lines["NAP step costs <= 2.5x the neural-pull step"]
    assert json.dumps(speed)  # the speed section is plain JSON data
    assert bench_case(DEFAULT_DATA_DIR, "dense").points_path.is_file()


def test_side_runs_never_overwrite_the_published_report(tmp_path):
    from bench.cli import DEFAULT_OUT, PUBLISHED_REPORT_DIR, parse_options

    assert parse_options(["--speed"]).report_dir == PUBLISHED_REPORT_DIR
    assert parse_options(["--speed", "--out", str(DEFAULT_OUT)]).report_dir == PUBLISHED_REPORT_DIR
    assert parse_options(["--speed", "--out", str(tmp_path)]).report_dir == tmp_path
    assert parse_options(["--quick"]).report_dir == DEFAULT_OUT
    explicit = ["--report-only", "--out", str(tmp_path), "--report-dir", "bench"]
    assert parse_options(explicit).report_dir == Path("bench")


def test_load_line_tells_a_quiet_machine_from_a_shared_one():
    from bench.report import _load_line

    assert "No other work competed" in _load_line([1.6, 2.0, 2.3], cores=2)
    assert "Other processes shared" in _load_line([2.9, 3.4, 4.0], cores=2)
    assert "may have shared" in _load_line([], cores=2)


def test_glance_table_puts_each_preset_beside_poisson():
    def row(shape, regime, method, preset, seed, cd1, budget=None):
        spec = RunSpec(regime, method, preset, seed, time_budget_s=budget, shape=shape)
        return RunRow(spec, "ok", ground_truth={"cd1_x100": cd1, "fscore_0.01": 0.9})

    rows = [row("bunny", "dense", "nap", "fast", seed, cd1)
            for seed, cd1 in enumerate((0.28, 0.30, 0.29))]
    rows += [row("bunny", "dense", "poisson", "default", 0, 0.58),
             row("bunny", "dense", "nap", "balanced", 0, 9.0, budget=60.0),  # a sweep point
             row("dragon", "sparse", "poisson-normals", "default", 0, 0.64)]
    table = glance_table(group_rows(rows))
    dense = next(line for line in table if line.startswith("| dense |"))
    cells = [cell.strip() for cell in dense.strip("|").split("|")]
    assert cells[1] == "0.290 (0.900)" and cells[4] == "0.580 (0.900)"
    assert cells[2] == "" and cells[-1] == "0.50"  # the 60 s point is not the preset's own run
    dragon = next(line for line in table if line.startswith("| dragon/sparse |"))
    assert "0.640" in dragon and dragon.rstrip().endswith("|  |")


def test_the_benchmark_command_runs_from_the_repository():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "bench", "--help"], capture_output=True,
                          text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert "--data" in done.stdout and "--shape" in done.stdout
    assert DEFAULT_DATA_DIR.is_relative_to(Path(__file__).resolve().parents[2])
