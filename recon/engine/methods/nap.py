"""NAP: Neural-Pull with spatial adversaries (one normalised-gradient step per query).

For a query q with target t: delta = rho_q * d / |d|, rho_q = rho_factor * sigma_t,
d = grad_q l_NP(q). The adversarial query q + delta keeps the target t; delta is detached.
J = l / (2a) + l_adv / (2b) + ln(1 + a) + ln(1 + b) with a, b = softplus(free parameters).

For a ReLU network grad f is piecewise constant in q (the Hessian vanishes almost everywhere), so
with n = g / |g|, r = q' - t and r_hat = r / |r|: d = r_hat - g (n . r_hat). The closed form reuses
the clean pass; the "autograd" setting computes d by double backward and is the reference. On a
softplus network the closed form drops the curvature term -f H (dn/dg)^T r_hat, which is first order
in f (small for queries near the surface): `balanced` measured the same quality with it as with the
double backward, at two thirds of the time (docs/ENGINE.md).

The adversarial residual itself needs f and g at q + delta. The "network" setting evaluates them
by a second pass, as published; "linearised" moves the clean pass instead,
r + delta - (g . delta) n, which is the same thing for a ReLU network while q + delta stays in q's
activation region and first order in f for softplus. It makes a NAP step cost about a Neural-Pull
step, which is what lets NAP beat Neural-Pull at equal wall time even at short budgets (the CPU
presets use it).
"""

import math

import torch
from torch import nn

from recon.engine.config import NapConfig
from recon.engine.methods.base import StepLoss
from recon.engine.methods.neural_pull import NeuralPull, pull_residual
from recon.engine.model import SdfNetwork

ADVERSARIAL_PASSES = ("network", "linearised")
"""How the adversarial query's f and g are obtained (see the module docstring)."""


def adversarial_query_count(config: NapConfig, batch_size: int) -> int:
    """Queries per step that get an adversarial copy."""
    return max(1, round(config.adversarial_share * batch_size))


def second_pass_query_count(config: NapConfig, batch_size: int) -> int:
    """Queries per step that the network evaluates a second time (none when linearised): what a
    NAP step costs beyond a Neural-Pull step."""
    if config.adversarial_pass == "linearised":
        return 0
    return adversarial_query_count(config, batch_size)


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


def linearised_shifted_residual(
    residual: torch.Tensor,
    unit_gradient: torch.Tensor,
    gradients: torch.Tensor,
    delta: torch.Tensor,
) -> torch.Tensor:
    """The pull residual at q + delta from the clean pass: r + delta - (g . delta) n.

    Within q's linear region of a ReLU network f(q + delta) = f + g . delta and g is unchanged, so
    this equals a second network pass there; for softplus it drops the f * (dn/dg) H delta term.

    Parameters
    ----------
    residual, unit_gradient, gradients : (m, 3) float32
        The clean pass's r = q - f n - t, n and g, still attached to the parameters.
    delta : (m, 3) float32, detached

    Returns
    -------
    (m, 3) float32
    """
    along = (gradients * delta).sum(dim=1, keepdim=True)
    return residual + delta - along * unit_gradient


class Nap(NeuralPull):
    """Neural-Pull plus the spatial adversarial term with learned weights."""

    name = "nap"
    config_type = NapConfig

    def __init__(self, config, data, device, generator) -> None:
        super().__init__(config, data, device, generator)
        if self.method_config.adversarial_pass not in ADVERSARIAL_PASSES:
            raise ValueError(
                f"unknown adversarial_pass {self.method_config.adversarial_pass!r}; "
                f"valid: {', '.join(ADVERSARIAL_PASSES)}"
            )
        start = math.log(math.expm1(self.method_config.initial_weight))
        self.raw_weights = nn.Parameter(torch.full((2,), start, device=device))
        self.adversarial_count = adversarial_query_count(self.method_config, self.batch_size)
        self.second_pass_count = second_pass_query_count(self.method_config, self.batch_size)

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
            return self._with_priors(StepLoss(total=pull, terms={"pull": pull.detach()}), network,
                                     progress, autocast)
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
        delta = (radius * direction / (direction.norm(dim=1, keepdim=True) + eps)).detach()
        if self.method_config.adversarial_pass == "linearised":
            adv_residual = linearised_shifted_residual(residual[:m], unit[:m], gradients[:m], delta)
        else:
            shifted = queries[:m] + delta
            with autocast:
                adv_values, adv_gradients = network.value_and_gradient(shifted, weights)
            adv_residual, _ = pull_residual(shifted, adv_values, adv_gradients, targets[:m], eps)
        return self._with_priors(self._weighted(pull, adv_residual.norm(dim=1).mean()), network,
                                 progress, autocast)

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
