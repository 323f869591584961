"""Named presets: `fast`, `balanced`, `paper`, and `auto` (paper on CUDA, balanced on CPU).

`build_config` is the one place that turns (method, preset, device, seed, overrides) into a
`ReconstructionConfig`. The CPU presets come from A/B runs on 2 cores (bunny sparse_noisy,
checked on sparse and dense, 1-3 seeds each; bench/RESULTS.md has the numbers):
- a tenth of the queries drawn uniformly in the box removed the seed-to-seed spread (CD1 x100
  0.54-0.88 became 0.53-0.54 for `fast`) by pinning the field where spurious sheets grew;
- on noisy sparse scans a 4x128 network first beat 6x128 at equal time (the larger one fit the
  noise; `fast` has 6x128 since steps got cheaper, see the last point), a larger batch helped
  `balanced` (0.518 at 5000 vs 0.53 at 2000), longer runs did not;
- a wider query spread, a larger adversarial radius and a full adversarial batch were all worse;
  so was starting the adversarial term half-way instead of at a tenth (seed 0: better at 15 s,
  0.574 vs 0.632, but worse at 60 s, 0.540 vs 0.523, and at the 2,500-step cap, 0.531 vs 0.526);
- a larger cloud needs more steps: `fast` on 20,000 noisy points reached CD1 x100 0.37 in 35 s and
  0.31 in 90 s, so budgets (and step caps) grow with the cube root of the point count, up to 3x;
- on noisy sparse scans more steps end up fitting the noise: `balanced` (ReLU then) on 1,000
  points reached CD1 x100 0.523 after 60 s (about 2,100 NAP steps) and 0.541 after 120 s (4,700
  steps) on an AMX machine, 0.525 after 2,500 steps on a slower one; hence a 2,500-step cap, so a
  faster machine finishes sooner instead of fitting noise (NAP slows this, Neural-Pull went to
  0.551);
- a softplus network (beta 100, as IGR's) instead of ReLU made `balanced` fit less of the noise (at
  3e-3): sparse_noisy, 2,500 steps, seeds 0-2, CD1 x100 0.497 / 0.503 / 0.491 against 0.523 on each,
  NC 0.965-0.967 against 0.957-0.959; clean sparse, seed 0: 0.432 against 0.434. Beta 50 was worse
  (0.538 at 2,000 steps), 25 much worse (0.627); 140 and 200 were within seed noise of 100; 3,500
  steps were no better than 2,500 (seed 0: 0.502 against 0.497). Its steps cost about 1.2x, and a
  slow fp32 machine (AMD EPYC, 2 cores, 118-157 GFLOP/s) does 9-13 of them a second, so 2,500 steps
  take about 260 s there: hence the 260 s budget, which still ends within 5 minutes (2,500 steps,
  274 s end to end with the ground-truth metrics) where 200 s stopped at 1,824 steps and 0.512. It
  starts slower than ReLU, though: on a machine doing about 600 steps in 30 s, NAP reached 0.823
  against ReLU's 0.603, so a short explicit budget on a slow machine is worse off
  (bench/reports/balanced-softplus). NAP keeps the closed-form adversarial direction, which on a
  softplus network drops the curvature term f * H (first order in f): the exact double backward gave
  the same quality (seeds 0 and 2: 0.500 and 0.490) at 1.5x the time;
- a peak learning rate of 4e-3 instead of 3e-3 helped the softplus `balanced` (AMD EPYC, one
  thread per run, 2,500 steps, sparse_noisy seed 0: 2e-3 0.514, 3e-3 0.500, 4e-3 0.489, 5e-3
  0.493, 6e-3 0.496; 4e-3 on seeds 1 and 2: 0.491 and 0.486; clean sparse seed 0: 0.424 against
  0.431; dense, 6,786 steps, seed 0: 0.287 against 0.290). The bench's two threads gave seeds
  0-2 0.491 / 0.497 / 0.488 (3e-3: 0.497 / 0.503 / 0.491): the thread count changes the rounding,
  and with it a run's result by up to 0.006. A narrower query spread (0.18) was no different
  (0.499), a wider one (0.35) worse (0.511), and so was a 4x96 network (0.507); at 4e-3 an
  adversarial radius of 0.03 sigma was worse (seeds 0 and 1: 0.494 and 0.507 against 0.489 and
  0.491), and Adam's beta2 at 0.99 was within seed noise (0.490 and 0.487);
- drawing a query's target from its k nearest input points instead of the nearest one (a
  noise-to-noise idea) made `balanced` much worse on sparse_noisy (AMD EPYC Zen 4, bf16, one thread,
  seed 0: k 2, 3, 5 gave 0.558, 0.634, 0.828, the mean of 3 neighbours 0.755, against 0.488): at
  1,000 points the spacing (about 0.04) is eight times the noise (0.005), so averaging neighbours
  blurs the surface more than it removes noise;
- half the adversarial share (0.25 of the batch) was within seed noise (seeds 0 and 1: 0.484 and
  0.494 against 0.488 and 0.491) and its steps cost 1.2x Neural-Pull's instead of 1.3-1.5x, but
  at a 60 s budget it did no better (0.520 against 0.517);
- a linearised adversary (the clean pass moved by delta instead of a second pass, see
  worker.engine.methods.nap) on the whole batch instead of a second pass on half of it kept
  `balanced`'s quality (AMD EPYC fp32, one thread, 2,500 steps, seeds 0 and 1: 0.488 and 0.493
  against 0.489 and 0.491) at 1.05x a Neural-Pull step instead of 1.6x. At a 60 s budget
  (two threads, seeds 0-2) NAP went from 0.547 (seed 0) to 0.522 / 0.528 / 0.530, which beats
  Neural-Pull's 0.517 / 0.546 / 0.552, and `fast` on sparse_noisy went from 0.536 / 0.525 / 0.543
  to 0.515 / 0.528 / 0.526 (1,750-2,010 steps in 35 s instead of about 1,450). Past the step cap
  it fits the noise as Neural-Pull does: 240 s without the cap (about 5,300 steps) gave 0.533
  against Neural-Pull's 0.520 (bench/reports/linearised-adversary), and so does the second pass
  (5,000 steps, seed 0: 0.522 against the linearised 0.523);
- steps past the cap gain nothing on a clean scan either (sparse, NAP, seed 0, one thread: 0.417 at
  2,500 steps and at 5,300), and a larger adversarial radius makes the long run worse, not better
  (sparse_noisy, 5,300 steps, seed 1: 0.01 sigma 0.531, 0.03 sigma 0.537, 0.1 sigma 0.547;
  Neural-Pull 0.526). So a time budget asked for is a ceiling and the step cap still applies: a
  user who allows `balanced` 240 s gets the 2,500-step mesh, not a worse one;
- weight decay (AdamW 0.05, 0.3) made `balanced` worse (0.530, 0.564 against 0.515 at 2,000 steps);
- averaging the weights of one 2,500-step `balanced` run did not help (seed 0: EMA 0.99 and 0.995,
  the mean over the last 10% or 20% of steps, 0.496-0.497 against 0.497; EMA 0.998 0.523);
- bf16 matmuls with an fp32 tail did not change CD1; where the CPU has bf16 matrix instructions
  (AMX, or AVX-512 BF16 as on AMD Zen 4) they run 2-3x the fp32 rate, so every CPU preset,
  `paper` included, uses them there. On a Zen 4 a tail of a tenth instead of a quarter kept
  `balanced`'s quality (seeds 0 and 1: 0.488 and 0.490 against 0.488 and 0.491) with runs 5-14%
  shorter end to end; not adopted yet, as the three-seed bench rows were not re-measured with it.
- three cuts to a step's cost (a hand-written backward for ReLU networks with two thirds of the
  matmuls, worker.engine.relu_pass; a retained heap, worker.engine.heap; fused Adam) made `fast`'s
  steps about 1.4x faster and `balanced`'s about 1.1x on an AMD EPYC Zen 3: `fast` CD1 x100 sparse
  0.423, sparse_noisy 0.523, dense 0.286 (were 0.428 / 0.526 / 0.289), `balanced` 0.488 in 126 s
  instead of 159 (bench/reports/step-cost).
- a held-out shape, the Stanford dragon (bench.make_data), kept every relative result but one:
  `fast` (4x128 then) on its dense cloud was 22% worse than Poisson (0.332 against 0.271) where on
  the bunny it was 2% worse. Neither the mesh resolution (256^3: 0.321 against 0.327 at 128^3)
  nor the plateau stop (0.316 without) explained it; network depth did (seed 0: 4x256 0.353,
  6x128 0.303-0.305, 8x128 0.304, batch 1000 or 5000 and a 6e-3 learning rate worse). With
  6x128 `fast` (three seeds, AMD EPYC Zen 3) went from 0.423 / 0.523 / 0.286 to 0.420 / 0.517 /
  0.282 on the bunny and from 0.643 / 0.711 / 0.332 to 0.614 / 0.687 / 0.312 on the dragon,
  still 15% behind Poisson on its dense cloud (bench/reports/heldout-dragon).
- on a first-generation AMD EPYC (2.0 GHz, 61-68 GFLOP/s on 2 cores, 2.5x slower matmuls than
  Zen 3) the budgets bind before the step caps: `fast` trains 740-823 steps in 35 s (sparse 0.467,
  sparse_noisy 0.534, dense 0.302) and `balanced` 1,661-1,856 of its 2,500 in 260 s (0.491);
  the relative results hold (bench/reports/zen1-slow-host).
`paper` is the published Neural-Pull/NAP setting, sampler included (fp32 on CUDA, as published).
"""

