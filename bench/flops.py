"""Floating-point work of one training step, analytic and counted.

Analytic model (matmuls only; elementwise work is small next to them at width 256). For an MLP whose
layers are (d_in, d_out), one forward pass costs M = 2 * sum(d_in * d_out) per sample. The engine's
`value_and_gradient` adds a hand-written input-gradient pass of about the same cost (one matmul per
layer), so f and grad f together cost 2M. Back-propagating the loss through both graphs costs two
matmuls per matmul (input and weight gradients): 4M. Hence

    Neural-Pull step  ~ 6 M B
    NAP step          ~ 6 M (B + m)   (closed-form adversarial direction, m = adversarial share * B)

The counted figure runs one real step under `torch.utils.flop_counter.FlopCounterMode`, so it
follows whatever the method actually does (autograd second order, warm-up, shares).
"""

from collections.abc import Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

FORWARD_PASSES_PER_VALUE_AND_GRADIENT = 2
"""Forward plus the hand-written input-gradient pass (one matmul per layer each)."""
BACKWARD_MATMULS_PER_MATMUL = 2
"""Each matmul in the graph back-propagates into its input and its weight."""


def forward_flops_per_sample(layer_shapes: Sequence[tuple[int, int]]) -> int:
    """M: matmul FLOPs of one forward pass for one sample.

    Parameters
    ----------
    layer_shapes : sequence of (d_in, d_out)
    """
    return sum(2 * d_in * d_out for d_in, d_out in layer_shapes)


def layer_shapes_of(network: torch.nn.Module) -> list[tuple[int, int]]:
    """(d_in, d_out) of each linear layer of an `SdfNetwork` (its direction matrices)."""
    return [(int(w.shape[1]), int(w.shape[0])) for w in network.directions]


def analytic_step_flops(
    layer_shapes: Sequence[tuple[int, int]], batch: int, adversarial_queries: int = 0
) -> float:
    """Analytic matmul FLOPs of one Neural-Pull (or NAP) training step.

    Parameters
    ----------
    layer_shapes : sequence of (d_in, d_out)
    batch : int
        Clean queries per step.
    adversarial_queries : int
        Adversarial copies per step (0 for Neural-Pull).
    """
    per_sample = forward_flops_per_sample(layer_shapes)
    passes = FORWARD_PASSES_PER_VALUE_AND_GRADIENT * (1 + BACKWARD_MATMULS_PER_MATMUL)
    return float(passes * per_sample * (batch + adversarial_queries))


def counted_step_flops(method, network: torch.nn.Module, progress: float = 1.0) -> float:
    """FLOPs of one real step (loss, then backward) counted by torch's FLOP counter.

    Parameters
    ----------
    method : worker.engine.methods.Method
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
