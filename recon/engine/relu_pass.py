"""f and grad f of a ReLU SDF network with a hand-written parameter backward.

A ReLU network's input gradient g = grad_x f is piecewise constant in x and linear in each weight
matrix given the activation pattern, so the loss's gradient needs no double backward. With
gamma_l = d f / d z_l (from the input-gradient pass), p = dL/df and r = dL/dg per sample:

    dL/dW_l = gamma_l^T (p a_{l-1} + nu_{l-1}),   nu_l = mask_l * (W_l nu_{l-1}),  nu_0 = r,

where a is the layer input and nu the tangent of the activations along r (r . g is f's
directional derivative). That is four matmuls per layer per sample (forward, input gradient,
tangent, weight gradient) where autograd, back-propagating through both the forward and the
input-gradient pass, spends six: a Neural-Pull step at the paper network costs two thirds of the
FLOPs (fp32, 2-core Zen 3: 4.3 -> 6.3 it/s, bench/reports/step-cost). dL/dx = p g, as the
Hessian vanishes. Matmuls run in autocast's dtype when it is on, as `nn.functional.linear` would.
"""

import math

import torch
from torch.autograd.function import once_differentiable

INV_SQRT2 = 1.0 / math.sqrt(2.0)
"""Scale of the skip connection's concatenation [h, x] (keeps the activations' variance)."""


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    """The matmul dtype: autocast's when it is on for x's device, else x's own."""
    device_type = x.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return x.dtype


def _layer_input(index, activations, x, skip_layers):
    """The input of hidden layer `index`: [h, x] / sqrt(2) at a skip layer."""
    h = x if index == 0 else activations[index - 1]
    if index in skip_layers:
        h = torch.cat([h, x], dim=1) * INV_SQRT2
    return h


class ReluValueAndGradient(torch.autograd.Function):
    """(x, skip_layers, *weights, *biases) -> (f, grad_x f), both float32.

    weights[l] is (d_out, d_in) as in `nn.functional.linear`; the last layer has one output.
    """

    @staticmethod
    def forward(ctx, x, skip_layers, *parameters):
        count = len(parameters) // 2
        dtype = _compute_dtype(x)
        weights = [w.to(dtype) for w in parameters[:count]]
        biases = [b.to(dtype) for b in parameters[count:]]
        xc = x.to(dtype)
        activations: list[torch.Tensor] = []
        for index in range(count - 1):
            h = _layer_input(index, activations, xc, skip_layers)
            activations.append(torch.relu_(torch.addmm(biases[index], h, weights[index].t())))
        f = torch.addmm(biases[-1], activations[-1], weights[-1].t())[:, 0]
        grad_h = weights[-1][0].expand(x.shape[0], -1)
        grad_x = torch.zeros_like(xc)
        slopes = [None] * (count - 1)
        for index in range(count - 2, -1, -1):
            # d f / d z: the incoming gradient where the unit is active (h > 0), else 0.
            slopes[index] = torch.ops.aten.threshold_backward(grad_h, activations[index], 0.0)
            grad_h = slopes[index] @ weights[index]
            if index in skip_layers:
                grad_x = grad_x + grad_h[:, -3:] * INV_SQRT2
                grad_h = grad_h[:, :-3] * INV_SQRT2
        gradient = (grad_x + grad_h).float()
        ctx.skip_layers, ctx.layer_count = skip_layers, count
        ctx.parameter_dtypes = [p.dtype for p in parameters]
        ctx.save_for_backward(xc, gradient, *weights, *activations, *slopes)
        return f.float(), gradient

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_f, grad_g):
        xc, gradient, *saved = ctx.saved_tensors
        count = ctx.layer_count
        weights = saved[:count]
        activations = saved[count : 2 * count - 1]
        slopes = saved[2 * count - 1 :]
        skip_layers = ctx.skip_layers
        dtype = xc.dtype
        p = grad_f.to(dtype)[:, None]
        r = grad_g.to(dtype)
        tangent = r
        weight_grads, bias_grads = [], []
        for index in range(count - 1):
            h = _layer_input(index, activations, xc, skip_layers)
            if index in skip_layers:
                tangent = torch.cat([tangent, r], dim=1) * INV_SQRT2
            weight_grads.append(slopes[index].t() @ torch.addcmul(tangent, p, h))
            bias_grads.append(p[:, 0] @ slopes[index])
            tangent = torch.ops.aten.threshold_backward(
                tangent @ weights[index].t(), activations[index], 0.0
            )
        weight_grads.append(torch.addcmul(tangent, p, activations[-1]).sum(dim=0, keepdim=True))
        bias_grads.append(p.sum(dim=0))
        grads = weight_grads + bias_grads
        grads = [g.to(t) for g, t in zip(grads, ctx.parameter_dtypes, strict=True)]
        grad_x = grad_f[:, None] * gradient if ctx.needs_input_grad[0] else None
        return (grad_x, None, *grads)