import dataclasses
import os
from pathlib import Path

import torch

from worker.engine.config import (
    IgrConfig,
    MeshingConfig,
    NapConfig,
    NetworkConfig,
    NeuralPullConfig,
    PreparationConfig,
    ReconstructionConfig,
    TrainingConfig,
)
from worker.engine.methods import get_method

PRESETS = ("fast", "balanced", "paper", "auto")
DEVICES = ("auto", "cpu", "cuda")
CPU_FLAGS_FILE = Path("/proc/cpuinfo")
"""Where Linux lists CPU features (used to detect bf16 matrix instructions)."""
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
"""CPU features with which bf16 matmuls run well above the fp32 rate (AMX tiles, AVX-512 BF16
dot products); plain AVX-512 CPUs emulate bf16 and are slower than fp32."""

_NETWORKS = {
    "fast": NetworkConfig(hidden_layers=6, hidden_width=128, skip_layers=(3,)),
    "balanced": NetworkConfig(hidden_layers=4, hidden_width=128, skip_layers=(2,)),
    "paper": NetworkConfig(),
}
_SMOOTH_PRESETS = ("balanced",)
"""Presets whose network is softplus (beta 100, IGR's) for every method, not the method's own
activation: a smooth field fits less of the scan noise (see the module docstring)."""
_TRAINING = {
    "fast": TrainingConfig(
        max_iterations=3000, batch_size=2000, learning_rate=3e-3, warmup_iterations=100,
        time_budget_s=35.0, budget_growth_cap=3.0, plateau_window=250,
        plateau_min_iterations=1500,
    ),
    "balanced": TrainingConfig(
        max_iterations=2500, batch_size=5000, learning_rate=4e-3, warmup_iterations=200,
        time_budget_s=260.0, budget_growth_cap=3.0, plateau_window=500,
        plateau_min_iterations=4000,
    ),
    "paper": TrainingConfig(max_iterations=40_000, batch_size=5000, warmup_iterations=1000),
}
_MESHING = {
    "fast": MeshingConfig(resolution=128),
    "balanced": MeshingConfig(resolution=256),
    "paper": MeshingConfig(resolution=256),
}
_PREPARATION = {
    "fast": PreparationConfig(),
    "balanced": PreparationConfig(),
    "paper": PreparationConfig(far_query_share=0.0),
}
_NAP = {
    "fast": NapConfig(adversarial_pass="linearised", warmup_fraction=0.1),
    "balanced": NapConfig(adversarial_pass="linearised", warmup_fraction=0.1),
    "paper": NapConfig(),
}


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when available else "cpu"; raises ValueError on unknown or missing."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; valid devices: {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available")
    return device


