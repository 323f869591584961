"""The benchmark matrix: plan the runs, execute each one, append its row to the results file.

Neural methods run through the engine's public API (`build_config`, `reconstruct`); Poisson rows
run `bench.poisson`. Every row's ground-truth numbers come from the one metrics implementation,
`recon.engine.metrics.ground_truth_metrics`, computed after the run's clock has stopped.
"""

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench.data import DEFAULT_SHAPE, bench_case
from bench.flops import analytic_step_flops
from bench.poisson import POISSON_METHODS, POISSON_PRESET, poisson_available, reconstruct_poisson
from bench.results import RunRow, RunSpec, append_row, completed_keys, read_rows

NEURAL_METHODS = ("nap", "neural-pull", "igr")
"""Engine methods benchmarked through `reconstruct`."""
ALL_METHODS = (*NEURAL_METHODS, *POISSON_METHODS)
"""Every method name the benchmark knows."""
PRESETS = ("fast", "balanced", "paper")
"""Engine presets benchmarked (``auto`` is one of these, picked by device)."""
PAPER_CPU_BUDGET_S = 600.0
"""Training-time cap for the paper preset on CPU when --time-budget is not given (40k steps of the
paper setting take hours on two cores)."""
MAX_CURVE_POINTS = 200
"""Loss-curve points kept per row (the progress callback fires about every 0.5 s)."""

Log = Callable[[str], None]


@dataclass(frozen=True)
class MatrixPlan:
    """What to run: the cross product of regimes x methods x presets x seeds, plus budget sweeps."""

    regimes: tuple[str, ...]
    methods: tuple[str, ...]
    presets: tuple[str, ...]
    seeds: tuple[int, ...]
    device: str = "cpu"
    time_budget_s: float | None = None
    """Training-time cap for every neural run (None: the presets' own, paper capped on CPU)."""
    max_iterations: int | None = None
    resolution: int | None = None
    curve_budgets: tuple[float, ...] = ()
    """Time budgets of the CD1-vs-time sweep (empty: no sweep)."""
    curve_regimes: tuple[str, ...] = ("sparse_noisy",)
    curve_preset: str = "balanced"
    """Preset whose network and batch the sweep uses for every neural method."""
    shape: str = DEFAULT_SHAPE
    """The shape folder under the data folder every run reads."""
    extra: dict = field(default_factory=dict)


def _budget(plan: MatrixPlan, preset: str) -> float | None:
    if plan.time_budget_s is not None:
        return plan.time_budget_s
    if preset == "paper" and plan.device == "cpu":
        return PAPER_CPU_BUDGET_S
    return None


def plan_specs(plan: MatrixPlan) -> list[RunSpec]:
    """Every run of the plan, cheapest kinds first (Poisson, then fast, balanced, paper)."""
    specs: list[RunSpec] = []
    neural = [m for m in plan.methods if m in NEURAL_METHODS]
    for regime in plan.regimes:
        for method in (m for m in plan.methods if m in POISSON_METHODS):
            specs += [RunSpec(regime, method, POISSON_PRESET, seed, shape=plan.shape)
                      for seed in plan.seeds]
    for preset in plan.presets:
        for regime in plan.regimes:
            for method in neural:
                specs += [
                    RunSpec(regime, method, preset, seed, _budget(plan, preset),
                            plan.max_iterations, plan.resolution, plan.shape)
                    for seed in plan.seeds
                ]
    for budget in sorted(plan.curve_budgets):
        for regime in plan.curve_regimes:
            for method in neural:
                specs += [
                    RunSpec(regime, method, plan.curve_preset, seed, budget, None, plan.resolution,
                            plan.shape)
                    for seed in plan.seeds
                ]
    unique = {spec.key(): spec for spec in specs}
    return list(unique.values())


