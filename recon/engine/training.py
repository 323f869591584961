"""The optimisation loop: Adam, warm-up then cosine decay, progress, cancellation, early stop.

Progress through training is the larger of steps done / max_iterations and seconds spent / time
budget, so the learning-rate schedule, a method's warm-up and the bf16-to-fp32 switch follow the
time budget when there is one. Losses are read from the device only when reported or checked.
"""

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from recon.engine.config import TrainingConfig
from recon.engine.errors import Diverged, ReconstructionCanceled
from recon.engine.heap import retained_heap
from recon.engine.methods.base import Method
from recon.engine.model import SdfNetwork


@dataclass(frozen=True)
class StepReport:
    """What `on_step` receives: step (1-based), planned total, last loss, seconds so far, and the
    share of training done (steps or time budget, whichever is further along)."""

    step: int
    total: int
    loss: float
    elapsed_s: float
    fraction: float


@dataclass(frozen=True)
class TrainingOutcome:
    """How training ended."""

    iterations: int
    """Optimiser steps taken."""
    stop_reason: str
    """"max_iterations", "plateau" or "time_budget"."""
    final_losses: dict[str, float]
    """Mean of each loss term over the last reported steps."""
    seconds: float
    """Wall time of the loop."""
    time_budget_s: float | None = None
    """The time budget the loop ran under (None: steps only)."""

    @property
    def iterations_per_second(self) -> float:
        return self.iterations / self.seconds if self.seconds > 0 else 0.0


FUSED_ADAM_DEVICES = ("cpu", "cuda")
"""Devices with torch's fused Adam kernel."""
WARMUP_MAX_PROGRESS = 0.1
"""Warm-up never takes more than this fraction of the run, counted in steps or in time."""


