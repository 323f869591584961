"""Floating-point work of one training step, analytic and counted.

Analytic model (matmuls only; elementwise work is small next to them at width 256). For an MLP whose
layers are (d_in, d_out), one forward pass costs M = 2 * sum(d_in * d_out) per sample. A step costs
a whole number of such passes per query, by activation:

- ReLU (`recon.engine.relu_pass`): forward, input gradient, tangent along dL/dg and one weight
  gradient per layer: 4M;
- softplus (`SdfNetwork.value_and_gradient`, then autograd): forward and input gradient, each
  back-propagated into its input and its weight: 6M.

Hence a Neural-Pull step costs passes * M * B and a NAP step passes * M * (B + m), where m is the
adversarial queries the network evaluates a second time (none for the linearised pass).

The counted figure runs one real step under `torch.utils.flop_counter.FlopCounterMode`, so it
follows whatever the method actually does (autograd second order, warm-up, shares).
"""

from collections.abc import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from recon.engine.model import SdfNetwork

PASSES_PER_STEP = {"relu": 4, "softplus": 6}
"""Forward-pass equivalents of matmul work per query and step, by activation (see above)."""


def forward_flops_per_sample(layer_shapes: Sequence[tuple[int, int]]) -> int:
    """M: matmul FLOPs of one forward pass for one sample.

    Parameters
    ----------
    layer_shapes : sequence of (d_in, d_out)
    """
    return sum(2 * d_in * d_out for d_in, d_out in layer_shapes)


def layer_shapes_of(network: SdfNetwork) -> list[tuple[int, int]]:
    """(d_in, d_out) of each linear layer of an `SdfNetwork` (its direction matrices)."""
    return [(int(w.shape[1]), int(w.shape[0])) for w in network.directions]


def analytic_step_flops(network: SdfNetwork, batch: int, adversarial_queries: int = 0) -> float:
    """Analytic matmul FLOPs of one Neural-Pull (or NAP) training step.

    Parameters
    ----------
    network : SdfNetwork
        Its layer shapes and activation set the cost per query.
    batch : int
        Clean queries per step.
    adversarial_queries : int
        Adversarial copies per step (0 for Neural-Pull).
    """
    per_sample = forward_flops_per_sample(layer_shapes_of(network))
    passes = PASSES_PER_STEP[network.config.activation]
    return float(passes * per_sample * (batch + adversarial_queries))


def counted_step_flops(method, network: torch.nn.Module, progress: float = 1.0) -> float:
    """FLOPs of one real step (loss, then backward) counted by torch's FLOP counter.

    Parameters
    ----------
    method : recon.engine.methods.Method
        A built method (owns its batch draws).
    network : SdfNetwork
    progress : float
        Training progress passed to the method (past any warm-up by default).
    """
    autocast = torch.autocast(next(network.parameters()).device.type, enabled=False)
    counter = FlopCounterMode(display=False)
    with counter:
        loss = method.step_loss(network, progress, autocast)
        loss.total.backward()
    network.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())
