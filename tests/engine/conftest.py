"""Fixtures for engine tests: small synthetic clouds and a tiny, fast configuration."""

import dataclasses

import numpy as np
import pytest
import torch

from recon.engine.config import (
    MeshingConfig,
    NetworkConfig,
    PreparationConfig,
    ReconstructionConfig,
    TrainingConfig,
)
from recon.engine.examples import example_cloud
from recon.engine.formats.pointcloud import PointCloud
from recon.engine.presets import build_config

SPHERE_OFFSET = np.array([1.0, -2.0, 0.5])
"""Input-frame centre of the test sphere (so normalisation is exercised)."""
SPHERE_SCALE = 3.0
"""Input-frame scale of the test sphere (radius 1.5)."""


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny networks run fastest on one thread, and a busy machine makes thread barriers costly."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def sphere_points() -> PointCloud:
    """600 points on a sphere of radius 1.5 centred at SPHERE_OFFSET, with normals."""
    points, normals = example_cloud("sphere", n=600, seed=1)
    return PointCloud(points=points * SPHERE_SCALE + SPHERE_OFFSET, normals=normals)


@pytest.fixture
def torus_points() -> PointCloud:
    """1500 points on the example torus (major 0.35, minor 0.15), with normals."""
    points, normals = example_cloud("torus", n=1500, seed=2)
    return PointCloud(points=points, normals=normals)


def tiny(config: ReconstructionConfig, **sections) -> ReconstructionConfig:
    """`config` with some sections' fields replaced: tiny(cfg, training={"max_iterations": 5})."""
    changes = {
        name: dataclasses.replace(getattr(config, name), **fields)
        if isinstance(fields, dict) else fields
        for name, fields in sections.items()
    }
    return dataclasses.replace(config, **changes)


@pytest.fixture
def tweak():
    """The `tiny` helper: replace fields of config sections in a test."""
    return tiny


@pytest.fixture
def tiny_config() -> ReconstructionConfig:
    """NAP with a 3x64 network, 400 steps of 512 queries, a 48^3 mesh: about a second of CPU."""
    base = build_config("nap", "fast", device="cpu", seed=0)
    return tiny(
        base,
        network=NetworkConfig(hidden_layers=3, hidden_width=64, skip_layers=(2,)),
        training=TrainingConfig(
            max_iterations=400, batch_size=512, warmup_iterations=20, learning_rate=3e-3,
            plateau_window=0, num_threads=1, progress_interval_s=0.0, matmul_precision="fp32",
        ),
        preparation=PreparationConfig(total_queries=40_000),
        meshing=MeshingConfig(resolution=48),
        metrics_samples=5000,
    )
