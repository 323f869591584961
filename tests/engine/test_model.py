"""The SDF network: shapes, geometric init, and the hand-written gradient against autograd."""

import dataclasses

import pytest
import torch

from recon.engine.config import NetworkConfig
from recon.engine.model import SdfNetwork

SMALL = NetworkConfig(hidden_layers=4, hidden_width=32, skip_layers=(2,))


def _network(config: NetworkConfig = SMALL, seed: int = 0) -> SdfNetwork:
    return SdfNetwork(config, generator=torch.Generator().manual_seed(seed))


def test_default_is_the_paper_network():
    network = _network(NetworkConfig())
    widths = [w.shape for w in network.weights()]
    assert len(widths) == 9
    assert widths[3] == (253, 256) and widths[4] == (256, 256)
    assert widths[-1] == (1, 256)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_geometric_init_is_close_to_a_sphere_of_radius_half(seed):
    # Geometric init is exact only in the infinite-width limit: f ~ |x| - 0.5 up to a slope.
    network = _network(NetworkConfig(), seed=seed)
    directions = torch.nn.functional.normalize(torch.randn(500, 3), dim=1)
    means = [network(directions * radius).mean().item() for radius in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert means == sorted(means)
    assert means[0] < -0.3 and means[-1] > 0.2
    assert abs(means[2]) < 0.15
    values = network(directions * 0.3)
    assert values.std().item() < 0.05


def test_weight_norm_starts_at_the_initial_weights():
    network = _network()
    for weight, direction in zip(network.weights(), network.directions, strict=True):
        torch.testing.assert_close(weight, direction)


@pytest.mark.parametrize("activation", ["relu", "softplus"])
def test_value_and_gradient_match_autograd(activation):
    network = _network(dataclasses.replace(SMALL, activation=activation))
    x = (torch.rand(256, 3) - 0.5).requires_grad_(True)
    values, gradients = network.value_and_gradient(x)
    reference = network(x)
    (expected,) = torch.autograd.grad(reference.sum(), x)
    torch.testing.assert_close(values, reference)
    torch.testing.assert_close(gradients, expected, rtol=1e-5, atol=1e-6)


def _pull_like_loss(x, values, gradients):
    """Depends on f and on grad f, like Neural-Pull's loss (so both backward paths are used)."""
    unit = gradients / gradients.norm(dim=1, keepdim=True)
    return (x - values[:, None] * unit - 0.9 * x).norm(dim=1).sum() + gradients.norm(dim=1).sum()


@pytest.mark.parametrize(
    "config",
    [
        SMALL,
        dataclasses.replace(SMALL, skip_layers=(1, 3), weight_norm=False),
        dataclasses.replace(SMALL, skip_layers=(3,)),
        dataclasses.replace(SMALL, activation="softplus"),
    ],
    ids=["relu-skip2", "relu-skip1-3-no-weight-norm", "relu-skip-at-last-hidden", "softplus"],
)
def test_parameter_and_input_gradients_match_double_backward(config):
    network = _network(config).double()
    x = (torch.rand(128, 3, dtype=torch.float64) - 0.5).requires_grad_(True)
    params = [x, *network.parameters()]
    values, gradients = network.value_and_gradient(x)
    manual = torch.autograd.grad(_pull_like_loss(x, values, gradients), params, allow_unused=True)
    (auto_gradients,) = torch.autograd.grad(network(x).sum(), x, create_graph=True)
    reference = torch.autograd.grad(
        _pull_like_loss(x, network(x), auto_gradients), params, allow_unused=True
    )
    for got, want, param in zip(manual, reference, params, strict=True):
        # An unused parameter (the output bias when only grad f matters) may come back as zeros.
        got = torch.zeros_like(param) if got is None else got
        want = torch.zeros_like(param) if want is None else want
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_bf16_autocast_stays_close_to_fp32():
    network = _network(NetworkConfig(hidden_layers=4, hidden_width=128, skip_layers=(2,)))
    x = torch.rand(512, 3) - 0.5
    values, gradients = network.value_and_gradient(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low_values, low_gradients = network.value_and_gradient(x)
    assert low_values.dtype == torch.float32
    assert (low_values - values).abs().max().item() < 2e-2
    assert (low_gradients - gradients).norm(dim=1).mean().item() < 0.03


def test_same_seed_same_network():
    a, b, c = _network(seed=3), _network(seed=3), _network(seed=4)
    x = torch.rand(10, 3)
    torch.testing.assert_close(a(x), b(x))
    assert not torch.equal(a(x), c(x))
