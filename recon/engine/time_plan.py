"""Fitting a whole reconstruction into a time limit: training gets what meshing does not need.

A service runs each job under a time limit for the whole run; a training budget alone lets a
slow device train up to it and then fail while meshing a 512^3 grid. The plan measures what one
network evaluation costs on this device (one timed chunk, a fraction of a second), estimates the
mesh extraction from the resolution (coarse-to-fine extraction evaluates about 20 points per
r^2 on the shapes measured, plus grid work per r^3 node), caps training so that meshing and
metrics still fit, and after training lowers the mesh resolution when the time left does not
cover the one asked for.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import torch

from recon.engine.config import TrainingConfig
from recon.engine.model import SdfNetwork

EVALUATIONS_PER_R2 = 40.0
"""Network evaluations per r^2 of a coarse-to-fine extraction; measured 21 on the bunny at
r = 128-384, doubled for shapes with more surface."""

SECONDS_PER_GRID_NODE = 1.5e-7
"""Grid work per r^3 node (volume fill, marching cubes): 0.9-1.0e-7 s measured on 2 CPU cores,
with margin."""

ESTIMATE_SAFETY = 1.5
"""The mesh estimate is multiplied by this before it is compared with the time left."""

METRICS_SHARE = 0.05
"""Share of the limit kept for metrics and the finishing steps after meshing."""

MIN_RESOLUTION = 32
RESOLUTION_STEP = 16
TIMING_POINTS = 32_768


def seconds_per_evaluation(network: SdfNetwork, device: torch.device) -> float:
    """What evaluating the field at one point costs here (one timed chunk after a warm-up)."""
    generator = torch.Generator().manual_seed(0)
    points = (torch.rand(TIMING_POINTS, 3, generator=generator) - 0.5).to(device)
    was_training = network.training
    network.eval()
    try:
        with torch.inference_mode():
            network(points[:1024])
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            network(points)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - start
    finally:
        network.train(was_training)
    return elapsed / TIMING_POINTS


@dataclass(frozen=True)
class TimePlan:
    """A whole-run limit, when it started (`time.perf_counter()`) and the device's speed."""

    limit_s: float
    started_at: float
    seconds_per_eval: float

    def remaining(self) -> float:
        return self.limit_s - (time.perf_counter() - self.started_at)

    def mesh_seconds(self, resolution: int) -> float:
        """Estimated extraction time at `resolution`, safety factor included."""
        evaluations = EVALUATIONS_PER_R2 * resolution**2 * self.seconds_per_eval
        grid = SECONDS_PER_GRID_NODE * resolution**3
        return ESTIMATE_SAFETY * (evaluations + grid)

    def after_meshing_s(self) -> float:
        return METRICS_SHARE * self.limit_s

    def training_cap(self, resolution: int) -> float:
        """Longest training that leaves room to mesh at `resolution` and finish (>= 0)."""
        return max(0.0, self.remaining() - self.mesh_seconds(resolution) - self.after_meshing_s())

    def fitting_resolution(self, wanted: int) -> int:
        """`wanted`, or the largest lower resolution whose extraction fits in the time left."""
        budget = self.remaining() - self.after_meshing_s()
        resolution = wanted
        while resolution > MIN_RESOLUTION and self.mesh_seconds(resolution) > budget:
            resolution = max(MIN_RESOLUTION, resolution - RESOLUTION_STEP)
        return resolution


MIN_TRAINING_S = 1.0
"""Training never gets less than this, whatever the plan says (the limit then decides)."""


def capped_training(config: TrainingConfig, cap_s: float) -> TrainingConfig:
    """`config` with its time budget no longer than `cap_s` (at least `MIN_TRAINING_S`)."""
    cap_s = max(cap_s, MIN_TRAINING_S)
    budget = config.time_budget_s
    capped = cap_s if budget is None else min(budget, cap_s)
    return dataclasses.replace(config, time_budget_s=capped)
