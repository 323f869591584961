"""CUDA runs (skipped without a GPU): a tiny fit on the device, and determinism by seed there."""

import numpy as np
import pytest
import torch

from recon.engine.pipeline import reconstruct

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_tiny_fit_on_cuda_is_watertight(torus_points, tiny_config, tweak):
    result = reconstruct(torus_points, tweak(tiny_config, device="cuda"))
    assert result.mesh.is_watertight
    assert result.metrics["run"]["device"] == "cuda"


def test_same_seed_same_mesh_on_cuda(torus_points, tiny_config, tweak):
    config = tweak(tiny_config, device="cuda", training={"max_iterations": 100})
    a = reconstruct(torus_points, config).mesh
    b = reconstruct(torus_points, config).mesh
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-5)
