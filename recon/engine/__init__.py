"""The reconstruction engine: point cloud in, watertight mesh and metrics out.

A pure library (torch, numpy, scipy, trimesh, scikit-image). Three calls make the public surface::

    cloud = load_point_cloud("scan.ply")
    config = build_config("nap", "balanced", device="auto", seed=0)
    result = reconstruct(cloud, config)          # result.mesh, result.metrics, result.warnings

Names are imported lazily, so importing this package loads neither torch nor anything else
heavy, and it changes no process-wide state: thread counts and OpenMP settings belong to the
entry points (`recon.engine.runtime.configure_process`).
"""

import importlib
from typing import Any

from recon.engine.errors import (
    Diverged,
    EmptySurface,
    EngineError,
    InvalidGroundTruth,
    InvalidPointCloud,
    ReconstructionCanceled,
)

_LAZY: dict[str, str] = {
    "PointCloud": "recon.engine.formats.pointcloud",
    "load_point_cloud": "recon.engine.formats.pointcloud",
    "GroundTruth": "recon.engine.formats.ground_truth",
    "load_ground_truth": "recon.engine.formats.ground_truth",
    "export_mesh": "recon.engine.export",
    "MESH_EXPORTERS": "recon.engine.export",
    "build_config": "recon.engine.presets",
    "ReconstructionConfig": "recon.engine.config",
    "reconstruct": "recon.engine.pipeline",
    "Progress": "recon.engine.pipeline",
    "ReconstructionResult": "recon.engine.pipeline",
    "method_names": "recon.engine.methods",
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
    raise AttributeError(f"module 'recon.engine' has no attribute {name!r}")
