"""The reconstruction engine: point cloud in, watertight mesh and metrics out.

A pure library (torch, numpy, scipy, trimesh, scikit-image). Three calls make the public surface::

    cloud = load_point_cloud("scan.ply")
    config = build_config("nap", "balanced", device="auto", seed=0)
    result = reconstruct(cloud, config)          # result.mesh, result.metrics, result.warnings

Names are imported lazily so that the numpy-only parts (loading, validation) can be used by the HTTP
service without importing torch.
"""

import importlib
import os
from typing import Any

# Before torch loads: idle OpenMP threads sleep instead of spinning. On shared cores spinning
# threads starve each other (measured: 2.1 vs 12.2 it/s, 2 threads on a busy 2-core machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from worker.engine.errors import (
    Diverged,
    EmptySurface,
    EngineError,
    InvalidGroundTruth,
    InvalidPointCloud,
    ReconstructionCanceled,
)

_LAZY: dict[str, str] = {
    "PointCloud": "worker.engine.pointcloud",
    "load_point_cloud": "worker.engine.pointcloud",
    "GroundTruth": "worker.engine.ground_truth",
    "load_ground_truth": "worker.engine.ground_truth",
    "export_mesh": "worker.engine.export",
    "MESH_EXPORTERS": "worker.engine.export",
    "build_config": "worker.engine.presets",
    "ReconstructionConfig": "worker.engine.config",
    "reconstruct": "worker.engine.pipeline",
    "Progress": "worker.engine.pipeline",
    "ReconstructionResult": "worker.engine.pipeline",
    "method_names": "worker.engine.methods",
}

__all__ = [
    "Diverged",
    "EmptySurface",
    "EngineError",
    "InvalidGroundTruth",
    "InvalidPointCloud",
    "ReconstructionCanceled",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'worker.engine' has no attribute {name!r}")