class LossCurve:
    """Collects (elapsed_s, loss) from the engine's progress callback during training."""

    def __init__(self) -> None:
        self.points: list[list[float]] = []

    def __call__(self, progress) -> None:
        if progress.stage == "train" and progress.loss is not None:
            self.points.append([round(progress.elapsed_s, 3), float(progress.loss)])

    def thinned(self, limit: int = MAX_CURVE_POINTS) -> list[list[float]]:
        """At most `limit` points, evenly spaced, always keeping the last one."""
        if len(self.points) <= limit:
            return self.points
        stride = -(-len(self.points) // limit)
        return self.points[::stride] + [self.points[-1]]


def run_neural(spec: RunSpec, data_dir: Path, device: str) -> RunRow:
    """One engine reconstruction of `spec`, timed without the ground-truth evaluation."""
    from recon.engine.metrics import ground_truth_metrics
    from recon.engine.model import SdfNetwork
    from recon.engine.pipeline import reconstruct
    from recon.engine.presets import build_config

    case = bench_case(data_dir, spec.regime, spec.shape)
    cloud, gt = case.load_points(), case.load_ground_truth()
    config = build_config(
        spec.method, spec.preset, device=device, seed=spec.seed, resolution=spec.resolution,
        max_iterations=spec.max_iterations, time_budget_s=spec.time_budget_s,
    )
    curve = LossCurve()
    start = time.perf_counter()
    result = reconstruct(cloud, config, on_progress=curve)
    wall = time.perf_counter() - start
    facts = result.metrics["run"]
    facts["flops_per_step_analytic"] = _mean_step_flops(config, SdfNetwork(config.network))
    facts["network"] = f"{config.network.hidden_layers}x{config.network.hidden_width}"
    facts["batch_size"] = config.training.batch_size
    facts["matmul_precision"] = config.training.matmul_precision
    facts["warnings"] = result.warnings
    return RunRow(
        spec=spec, status="ok", wall_s=wall, iterations=facts["iterations"],
        iterations_per_second=facts["iterations_per_second"], stop_reason=facts["stop_reason"],
        ground_truth=ground_truth_metrics(result.mesh, gt, seed=spec.seed),
        mesh=result.metrics["mesh"], run=facts, loss_curve=curve.thinned(),
    )


def _mean_step_flops(config, network) -> float | None:
    """Analytic FLOPs per step averaged over NAP's Neural-Pull warm-up (None for IGR)."""
    from recon.engine.methods.nap import second_pass_query_count

    batch = config.training.batch_size
    if config.method == "neural-pull":
        return analytic_step_flops(network, batch)
    if config.method != "nap":
        return None
    nap_config = config.method_config
    second_pass = second_pass_query_count(nap_config, batch)
    warm = nap_config.warmup_fraction
    return (warm * analytic_step_flops(network, batch)
            + (1 - warm) * analytic_step_flops(network, batch, second_pass))


def run_poisson(spec: RunSpec, data_dir: Path) -> RunRow:
    """One screened Poisson reconstruction (estimated or given normals)."""
    from recon.engine.metrics import ground_truth_metrics, mesh_facts

    case = bench_case(data_dir, spec.regime, spec.shape)
    given = spec.method == "poisson-normals"
    cloud, gt = case.load_points(with_normals=given), case.load_ground_truth()
    start = time.perf_counter()
    mesh = reconstruct_poisson(cloud, use_given_normals=given)
    wall = time.perf_counter() - start
    return RunRow(
        spec=spec, status="ok", wall_s=wall, stop_reason="solved",
        ground_truth=ground_truth_metrics(mesh, gt, seed=spec.seed), mesh=mesh_facts(mesh),
        run={"method": spec.method, "seconds_total": wall, "points": len(cloud.points),
             "threads": torch.get_num_threads()},
    )


def run_one(spec: RunSpec, data_dir: Path, device: str) -> RunRow:
    """Run one spec; any failure becomes an "error" row instead of stopping the benchmark."""
    try:
        if spec.method in POISSON_METHODS:
            row = run_poisson(spec, data_dir)
        else:
            row = run_neural(spec, data_dir, device)
    except Exception as error:  # noqa: BLE001 - one broken run must not lose the others
        row = RunRow(spec=spec, status="error", error=f"{type(error).__name__}: {error}")
    row.load_average = [round(x, 2) for x in os.getloadavg()]
    return row


def run_matrix(plan: MatrixPlan, data_dir: Path, results_path: Path, log: Log,
               *, resume: bool = True, machine_gflops: float | None = None) -> list[RunRow]:
    """Run every planned spec not already in the results file; append each row when it ends.

    `machine_gflops`, the matmul rate measured in this invocation, is stored in each row so its
    FLOP utilisation uses the rate measured under the same load.
    """
    specs = plan_specs(plan)
    done = completed_keys(read_rows(results_path)) if resume else set()
    todo = [spec for spec in specs if spec.key() not in done]
    skipped = _drop_unavailable_poisson(todo, log)
    log(f"{len(specs)} runs planned, {len(specs) - len(todo)} already done, "
        f"{len(skipped)} skipped, {len(todo) - len(skipped)} to run")
    rows = []
    for index, spec in enumerate(s for s in todo if s not in skipped):
        log(f"[{index + 1}] {spec.label()} ...")
        row = run_one(spec, data_dir, plan.device)
        if row.status == "ok":
            row.run["machine_gflops"] = machine_gflops
        append_row(results_path, row)
        rows.append(row)
        log(f"    {_summary(row)}")
    return rows


def _drop_unavailable_poisson(specs: Iterable[RunSpec], log: Log) -> list[RunSpec]:
    poisson = [spec for spec in specs if spec.method in POISSON_METHODS]
    ok, reason = poisson_available()
    if poisson and not ok:
        log(f"skipping {len(poisson)} Poisson runs: {reason}")
        return poisson
    return []


def _summary(row: RunRow) -> str:
    if row.status != "ok":
        return f"ERROR {row.error}"
    gt = row.ground_truth
    speed = f", {row.iterations_per_second:.1f} it/s" if row.iterations_per_second else ""
    return (f"CD1x100 {gt['cd1_x100']:.3f}  NC {gt['nc']:.3f}  F@0.01 {gt['fscore_0.01']:.3f}  "
            f"watertight {row.mesh.get('watertight')}  {row.wall_s:.1f}s{speed} "
            f"({row.stop_reason})")
