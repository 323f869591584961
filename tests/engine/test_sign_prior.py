"""The sign prior watches large clouds only, stays off on a signed field (also one whose probes do
not cross but which is negative inside) and turns on (and stays on) when the field has lost its
sign."""

import numpy as np
import torch

from recon.engine.config import SignPriorConfig
from recon.engine.methods.sign_prior import SignPrior
from recon.engine.normals import OrientedNormals


class Field(torch.nn.Module):
    """f(x) = |x| - 0.5 (signed) or ||x| - 0.5| (unsigned)."""

    def __init__(self, signed: bool) -> None:
        super().__init__()
        self.signed = signed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        value = x.norm(dim=1) - 0.5
        return value if self.signed else value.abs()


class HiddenInside(torch.nn.Module):
    """Unsigned near the sphere of radius 0.5, negative within radius 0.4: the probes of a dense
    noisy scan see no crossing, yet the field has an inside."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        radius = x.norm(dim=1)
        return torch.where(radius < 0.4, radius - 0.4, (radius - 0.5).abs())


def sphere(n: int) -> tuple[np.ndarray, OrientedNormals]:
    directions = np.random.default_rng(0).standard_normal((n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return 0.5 * directions, OrientedNormals(directions, np.full(n, 0.01))


def prior(n: int, config: SignPriorConfig = SignPriorConfig()) -> SignPrior:
    points, estimated = sphere(n)
    return SignPrior(config, points, estimated, torch.device("cpu"),
                     torch.Generator().manual_seed(0))


def run(sign: SignPrior, field: Field, until: float = 1.0) -> None:
    for progress in np.linspace(0, until, 200):
        sign.update(field, float(progress))


def test_a_signed_field_never_turns_it_on() -> None:
    sign = prior(6000)
    run(sign, Field(signed=True))
    assert not sign.active
    assert sign.penalty(Field(True), torch.autocast("cpu", enabled=False)) is None
    facts = sign.facts()
    assert facts["sign_prior"] == "off" and facts["sign_checks"] > 10
    assert facts["sign_crossing_share"] == 1.0
    assert facts["sign_negative_share"] > 0.4  # the ball of radius 0.5 in its box: 0.52


def test_an_unsigned_field_turns_it_on_after_consecutive_checks() -> None:
    config = SignPriorConfig()
    sign = prior(6000, config)
    run(sign, Field(signed=False), until=config.check_from)
    assert sign.checks == 1 and not sign.active  # one check is not enough
    run(sign, Field(signed=False))
    assert sign.active and sign.facts()["sign_prior"] == "on"
    assert sign.facts()["sign_negative_share"] == 0.0
    assert config.check_from < sign.started_at < config.check_from + 2 * config.check_every
    penalty = sign.penalty(Field(signed=False), torch.autocast("cpu", enabled=False))
    assert penalty is not None and float(penalty) > 0  # inside probes are positive: penalised
    run(sign, Field(signed=True))
    assert sign.active  # it stays on


def test_a_field_with_an_inside_never_turns_it_on_even_without_crossings() -> None:
    sign = prior(6000)
    run(sign, HiddenInside())
    facts = sign.facts()
    assert facts["sign_crossing_share"] == 0.0  # the probes alone would call it unsigned
    assert facts["sign_negative_share"] > SignPriorConfig().max_negative_share
    assert not sign.active and facts["sign_prior"] == "off"


def test_small_clouds_and_disabled_priors_are_not_watched() -> None:
    assert prior(SignPriorConfig().min_points - 1).facts() == {"sign_prior": "not watched"}
    disabled = prior(6000, SignPriorConfig(enabled=False))
    run(disabled, Field(signed=False))
    assert not disabled.active and disabled.facts() == {"sign_prior": "not watched"}
