"""Method losses: Neural-Pull, NAP (closed-form adversarial direction vs double backward), IGR."""

import dataclasses

import numpy as np
import pytest
import torch

from recon.engine.config import IgrConfig, NapConfig, NetworkConfig, PreparationConfig
from recon.engine.methods import TrainingData, get_method
from recon.engine.model import SdfNetwork
from recon.engine.presets import build_config
from recon.engine.sampling import sample_queries

NO_AUTOCAST = torch.autocast("cpu", enabled=False)


def _data(cloud, with_pool=True) -> TrainingData:
    points = cloud.points / np.abs(cloud.points).max() / 2
    pool = None
    if with_pool:
        pool = sample_queries(points, PreparationConfig(total_queries=5000),
                              np.random.default_rng(0))
    return TrainingData(points, cloud.normals, pool)


def _method(name, cloud, config, with_pool=True):
    method_class = get_method(name)
    generator = torch.Generator().manual_seed(0)
    method = method_class(config, _data(cloud, with_pool), torch.device("cpu"), generator)
    network = SdfNetwork(config.network, generator=torch.Generator().manual_seed(0))
    return method, network


def test_closed_form_direction_equals_double_backward(torus_points, tiny_config, tweak):
    config = tweak(tiny_config, method_config=NapConfig(second_order="closed_form"))
    method, network = _method("nap", torus_points, config)
    auto_config = tweak(config, method_config=NapConfig(second_order="autograd"))
    reference, _ = _method("nap", torus_points, auto_config)
    queries, targets = method.queries[:400], method.targets[:400]
    closed = method.adversarial_direction(network, queries, targets)
    double = reference.adversarial_direction(network, queries, targets)
    torch.testing.assert_close(closed, double, rtol=1e-4, atol=1e-5)


def test_closed_form_differs_from_autograd_on_a_smooth_network(torus_points, tiny_config, tweak):
    # The closed form assumes a vanishing Hessian, true for ReLU but not for softplus.
    smooth = dataclasses.replace(tiny_config.network, activation="softplus", softplus_beta=10.0)
    closed_cfg = tweak(tiny_config, network=smooth)
    auto_cfg = tweak(closed_cfg, method_config=NapConfig(second_order="autograd"))
    closed, network = _method("nap", torus_points, closed_cfg)
    auto, _ = _method("nap", torus_points, auto_cfg)
    q, t = closed.queries[:200], closed.targets[:200]
    difference = closed.adversarial_direction(network, q, t) - auto.adversarial_direction(
        network, q, t)
    assert difference.abs().max().item() > 1e-3


def test_nap_starts_with_unit_weights_and_both_terms(torus_points, tiny_config):
    method, network = _method("nap", torus_points, tiny_config)
    loss = method.step_loss(network, progress=0.5, autocast=NO_AUTOCAST)
    terms = {key: value.item() for key, value in loss.terms.items()}
    assert terms["weight_a"] == pytest.approx(1.0) and terms["weight_b"] == pytest.approx(1.0)
    expected = terms["pull"] / 2 + terms["adversarial"] / 2 + 2 * np.log(2.0)
    assert loss.total.item() == pytest.approx(expected, rel=1e-5)
    loss.total.backward()
    assert method.raw_weights.grad is not None
    assert all(p.grad is not None for p in network.parameters())


def _nap_loss_and_gradients(cloud, config):
    method, network = _method("nap", cloud, config)
    loss = method.step_loss(network, progress=0.5, autocast=NO_AUTOCAST)
    loss.total.backward()
    terms = {key: value.item() for key, value in loss.terms.items()}
    return terms, [p.grad.clone() for p in network.parameters()]


def test_linearised_adversary_equals_a_second_pass_on_relu(torus_points, tiny_config, tweak):
    # A ReLU field is affine around each query, so moving the clean pass by delta is the pass at
    # q + delta, except for the queries whose shift crosses into another activation region (about
    # a tenth here): the loss agrees to 1e-4, each parameter's gradient to within 1%.
    assert tiny_config.network.activation == "relu"
    network_cfg = tweak(tiny_config, method_config=NapConfig(adversarial_pass="network"))
    linear_cfg = tweak(tiny_config, method_config=NapConfig(adversarial_pass="linearised"))
    second_pass, second_grads = _nap_loss_and_gradients(torus_points, network_cfg)
    linearised, linear_grads = _nap_loss_and_gradients(torus_points, linear_cfg)
    assert linearised["adversarial"] == pytest.approx(second_pass["adversarial"], rel=1e-4)
    assert linearised["adversarial"] != pytest.approx(linearised["pull"], rel=1e-3)
    for expected, got in zip(second_grads, linear_grads, strict=True):
        assert ((got - expected).norm() / expected.norm()).item() < 0.01


def test_nap_rejects_an_unknown_adversarial_pass(torus_points, tiny_config, tweak):
    with pytest.raises(ValueError, match="linearised"):
        _method("nap", torus_points, tweak(tiny_config, method_config=NapConfig(
            adversarial_pass="second")))


def test_nap_warmup_trains_neural_pull_only(torus_points, tiny_config, tweak):
    config = tweak(tiny_config, method_config=NapConfig(warmup_fraction=0.3))
    method, network = _method("nap", torus_points, config)
    assert set(method.step_loss(network, 0.1, NO_AUTOCAST).terms) == {"pull"}
    assert "adversarial" in method.step_loss(network, 0.5, NO_AUTOCAST).terms


def test_adversarial_shift_has_radius_rho(torus_points, tiny_config):
    method, network = _method("nap", torus_points, tiny_config)
    queries, targets = method.queries[:100], method.targets[:100]
    direction = method.adversarial_direction(network, queries, targets)
    assert direction.norm(dim=1).min().item() > 0


def test_neural_pull_loss_is_the_mean_pull_distance(torus_points, tweak):
    config = build_config("neural-pull", "fast", device="cpu")
    config = tweak(config, network=NetworkConfig(hidden_layers=2, hidden_width=16, skip_layers=()),
                  training={"batch_size": 64})
    method, network = _method("neural-pull", torus_points, config)
    loss = method.step_loss(network, 0.0, NO_AUTOCAST)
    assert loss.total.item() > 0
    assert set(loss.terms) == {"pull"}


@pytest.mark.parametrize("with_normals", [True, False])
def test_igr_terms(torus_points, with_normals, tweak):
    config = build_config("igr", "fast", device="cpu")
    config = tweak(config, network=NetworkConfig(hidden_layers=2, hidden_width=16, skip_layers=(),
                                                activation="softplus"),
                  training={"batch_size": 90}, method_config=IgrConfig())
    cloud = torus_points if with_normals else dataclasses.replace(torus_points, normals=None)
    method, network = _method("igr", cloud, config, with_pool=False)
    loss = method.step_loss(network, 0.0, NO_AUTOCAST)
    assert ("normal" in loss.terms) == with_normals
    assert {"manifold", "eikonal"} <= set(loss.terms)
    assert method.uniform_count == 10
    loss.total.backward()


def test_method_rejects_a_foreign_config(torus_points, tiny_config, tweak):
    with pytest.raises(TypeError, match="NapConfig"):
        _method("nap", torus_points, tweak(tiny_config, method_config=IgrConfig()))
