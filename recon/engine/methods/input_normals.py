"""The input's own normals, for Neural-Pull and NAP: used when they agree with the fitted field.

Scanners and photogrammetry often deliver normals, but their orientation may be flipped or
inconsistent. `use_normals`:
- "auto" (the default): once the field has taken shape (`decide_at` of training) compare grad f
  with the normals at a fixed subset of points; if the mean cosine reaches `min_agreement`, add
  weight * mean(1 - cos(grad f(p), n_p)) for the rest of training, else ignore them;
- "yes": add the term from the start; "no": ignore them.
The run facts say which (`input_normals`: "not given", "ignored", "used"; with the agreement).
"""

from typing import Any

import numpy as np
import torch

from recon.engine.config import InputNormalConfig
from recon.engine.methods.base import strided_indices
from recon.engine.model import SdfNetwork


class InputNormals:
    """Decides whether one run uses the input's normals, and gives their alignment term."""

    def __init__(self, config: InputNormalConfig, use: str, points: np.ndarray,
                 normals: np.ndarray | None, device: torch.device,
                 generator: torch.Generator) -> None:
        self.config = config
        self.given = normals is not None
        self.use = use
        self.active = self.given and use == "yes"
        self.decided = not self.given or use != "auto"
        self.agreement: float | None = None
        if normals is None:
            return
        self.generator = generator
        self.points = torch.as_tensor(np.ascontiguousarray(points), dtype=torch.float32,
                                      device=device)
        self.normals = torch.as_tensor(np.ascontiguousarray(normals), dtype=torch.float32,
                                       device=device)
        self.probe = strided_indices(len(points), config.check_points, device)

    def update(self, network: SdfNetwork, progress: float) -> None:
        """Decide, once `decide_at` of training has passed ("auto" only)."""
        if self.decided or progress < self.config.decide_at:
            return
        with torch.enable_grad():
            _, gradients = network.value_and_gradient(self.points[self.probe])
        cosine = torch.nn.functional.cosine_similarity(gradients.detach().float(),
                                                       self.normals[self.probe], dim=1)
        self.agreement = float(cosine.mean())
        self.active = self.agreement >= self.config.min_agreement
        self.decided = True

    def penalty(self, network: SdfNetwork, autocast: torch.autocast) -> torch.Tensor | None:
        """The alignment term for this step, or None while the normals are not used."""
        if not self.active:
            return None
        index = torch.randint(len(self.points), (self.config.batch_size,),
                              generator=self.generator, device=self.points.device)
        with autocast:
            _, gradients = network.value_and_gradient(self.points[index])
        cosine = torch.nn.functional.cosine_similarity(gradients.float(), self.normals[index],
                                                       dim=1)
        return self.config.weight * (1.0 - cosine).mean()

    def facts(self) -> dict[str, Any]:
        """What the run reports about the input's normals."""
        if not self.given:
            return {"input_normals": "not given"}
        return {"input_normals": "used" if self.active else "ignored",
                "use_normals": self.use, "normal_agreement": self.agreement}
