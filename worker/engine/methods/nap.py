"""NAP: Neural-Pull with spatial adversaries (one normalised-gradient step per query).

For a query q with target t: delta = rho_q * d / |d|, rho_q = rho_factor * sigma_t,
d = grad_q l_NP(q). The adversarial query q + delta keeps the target t; delta is detached.
J = l / (2a) + l_adv / (2b) + ln(1 + a) + ln(1 + b) with a, b = softplus(free parameters).

For a ReLU network grad f is piecewise constant in q (the Hessian vanishes almost everywhere), so
with n = g / |g|, r = q' - t and r_hat = r / |r|: d = r_hat - g (n . r_hat). The closed form reuses
the clean pass; the "autograd" setting computes d by double backward and is the reference. On a
softplus network the closed form drops the curvature term -f H (dn/dg)^T r_hat, which is first order
in f (small for queries near the surface): `balanced` measured the same quality with it as with the
double backward, at two thirds of the time (see worker.engine.presets).
"""

import math

import torch
from torch import nn

from worker.engine.config import NapConfig
from worker.engine.methods.base import StepLoss
from worker.engine.methods.neural_pull import NeuralPull, pull_residual
from worker.engine.model import SdfNetwork


def closed_form_direction(
    residual: torch.Tensor, unit_gradient: torch.Tensor, gradients: torch.Tensor, eps: float
) -> torch.Tensor:
    """grad_q |q - f(q) n - t| for a piecewise-linear f (to first order in f otherwise), per query.

    Parameters
    ----------
    residual, unit_gradient, gradients : (b, 3) float32

    Returns
    -------
    (b, 3) float32
    """
    r_hat = residual / (residual.norm(dim=1, keepdim=True) + eps)
    return r_hat - gradients * (unit_gradient * r_hat).sum(dim=1, keepdim=True)


class Nap(NeuralPull):
    """Neural-Pull plus the spatial adversarial term with learned weights."""

    name = "nap"
    config_type = NapConfig

    def __init__(self, config, data, device, generator) -> None:
        super().__init__(config, data, device, generator)
        start = math.log(math.expm1(self.method_config.initial_weight))
        self.raw_weights = nn.Parameter(torch.full((2,), start, device=device))
        self.adversarial_count = max(
            1, round(self.method_config.adversarial_share * self.batch_size)
        )

    def extra_parameters(self) -> list[nn.Parameter]:
        return [self.raw_weights]

    def step_loss(
        self, network: SdfNetwork, progress: float, autocast: torch.autocast
    ) -> StepLoss:
        queries, targets, sigma = self._draw()
        eps = self.method_config.gradient_eps
        autograd = self.method_config.second_order == "autograd"
        weights = network.weights()
        if autograd:
            queries = queries.clone().requires_grad_(True)
            with autocast:
                values = network(queries)
            (gradients,) = torch.autograd.grad(values.sum(), queries, create_graph=True)
        else:
            with autocast:
                values, gradients = network.value_and_gradient(queries, weights)
        residual, unit = pull_residual(queries, values, gradients, targets, eps)
        per_query = residual.norm(dim=1)
        pull = per_query.mean()
        if progress < self.method_config.warmup_fraction:
            return StepLoss(total=pull, terms={"pull": pull.detach()})
        m = self.adversarial_count
        if autograd:
            (direction,) = torch.autograd.grad(per_query.sum(), queries, retain_graph=True)
            direction = direction[:m]
            queries = queries.detach()
        else:
            direction = closed_form_direction(
                residual[:m].detach(), unit[:m].detach(), gradients[:m].detach(), eps
            )
        radius = self.method_config.rho_factor * sigma[:m, None]
        shifted = queries[:m] + radius * direction / (direction.norm(dim=1, keepdim=True) + eps)
        with autocast:
            adv_values, adv_gradients = network.value_and_gradient(shifted.detach(), weights)
        adv_residual, _ = pull_residual(shifted, adv_values, adv_gradients, targets[:m], eps)
        return self._weighted(pull, adv_residual.norm(dim=1).mean())

    def _weighted(self, pull: torch.Tensor, adversarial: torch.Tensor) -> StepLoss:
        """J = l / (2a) + l_adv / (2b) + ln(1 + a) + ln(1 + b), a and b kept positive."""
        a, b = nn.functional.softplus(self.raw_weights)
        total = pull / (2 * a) + adversarial / (2 * b) + torch.log1p(a) + torch.log1p(b)
        terms = {
            "pull": pull.detach(),
            "adversarial": adversarial.detach(),
            "weight_a": a.detach(),
            "weight_b": b.detach(),
        }
        return StepLoss(total=total, terms=terms)

    def adversarial_direction(self, network: SdfNetwork, queries, targets) -> torch.Tensor:
        """d = grad_q l_NP(q) per query by the configured path (used by tests to compare paths).

        Parameters
        ----------
        queries, targets : (b, 3) float32

        Returns
        -------
        (b, 3) float32
        """
        eps = self.method_config.gradient_eps
        if self.method_config.second_order == "autograd":
            queries = queries.clone().requires_grad_(True)
            values = network(queries)
            (gradients,) = torch.autograd.grad(values.sum(), queries, create_graph=True)
            residual, _ = pull_residual(queries, values, gradients, targets, eps)
            (direction,) = torch.autograd.grad(residual.norm(dim=1).sum(), queries)
            return direction
        values, gradients = network.value_and_gradient(queries)
        residual, unit = pull_residual(queries, values, gradients, targets, eps)
        return closed_form_direction(residual, unit, gradients, eps).detach()
