"""The sign prior: hold the field to one side of an open scan's surface once it has lost its sign.

Neural-Pull's loss is met by an unsigned distance as well as by a signed one. A closed shape keeps
the sign its sphere initialisation gave it; an open sheet (a single range scan) does not: the
fitted field ends up positive on both sides of it, and marching cubes at level 0 finds only specks.
The prior watches for that: at a few checks during training it probes the field at a fixed subset
of input points, a couple of local spacings to either side along their estimated normals
(recon.engine.normals), and on a fixed lattice over the points' box. Once the field passes near
the points but rarely changes sign between the two probes, and is negative almost nowhere in the
box (a closed shape keeps its inside negative even where depth noise hides the crossing from
probes a few spacings apart, as on dense fused scans), it adds
mean(relu(-f(p + d n)) + relu(f(p - d n))), which makes the side the normals face positive and
the other negative. On a field that keeps its sign it never turns on, so closed
shapes train exactly as without it (no extra random draws, no extra loss).
"""

from typing import Any

import numpy as np
import torch

from recon.engine.config import SignPriorConfig
from recon.engine.methods.base import strided_indices
from recon.engine.model import SdfNetwork
from recon.engine.normals import OrientedNormals


class SignPrior:
    """Watches one training run's field and, once it turns unsigned, gives the penalty."""

    def __init__(self, config: SignPriorConfig, points: np.ndarray,
                 estimated: OrientedNormals | None, device: torch.device,
                 generator: torch.Generator) -> None:
        self.config = config
        self.watching = (config.enabled and estimated is not None
                         and len(points) >= config.min_points)
        self.active = False
        self.started_at: float | None = None
        self.last_crossing_share: float | None = None
        self.last_negative_share: float | None = None
        self.checks = 0
        self._counting = 0
        self._next_check = config.check_from
        if not self.watching or estimated is None:
            return
        self.generator = generator

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32, device=device)

        self.points = tensor(points)
        self.shift = tensor(estimated.normals * (config.offset * estimated.spacing)[:, None])
        self.probe = strided_indices(len(points), config.check_points, device)
        low, high = points.min(axis=0), points.max(axis=0)
        axes = [np.linspace(a, b, config.lattice_size) for a, b in zip(low, high, strict=True)]
        self.lattice = tensor(np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3))

    def update(self, network: SdfNetwork, progress: float) -> None:
        """Run a check when one is due (see the module docstring)."""
        if not self.watching or self.active or progress < self._next_check:
            return
        self._next_check = progress + self.config.check_every
        fitted, crossing, negative = self._check(network)
        self.checks += 1
        self.last_crossing_share, self.last_negative_share = crossing, negative
        unsigned = (fitted >= self.config.min_fitted_share
                    and crossing < self.config.min_crossing_share
                    and negative < self.config.max_negative_share)
        self._counting = self._counting + 1 if unsigned else 0
        if self._counting >= self.config.unsigned_checks:
            self.active, self.started_at = True, progress

    @torch.no_grad()
    def _check(self, network: SdfNetwork) -> tuple[float, float, float]:
        """Share of probed points where |f(p)| is below the probe offset, the share of those
        where f changes sign between p + d n and p - d n, and the lattice's share where f < 0."""
        points, shift = self.points[self.probe], self.shift[self.probe]
        values = network(torch.cat([points, points + shift, points - shift])).float()
        at, outside, inside = values.reshape(3, -1)
        fitted = at.abs() < shift.norm(dim=1)
        crossing = (outside * inside < 0) & fitted
        fitted_count = int(fitted.sum())
        negative = float((network(self.lattice).float() < 0).float().mean())
        return fitted_count / len(at), int(crossing.sum()) / max(fitted_count, 1), negative

    def penalty(self, network: SdfNetwork, autocast: torch.autocast) -> torch.Tensor | None:
        """The sign penalty for this step, or None while the prior is off."""
        if not self.active:
            return None
        index = torch.randint(len(self.points), (self.config.batch_size,),
                              generator=self.generator, device=self.points.device)
        points, shift = self.points[index], self.shift[index]
        with autocast:
            values = network(torch.cat([points + shift, points - shift])).float()
        outside, inside = values.reshape(2, -1)
        return self.config.weight * (torch.relu(-outside) + torch.relu(inside)).mean()

    def facts(self) -> dict[str, Any]:
        """What the run reports: whether the prior was watched, turned on, and when."""
        if not self.watching:
            return {"sign_prior": "not watched"}
        return {
            "sign_prior": "on" if self.active else "off",
            "sign_prior_from": self.started_at,
            "sign_checks": self.checks,
            "sign_crossing_share": self.last_crossing_share,
            "sign_negative_share": self.last_negative_share,
        }
