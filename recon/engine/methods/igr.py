"""IGR: implicit geometric regularisation (Gropp et al., ICML 2020).

loss = mean |f(p)| + normal_weight * mean |grad f(p) - n_p| (when normals exist)
       + eikonal_weight * mean (|grad f(x)| - 1)^2 over x drawn around the points (Gaussian with
       sigma = distance to the K-th neighbour) plus a share drawn uniformly in the padded box.
"""

from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree

from recon.engine.config import IgrConfig, PreparationConfig
from recon.engine.methods.base import Method, StepLoss
from recon.engine.model import SdfNetwork
from recon.engine.sampling import knn_sigma


class Igr(Method):
    """Manifold + normal + eikonal losses on a softplus network."""

    name = "igr"
    config_type = IgrConfig
    needs_queries = False
    activation = "softplus"

    def __init__(self, config, data, device, generator) -> None:
        super().__init__(config, data, device, generator)
        cfg: IgrConfig = self.method_config
        self.points = self._tensor(data.points)
        use = data.normals is not None and config.use_normals != "no"
        self.normals = self._tensor(data.normals) if use else None
        self.normal_facts: dict[str, Any] = {"input_normals": "not given"}
        if data.normals is not None:
            self.normal_facts = {"input_normals": "used" if use else "ignored",
                                 "use_normals": config.use_normals}
        sigma_config = PreparationConfig(
            knn_k=cfg.local_sigma_k,
            sigma_floor=config.preparation.sigma_floor,
            knn_chunk=config.preparation.knn_chunk,
        )
        sigma = knn_sigma(cKDTree(data.points), data.points, sigma_config)
        self.sigma = self._tensor(sigma.astype(np.float32))
        half = config.preparation.unit_cube_side * (0.5 + cfg.box_padding)
        self.box_half = half
        self.uniform_count = max(1, round(cfg.uniform_share * self.batch_size))

    def _eikonal_samples(self, index: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(
            (len(index), 3), generator=self.generator, device=self.device
        )
        local = self.points[index] + self.sigma[index, None] * noise
        uniform = torch.rand(
            (self.uniform_count, 3), generator=self.generator, device=self.device
        )
        return torch.cat([local, (2 * uniform - 1) * self.box_half])

    def facts(self) -> dict[str, Any]:
        return self.normal_facts

    def step_loss(
        self, network: SdfNetwork, progress: float, autocast: torch.autocast
    ) -> StepLoss:
        cfg: IgrConfig = self.method_config
        index = self._batch_index(len(self.points))
        samples = self._eikonal_samples(index)
        both = torch.cat([self.points[index], samples])
        with autocast:
            values, gradients = network.value_and_gradient(both)
        n = len(index)
        manifold = values[:n].abs().mean()
        eikonal = ((gradients[n:].norm(dim=1) - 1.0) ** 2).mean()
        total = manifold + cfg.eikonal_weight * eikonal
        terms = {"manifold": manifold.detach(), "eikonal": eikonal.detach()}
        if self.normals is not None:
            normal = (gradients[:n] - self.normals[index]).norm(dim=1).mean()
            total = total + cfg.normal_weight * normal
            terms["normal"] = normal.detach()
        return StepLoss(total=total, terms=terms)
