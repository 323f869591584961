"""What every method provides: its config type, the data it trains on, and one step's loss.

A method owns its training tensors on the device and draws batches from the caller's seeded
`torch.Generator`; the optimisation loop (recon.engine.training) only calls `step_loss`.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from recon.engine.config import ReconstructionConfig
from recon.engine.model import SdfNetwork
from recon.engine.normals import OrientedNormals
from recon.engine.sampling import QueryPool


@dataclass(frozen=True)
class TrainingData:
    """Normalised inputs of one reconstruction.

    Attributes
    ----------
    points : (n, 3) float64
        Deduplicated input points in the normalised frame.
    normals : (n, 3) float64 or None
        Unit normals, when the input had them.
    pool : QueryPool or None
        Query pool, for methods with `needs_queries`.
    estimated : OrientedNormals or None
        Normals estimated from the points and oriented (for the sign prior), when computed.
    """

    points: np.ndarray
    normals: np.ndarray | None
    pool: QueryPool | None
    estimated: OrientedNormals | None = None


def strided_indices(n: int, count: int, device: torch.device) -> torch.Tensor:
    """About `count` indices spread evenly over range(n): a fixed probe set, no random draw."""
    return torch.as_tensor(np.unique(np.linspace(0, n - 1, count).astype(np.int64)),
                           device=device)


@dataclass(frozen=True)
class StepLoss:
    """The scalar to minimise and detached terms for reporting.

    Attributes
    ----------
    total : 0-d tensor with grad
    terms : dict of 0-d detached tensors (read lazily, so no device sync per step)
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]


class Method(ABC):
    """Base of the registered methods.

    Parameters
    ----------
    config : ReconstructionConfig
        The full config; `config.method_config` has the method's own type.
    data : TrainingData
    device : torch.device
    generator : torch.Generator
        Seeded generator on `device` for batch draws.
    """

    name: ClassVar[str]
    config_type: ClassVar[type]
    needs_queries: ClassVar[bool] = True
    activation: ClassVar[str] = "relu"

    def __init__(
        self,
        config: ReconstructionConfig,
        data: TrainingData,
        device: torch.device,
        generator: torch.Generator,
    ) -> None:
        if not isinstance(config.method_config, self.config_type):
            raise TypeError(
                f"method {self.name!r} needs a {self.config_type.__name__}, "
                f"got {type(config.method_config).__name__}"
            )
        self.config = config
        self.method_config: Any = config.method_config
        self.device = device
        self.generator = generator
        self.batch_size = config.training.batch_size

    def extra_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters besides the network's (e.g. loss weights)."""
        return []

    def facts(self) -> dict[str, Any]:
        """What the method reports about the run besides its losses (merged into the run facts)."""
        return {}

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float32, device=self.device)

    def _batch_index(self, size: int) -> torch.Tensor:
        return torch.randint(
            size, (self.batch_size,), generator=self.generator, device=self.device
        )

    @abstractmethod
    def step_loss(
        self, network: SdfNetwork, progress: float, autocast: torch.autocast
    ) -> StepLoss:
        """The loss of one optimisation step.

        Parameters
        ----------
        network : SdfNetwork
        progress : float
            Fraction of training done, in [0, 1] (by steps or by time budget).
        autocast : torch.autocast
            Context for the network passes (enabled for bf16 matmuls).
        """
