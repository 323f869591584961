"""The one translation from the public, bounded `ReconstructionParams` to an engine config.

The API schema is not the engine config (docs/ARCHITECTURE.md): clients choose a method,
a preset, a seed and a few caps; the worker's settings add what only the operator decides
(the device, the time a job may take, how many CPU threads one job may use).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from recon.engine.runtime import cpu_count
from recon.schemas import ReconstructionParams

if TYPE_CHECKING:
    from recon.engine.config import ReconstructionConfig
    from recon.infra.settings import Settings

UPLOAD_RESERVE_SHARE = 0.05
MIN_UPLOAD_RESERVE_S = 10.0
"""The engine's time limit leaves this share of the job's soft limit (at least this many
seconds) for exporting and uploading the results."""


def engine_time_limit_s(settings: Settings, elapsed_s: float = 0.0) -> float:
    """What the engine may spend of the job's soft time limit once the run used `elapsed_s`
    (downloading the input): the rest, less the upload reserve. The engine splits it between
    training, meshing and metrics (recon.engine.time_plan), so a slow preset on a slow device
    ends with a mesh instead of a time-limit failure."""
    soft = float(settings.job_soft_time_limit_s)
    reserve = max(MIN_UPLOAD_RESERVE_S, UPLOAD_RESERVE_SHARE * soft)
    return max(1.0, soft - elapsed_s - reserve)


def cpu_threads_per_job(settings: Settings) -> int:
    """CPU threads one job may use so that concurrent jobs do not oversubscribe the cores."""
    return max(1, cpu_count() // settings.worker_concurrency)


def engine_config_for(
    params: ReconstructionParams, settings: Settings, *, elapsed_s: float = 0.0
) -> ReconstructionConfig:
    """Build the engine config for one job.

    Parameters
    ----------
    params : ReconstructionParams
        What the client asked for (already validated and bounded by the API).
    settings : Settings
        The worker's settings: ``worker_device``, ``job_soft_time_limit_s`` and
        ``worker_concurrency`` are used.
    elapsed_s : float
        Time the run already spent before the engine starts (download).

    Returns
    -------
    ReconstructionConfig
        The preset's config with the client's seed, resolution and iteration cap, the worker's
        device, and the whole-run time limit the engine plans training and meshing within.
    """
    from recon.engine import build_config

    config = build_config(
        params.method.value,
        params.preset.value,
        device=settings.worker_device,
        seed=params.seed,
        resolution=params.resolution,
        max_iterations=params.max_iterations,
        surface=params.surface.value,
        trim_distance=params.trim_distance,
        target_faces=params.target_faces,
        up_axis=params.up_axis.value,
        units=None if params.units is None else params.units.value,
        use_normals=params.use_normals.value,
    )
    cap = engine_time_limit_s(settings, elapsed_s)
    budget = config.training.time_budget_s
    training = dataclasses.replace(
        config.training,
        time_budget_s=cap if budget is None else min(budget, cap),
        max_time_budget_s=cap,
        num_threads=cpu_threads_per_job(settings) if config.device == "cpu" else None,
    )
    return dataclasses.replace(config, training=training, time_limit_s=cap)
