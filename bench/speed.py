"""Step-speed, meshing and memory microbenchmarks.

- Steps: Neural-Pull and NAP training steps at the paper network and batch (8x256, 5000), in fp32
  and at the preset's precision (bf16 on CPUs with bf16 instructions), timed in alternating rounds
  in one process so all see the same machine load; their ratio; counted and analytic FLOPs per
  step; fp32 FLOP utilisation against the fp32 matmul rate measured in the same run.
- Meshing: the same fitted network meshed at 256^3 densely and coarse-to-fine: speed ratio, network
  evaluations, and the Hausdorff distance between the two meshes' vertex sets over the bbox
  diagonal.
- Memory: peak RSS of a child process reconstructing a 1,000,000-point cloud with the `fast` preset.
"""

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree

from bench.data import REPO_ROOT, bench_case
from bench.flops import analytic_step_flops, counted_step_flops

STEP_PRESET = "paper"
"""Preset whose network and batch the step benchmark uses."""
STEP_SECONDS = 8.0
"""Length of each timed round per method."""
STEP_ROUNDS = 2
"""Alternating rounds per method (median taken)."""
WARMUP_STEPS = 3
"""Untimed steps before the first round."""
POOL_SIZE = 200_000
"""Synthetic queries for the step benchmark (values do not affect speed)."""
MESH_RESOLUTION = 256
"""Fine grid of the meshing comparison."""
MESH_FIT_STEPS = 1000
"""Neural-Pull steps before meshing: about what `fast` trains on a 1,000-point cloud, so the
surface is what a finished job meshes. A step count, not seconds, so every machine meshes the same
kind of field (an undertrained one has a rougher field that needs more evaluations)."""
MEMORY_POINTS = 1_000_000
MEMORY_ITERATIONS = 50
MEMORY_TIMEOUT_S = 1800.0
"""The child is killed (and the result recorded as an error) after this long."""
GIB = 2**30


def _synthetic_method(name: str, config, device: str):
    """A method on a synthetic query pool (step cost does not depend on the values)."""
    from recon.engine.methods import TrainingData
    from recon.engine.sampling import QueryPool

    rng = np.random.default_rng(config.seed)
    queries = (0.3 * rng.standard_normal((POOL_SIZE, 3))).astype(np.float32)
    pool = QueryPool(queries=queries, targets=0.9 * queries,
                     target_sigma=np.full(POOL_SIZE, 0.01, np.float32), spread=0.25)
    data = TrainingData(points=queries[:1000].astype(np.float64), normals=None, pool=pool)
    return _method_for_data(name, config, data, device)


def _step_config(name: str, precision: str, device: str):
    from recon.engine.presets import build_config

    config = build_config(name, STEP_PRESET, device=device, seed=0)
    # Every timed step at one precision: no fp32 polishing tail inside a round.
    config = dataclasses.replace(config, training=dataclasses.replace(
        config.training, matmul_precision=precision, full_precision_tail=0.0))
    if name == "nap":
        # Time the adversarial step itself, never a Neural-Pull warm-up step.
        config = dataclasses.replace(
            config, method_config=dataclasses.replace(config.method_config, warmup_fraction=0.0)
        )
    return config


def _timed_round(network, method, config, seconds: float) -> float:
    from recon.engine.training import train

    training = dataclasses.replace(config.training, max_iterations=10**7,
                                   time_budget_s=seconds, plateau_window=0)
    return train(network, method, training).iterations_per_second


def step_speeds(device: str, gflops: float, seconds: float = STEP_SECONDS,
                rounds: int = STEP_ROUNDS) -> dict:
    """it/s of Neural-Pull and NAP at the paper network and batch, their ratio and utilisation.

    Timed in fp32 and, where the preset trains in bf16 on this machine, in bf16 too; the
    utilisation is the fp32 step against the fp32 matmul rate, so it never counts bf16's speed.
    """
    from recon.engine.model import SdfNetwork
    from recon.engine.presets import build_config
    from recon.engine.training import train

    preset_precision = build_config("neural-pull", STEP_PRESET,
                                    device=device).training.matmul_precision
    variants = [(name, precision) for precision in dict.fromkeys(("fp32", preset_precision))
                for name in ("neural-pull", "nap")]
    configs = {variant: _step_config(*variant, device) for variant in variants}
    threads = torch.get_num_threads()
    torch.set_num_threads(configs[variants[0]].training.num_threads or threads)
    try:
        parts: dict[tuple[str, str], tuple[Any, Any, list[float]]] = {}
        for variant in variants:
            network = SdfNetwork(configs[variant].network).to(device)
            method = _synthetic_method(variant[0], configs[variant], device)
            warm = dataclasses.replace(configs[variant].training, max_iterations=WARMUP_STEPS,
                                       time_budget_s=None, plateau_window=0)
            train(network, method, warm)
            parts[variant] = (network, method, [])
        for _ in range(rounds):
            for variant in variants:
                network, method, speeds = parts[variant]
                speeds.append(_timed_round(network, method, configs[variant], seconds))
        return _step_summary(parts, configs, gflops, preset_precision)
    finally:
        torch.set_num_threads(threads)


