"""Neural-Pull: pull each query onto the surface along the normalised gradient of f.

q' = q - f(q) * g / |g|, g = grad_q f(q); loss = mean |q' - t(q)| (Ma et al., ICML 2021).
"""

from typing import Any

import torch

from recon.engine.config import NeuralPullConfig
from recon.engine.methods.base import Method, StepLoss
from recon.engine.methods.input_normals import InputNormals
from recon.engine.methods.sign_prior import SignPrior
from recon.engine.model import SdfNetwork


def pull_residual(
    queries: torch.Tensor,
    values: torch.Tensor,
    gradients: torch.Tensor,
    targets: torch.Tensor,
    eps: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pulled query minus its target, and the unit gradient.

    Parameters
    ----------
    queries, targets : (b, 3) float32
    values : (b,) float32
        f(queries).
    gradients : (b, 3) float32
        grad f(queries).

    Returns
    -------
    residual : (b, 3) float32
        q - f(q) n - t(q).
    unit_gradient : (b, 3) float32
        n = g / (|g| + eps).
    """
    unit = gradients / (gradients.norm(dim=1, keepdim=True) + eps)
    return queries - values[:, None] * unit - targets, unit


class NeuralPull(Method):
    """The Neural-Pull baseline, with the sign prior (recon.engine.methods.sign_prior) and the
    input's normals where they agree with the field (recon.engine.methods.input_normals)."""

    name = "neural-pull"
    config_type = NeuralPullConfig

    def __init__(self, config, data, device, generator) -> None:
        super().__init__(config, data, device, generator)
        if data.pool is None:
            raise ValueError(f"{self.name} needs a query pool")
        self.queries = self._tensor(data.pool.queries)
        self.targets = self._tensor(data.pool.targets)
        self.target_sigma = self._tensor(data.pool.target_sigma)
        self.sign = SignPrior(self.method_config.sign, data.points, data.estimated, device,
                              generator)
        self.input_normals = InputNormals(self.method_config.input_normals, config.use_normals,
                                          data.points, data.normals, device, generator)

    def facts(self) -> dict[str, Any]:
        return {**self.sign.facts(), **self.input_normals.facts()}

    def _with_priors(self, loss: StepLoss, network: SdfNetwork, progress: float,
                     autocast: torch.autocast) -> StepLoss:
        """`loss` plus the sign penalty once the prior is on and the normal term once the input's
        normals are used (checks run here when due)."""
        total, terms = loss.total, dict(loss.terms)
        for name, term in (("sign", self.sign), ("normals", self.input_normals)):
            term.update(network, progress)
            penalty = term.penalty(network, autocast)
            if penalty is not None:
                total, terms[name] = total + penalty, penalty.detach()
        return StepLoss(total=total, terms=terms)

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = self._batch_index(len(self.queries))
        return self.queries[index], self.targets[index], self.target_sigma[index]

    def step_loss(
        self, network: SdfNetwork, progress: float, autocast: torch.autocast
    ) -> StepLoss:
        queries, targets, _ = self._draw()
        with autocast:
            values, gradients = network.value_and_gradient(queries)
        residual, _ = pull_residual(
            queries, values, gradients, targets, self.method_config.gradient_eps
        )
        loss = residual.norm(dim=1).mean()
        return self._with_priors(StepLoss(total=loss, terms={"pull": loss.detach()}), network,
                               progress, autocast)