def fast_bf16(device: str) -> bool:
    """True when bf16 matmuls are much faster than fp32 here (bf16 CPU instructions, tensor cores).

    A feature check, not a timing, so the choice (and with it the mesh for a seed) never flips
    between runs on the same machine.
    """
    if device == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = set(CPU_FLAGS_FILE.read_text().split())
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def _uses_bf16(preset: str, device: str) -> bool:
    """bf16 where it is fast, except `paper` on CUDA, which keeps the published fp32 setting."""
    return fast_bf16(device) and not (preset == "paper" and device == "cuda")


def _cpu_count() -> int:
    """CPUs this process may run on (the affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _method_config(method: str, preset: str):
    if method == "nap":
        return _NAP[preset]
    if method == "neural-pull":
        return NeuralPullConfig()
    return IgrConfig()


def build_config(
    method: str = "nap",
    preset: str = "auto",
    *,
    device: str = "auto",
    seed: int = 0,
    resolution: int | None = None,
    max_iterations: int | None = None,
    time_budget_s: float | None = None,
) -> ReconstructionConfig:
    """The engine config for a method and preset.

    Raises
    ------
    ValueError
        On an unknown method, preset or device (the message lists the valid names).
    """
    method_class = get_method(method)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    device = resolve_device(device)
    concrete = preset if preset != "auto" else ("paper" if device == "cuda" else "balanced")
    activation = "softplus" if concrete in _SMOOTH_PRESETS else method_class.activation
    network = dataclasses.replace(_NETWORKS[concrete], activation=activation)
    training = dataclasses.replace(
        _TRAINING[concrete],
        matmul_precision="bf16" if _uses_bf16(concrete, device) else "fp32",
        num_threads=_cpu_count() if device == "cpu" else None,
    )
    # A step count or budget asked for is kept exactly, whatever the cloud size. A budget is a
    # ceiling, not a target: the preset's step cap (grown with the cloud) still ends training,
    # since steps past it fit a noisy scan's noise and gain nothing on a clean one (see the module
    # docstring); an explicit step count lifts it.
    if time_budget_s is not None:
        training = dataclasses.replace(
            training, time_budget_s=time_budget_s, max_time_budget_s=time_budget_s)
    if max_iterations is not None:
        training = dataclasses.replace(training, max_iterations=max_iterations,
                                       budget_growth_cap=1.0)
    meshing = _MESHING[concrete]
    if resolution is not None:
        meshing = dataclasses.replace(meshing, resolution=resolution)
    return ReconstructionConfig(
        method=method, method_config=_method_config(method, concrete), preset=concrete,
        device=device, seed=seed, preparation=_PREPARATION[concrete], network=network,
        training=training, meshing=meshing,
    )