def learning_rate(config: TrainingConfig, step: int, progress: float) -> float:
    """Linear warm-up over the first steps, then cosine decay by progress.

    The warm-up ends after `warmup_iterations` steps or a tenth of the run, whichever comes first:
    a short time budget on a slow machine would otherwise spend it all warming up (balanced,
    15 s at about 13 steps/s: 200 warm-up steps are the whole run).
    """
    warmup = min(config.warmup_iterations, max(1, config.max_iterations // 10))
    if step < warmup and progress < WARMUP_MAX_PROGRESS:
        return config.learning_rate * max((step + 1) / warmup, progress / WARMUP_MAX_PROGRESS)
    floor = config.learning_rate * config.min_learning_rate_factor
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    return floor + (config.learning_rate - floor) * cosine


class _Plateau:
    """Compares the mean loss of consecutive windows of steps."""

    def __init__(self, config: TrainingConfig, device: torch.device) -> None:
        self.config = config
        self.window_sum = torch.zeros((), device=device)
        self.previous: float | None = None

    def update(self, step: int, progress: float, loss: torch.Tensor) -> bool:
        """Add a step's loss; True when the loss has stopped improving late enough in the
        schedule (see TrainingConfig.plateau_min_progress)."""
        window = self.config.plateau_window
        if window <= 0:
            return False
        self.window_sum += loss.detach()
        if step % window:
            return False
        mean = float(self.window_sum) / window
        self.window_sum.zero_()
        if not math.isfinite(mean):
            raise Diverged(f"training diverged: non-finite loss near step {step}")
        previous, self.previous = self.previous, mean
        if (previous is None or step < self.config.plateau_min_iterations
                or progress < self.config.plateau_min_progress):
            return False
        return (previous - mean) < self.config.plateau_rel_tol * abs(previous)


def _autocast(device: torch.device, precision: str) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def train(
    network: SdfNetwork,
    method: Method,
    config: TrainingConfig,
    *,
    on_step: Callable[[StepReport], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> TrainingOutcome:
    """Fit `network` with `method`'s loss.

    Raises
    ------
    ReconstructionCanceled
        When `should_cancel` returns true (checked every `cancel_check_every` steps).
    Diverged
        On a non-finite loss.
    """
    with retained_heap():
        return _fit(network, method, config, on_step, should_cancel)


def _fit(
    network: SdfNetwork,
    method: Method,
    config: TrainingConfig,
    on_step: Callable[[StepReport], None] | None,
    should_cancel: Callable[[], bool] | None,
) -> TrainingOutcome:
    """The loop of `train`, which runs it with the heap retained (recon.engine.heap)."""
    loop = _Loop(network, method, config)
    step, stop_reason, recent = 0, "max_iterations", {}
    while step < config.max_iterations:
        elapsed = loop.elapsed()
        if config.time_budget_s is not None and elapsed >= config.time_budget_s:
            stop_reason = "time_budget"
            break
        if should_cancel is not None and step % config.cancel_check_every == 0 and should_cancel():
            raise ReconstructionCanceled("reconstruction canceled")
        total = loop.step(step, _progress(config, step, elapsed))
        step += 1
        if step % config.cancel_check_every == 0 and not torch.isfinite(total):
            raise Diverged(f"training diverged: non-finite loss at step {step}")
        elapsed = loop.elapsed()
        progress = _progress(config, step, elapsed)
        if loop.report_due(step):
            recent = loop.meter.mean()
            if on_step is not None:
                on_step(StepReport(step, config.max_iterations, loop.meter.last(), elapsed,
                                   progress))
        if loop.plateau.update(step, progress, loop.meter.main_term()):
            stop_reason = "plateau"
            break
    seconds = loop.elapsed()
    if loop.meter.count:
        recent = loop.meter.mean()
    if not all(math.isfinite(value) for value in recent.values()):
        raise Diverged("training diverged: non-finite final loss")
    if on_step is not None:
        on_step(StepReport(step, config.max_iterations, loop.meter.last(), seconds, 1.0))
    return TrainingOutcome(step, stop_reason, recent, seconds, config.time_budget_s)


def scaled_to_cloud(config: TrainingConfig, points: int) -> TrainingConfig:
    """`config` with its time budget and step cap grown for a cloud of `points` points (see
    budget_growth_cap); the step cap grows too, or a fast machine would stop on it first."""
    growth = (max(points, 1) / config.budget_reference_points) ** (1 / 3)
    growth = min(max(growth, 1.0), config.budget_growth_cap)
    budget = config.time_budget_s
    if budget is not None:
        budget *= growth
        if config.max_time_budget_s is not None:
            budget = min(budget, config.max_time_budget_s)
    return dataclasses.replace(config, time_budget_s=budget,
                               max_iterations=round(config.max_iterations * growth))


class _Loop:
    """Optimiser, precision switch and bookkeeping of one training run."""

    def __init__(self, network: SdfNetwork, method: Method, config: TrainingConfig) -> None:
        device = next(network.parameters()).device
        params = list(network.parameters()) + method.extra_parameters()
        # Fused: one kernel for the whole update, 2.1 -> 0.4 ms per step for the paper network on
        # 2 CPU cores (a tenth of a `fast` step was the optimiser's).
        self.optimizer = torch.optim.Adam(
            params,
            lr=config.learning_rate,
            betas=config.adam_betas,
            fused=device.type in FUSED_ADAM_DEVICES,
        )
        self.network, self.method, self.config = network, method, config
        self.fast = _autocast(device, config.matmul_precision)
        self.full = _autocast(device, "fp32")
        bf16 = config.matmul_precision == "bf16"
        self.switch = 1.0 - config.full_precision_tail if bf16 else math.inf
        self.plateau, self.meter = _Plateau(config, device), _LossMeter()
        self.start = self.last_report = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def step(self, step: int, progress: float) -> torch.Tensor:
        """One optimiser step; returns the detached total loss."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.config, step, progress)
        autocast = self.fast if progress < self.switch else self.full
        loss = self.method.step_loss(self.network, progress, autocast)
        self.optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        self.optimizer.step()
        self.meter.add(loss.terms)
        return loss.total.detach()

    def report_due(self, step: int) -> bool:
        now = time.perf_counter()
        if step == 1 or now - self.last_report >= self.config.progress_interval_s:
            self.last_report = now
            return True
        return False


def _progress(config: TrainingConfig, step: int, elapsed: float) -> float:
    progress = step / config.max_iterations
    if config.time_budget_s:
        progress = max(progress, elapsed / config.time_budget_s)
    return min(progress, 1.0)


class _LossMeter:
    """Running sums of the loss terms since the last read, kept on the device."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.latest: dict[str, torch.Tensor] = {}

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for key, value in terms.items():
                self.sums[key] = self.sums[key] + value if key in self.sums else value.clone()
        self.latest = terms
        self.count += 1

    def main_term(self) -> torch.Tensor:
        """The latest step's main term, on the device (the weighted total drifts with NAP's
        learned weights, so plateaus are judged on the fitting term itself)."""
        return next(iter(self.latest.values()))

    def last(self) -> float:
        """The latest step's main term (the first one a method reports)."""
        return float(next(iter(self.latest.values()))) if self.latest else float("nan")

    def mean(self) -> dict[str, float]:
        """Mean of each term over the steps since the previous call, then reset."""
        means = {key: float(value) / max(self.count, 1) for key, value in self.sums.items()}
        self.sums, self.count = {}, 0
        return means

