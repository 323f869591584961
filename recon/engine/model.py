"""The SDF network: an MLP f: R^3 -> R with a skip connection, weight norm and geometric init.

`value_and_gradient` computes f(x) and grad_x f(x) together so that training never needs a double
backward: a ReLU network goes through `recon.engine.relu_pass` (a hand-written parameter backward,
two thirds of autograd's matmuls); a softplus network through a forward pass that keeps the
activation derivatives and a hand-written input-gradient backward in torch ops, which autograd then
differentiates once. Either way the weight-norm products are formed once per call.
"""

import math

import torch
from torch import nn

from recon.engine.config import NetworkConfig
from recon.engine.relu_pass import INV_SQRT2, ReluValueAndGradient


class SdfNetwork(nn.Module):
    """MLP with optional weight norm, ReLU or softplus, geometric init to a sphere.

    Parameters
    ----------
    config : NetworkConfig
        Sizes, activation, init radius.
    generator : torch.Generator, optional
        Source of the initial weights (seeded by the caller).
    """

    def __init__(self, config: NetworkConfig, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        self.dims = self._layer_dims(config)
        self.directions = nn.ParameterList()
        self.gains = nn.ParameterList()
        self.biases = nn.ParameterList()
        for index, (d_in, d_out) in enumerate(zip(self.dims[:-1], self.dims[1:], strict=True)):
            if index in config.skip_layers:
                d_in += 3
            weight, bias = self._geometric_init(index, d_in, d_out, generator)
            self.directions.append(nn.Parameter(weight))
            self.gains.append(nn.Parameter(weight.norm(dim=1)))
            self.biases.append(nn.Parameter(bias))

    @staticmethod
    def _layer_dims(config: NetworkConfig) -> list[int]:
        dims = [3] + [config.hidden_width] * config.hidden_layers + [1]
        for skip in config.skip_layers:
            # The layer before a skip outputs width - 3 so that [h, x] has the hidden width.
            dims[skip] = config.hidden_width - 3
        return dims

    def _geometric_init(
        self, index: int, d_in: int, d_out: int, generator: torch.Generator | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        last = index == len(self.dims) - 2
        if last:
            mean = math.sqrt(math.pi) / math.sqrt(d_in)
            weight = mean + self.config.init_output_std * torch.randn(
                d_out, d_in, generator=generator
            )
            bias = torch.full((d_out,), -self.config.init_radius)
        else:
            std = math.sqrt(2.0) / math.sqrt(d_out)
            weight = std * torch.randn(d_out, d_in, generator=generator)
            bias = torch.zeros(d_out)
        return weight, bias

    def weights(self) -> list[torch.Tensor]:
        """Effective weight matrices, (d_out, d_in) each, weight norm applied."""
        if not self.config.weight_norm:
            return list(self.directions)
        return [
            gain[:, None] * direction / direction.norm(dim=1, keepdim=True)
            for direction, gain in zip(self.directions, self.gains, strict=True)
        ]

    def _activate(self, z: torch.Tensor, with_derivative: bool):
        if self.config.activation == "relu":
            # In place when nothing will differentiate through it (meshing): no new buffer per
            # layer (dense 256^3 meshing of the paper network: 266 -> 211 s). No derivative:
            # value_and_gradient takes ReLU networks through relu_pass.
            return (torch.relu(z) if torch.is_grad_enabled() else torch.relu_(z)), None
        beta = self.config.softplus_beta
        h = nn.functional.softplus(z, beta=beta)
        return h, torch.sigmoid(beta * z) if with_derivative else None

    def _forward_layers(self, x: torch.Tensor, weights: list[torch.Tensor], keep: bool):
        h, derivatives = x, []
        for index in range(len(weights) - 1):
            if index in self.config.skip_layers:
                h = torch.cat([h, x.to(h.dtype)], dim=1) * INV_SQRT2
            z = nn.functional.linear(h, weights[index], self.biases[index])
            h, derivative = self._activate(z, keep)
            derivatives.append(derivative)
        f = nn.functional.linear(h, weights[-1], self.biases[-1])[:, 0]
        return f, derivatives

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Signed distance values.

        Parameters
        ----------
        x : (n, 3) float32 tensor

        Returns
        -------
        (n,) float32 tensor
        """
        f, _ = self._forward_layers(x, self.weights(), keep=False)
        return f.float()

    def value_and_gradient(
        self, x: torch.Tensor, weights: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """f(x) and grad_x f(x), differentiable with respect to the parameters.

        Parameters
        ----------
        x : (n, 3) float32 tensor
        weights : list of tensors, optional
            `self.weights()` computed once by the caller when it evaluates several batches.

        Returns
        -------
        f : (n,) float32 tensor
        grad : (n, 3) float32 tensor
        """
        weights = self.weights() if weights is None else weights
        if self.config.activation == "relu":
            return ReluValueAndGradient.apply(
                x, tuple(self.config.skip_layers), *weights, *self.biases
            )
        f, derivatives = self._forward_layers(x, weights, keep=True)
        width_out = weights[-1].shape[1]
        grad_h = weights[-1][0].to(f.dtype).expand(x.shape[0], width_out)
        grad_x = None
        for index in range(len(weights) - 2, -1, -1):
            grad_z = grad_h * derivatives[index]
            grad_h = grad_z @ weights[index].to(grad_z.dtype)
            if index in self.config.skip_layers:
                grad_x_part = grad_h[:, -3:] * INV_SQRT2
                grad_x = grad_x_part if grad_x is None else grad_x + grad_x_part
                grad_h = grad_h[:, :-3] * INV_SQRT2
        grad_x = grad_h if grad_x is None else grad_x + grad_h
        return f.float(), grad_x.float()