def _step_summary(parts: dict, configs: dict, gflops: float, preset_precision: str) -> dict:
    """`{method}_it_s` at the preset's precision (what a job runs), `_fp32` keys for fp32."""
    batch = next(iter(configs.values())).training.batch_size
    out: dict = {"network": "8x256", "batch": batch, "threads": torch.get_num_threads(),
                 "precision": preset_precision}
    for (name, precision), (network, method, speeds) in parts.items():
        second_pass = getattr(method, "second_pass_count", 0)
        analytic = analytic_step_flops(network, batch, second_pass)
        counted = counted_step_flops(method, network)
        rate = float(np.median(speeds))
        key = f"{name}_{precision}"
        out[f"{key}_it_s"] = rate
        out[f"{key}_rounds_it_s"] = [round(s, 3) for s in speeds]
        out[f"{name}_gflop_per_step_analytic"] = analytic / 1e9
        out[f"{name}_gflop_per_step_counted"] = counted / 1e9
        if precision == "fp32":
            out[f"{name}_utilisation"] = counted * rate / (gflops * 1e9)
        if precision == preset_precision:
            out[f"{name}_it_s"] = rate
    out["nap_cost_ratio"] = out["neural-pull_it_s"] / out["nap_it_s"]
    out["nap_cost_ratio_fp32"] = out["neural-pull_fp32_it_s"] / out["nap_fp32_it_s"]
    return out


def _fitted_network(data_dir: Path, device: str, steps: int):
    """A paper-size network trained `steps` steps on bunny/sparse_noisy, with the learning rate
    schedule run over those steps (geometric init without the data)."""
    from recon.engine.model import SdfNetwork
    from recon.engine.pipeline import prepare
    from recon.engine.presets import build_config
    from recon.engine.training import train

    config = build_config("neural-pull", STEP_PRESET, device=device, seed=0)
    init = torch.Generator().manual_seed(config.seed)
    network = SdfNetwork(config.network, generator=init).to(device)
    try:
        cloud = bench_case(data_dir, "sparse_noisy").load_points()
    except FileNotFoundError:
        return network, config, "geometric init (sphere)"
    prepared = prepare(cloud, config, needs_queries=True)
    method = _method_for_data("neural-pull", config, prepared.data, device)
    training = dataclasses.replace(config.training, max_iterations=steps, time_budget_s=None,
                                   plateau_window=0)
    outcome = train(network, method, training)
    return network, config, f"Neural-Pull 8x256 after {outcome.iterations} steps on sparse_noisy"


def _method_for_data(name: str, config, data, device: str):
    from recon.engine.methods import get_method

    generator = torch.Generator(device=device).manual_seed(config.seed)
    return get_method(name)(config, data, torch.device(device), generator)


def meshing_comparison(data_dir: Path, device: str, resolution: int = MESH_RESOLUTION,
                       fit_steps: int = MESH_FIT_STEPS) -> dict:
    """Dense vs coarse-to-fine extraction of one fitted network at `resolution`^3."""
    from recon.engine.meshing import extract_mesh

    network, config, what = _fitted_network(data_dir, device, fit_steps)
    timings, meshes = {}, {}
    for mode, c2f in (("coarse_to_fine", True), ("dense", False)):
        start = time.perf_counter()
        extracted = extract_mesh(network, config.meshing, device=torch.device(device),
                                 resolution=resolution, coarse_to_fine=c2f)
        timings[mode] = time.perf_counter() - start
        meshes[mode] = extracted
    a, b = meshes["dense"].mesh.vertices, meshes["coarse_to_fine"].mesh.vertices
    hausdorff = max(cKDTree(b).query(a)[0].max(), cKDTree(a).query(b)[0].max())
    diagonal = float(np.linalg.norm(np.ptp(a, axis=0)))
    return {
        "sdf": what, "resolution": resolution,
        "dense_s": timings["dense"], "coarse_to_fine_s": timings["coarse_to_fine"],
        "speedup": timings["dense"] / timings["coarse_to_fine"],
        "dense_evaluations": meshes["dense"].evaluated_points,
        "coarse_to_fine_evaluations": meshes["coarse_to_fine"].evaluated_points,
        "hausdorff_rel": float(hausdorff) / diagonal,
        "dense_watertight": meshes["dense"].watertight,
        "coarse_to_fine_watertight": meshes["coarse_to_fine"].watertight,
    }


def peak_memory(points: int = MEMORY_POINTS, max_iterations: int = MEMORY_ITERATIONS) -> dict:
    """Peak RSS of a child process reconstructing `points` points with the fast preset."""
    command = [sys.executable, "-m", "bench.memprobe", "--points", str(points),
               "--max-iterations", str(max_iterations)]
    try:
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True,
                              check=False, timeout=MEMORY_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"memory probe took longer than {MEMORY_TIMEOUT_S:g} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["peak_gib"] = result["peak_rss_bytes"] / GIB
    return result


SPEED_PARTS = ("steps", "meshing", "memory")
"""Names of the microbenchmarks, in the order they run."""


def run_speed_suite(data_dir: Path, device: str, hardware: dict, log,
                    parts: tuple[str, ...] = SPEED_PARTS, previous: dict | None = None) -> dict:
    """The chosen microbenchmarks, merged over `previous` results; failures are recorded."""
    suite = {"steps": lambda: step_speeds(device, hardware["matmul_gflops_best"]),
             "meshing": lambda: meshing_comparison(data_dir, device),
             "memory": peak_memory}
    out: dict = dict(previous or {})
    out["hardware"] = hardware
    for name in parts:
        log(f"speed: {name} ...")
        start = time.perf_counter()
        try:
            out[name] = suite[name]()
        except Exception as error:  # noqa: BLE001 - report the failure, keep the others
            out[name] = {"error": f"{type(error).__name__}: {error}"}
        out[name]["bench_seconds"] = time.perf_counter() - start
        out[name]["measured_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        log(f"    {json.dumps(out[name], default=str)[:400]}")
    return out
