"""Map a point cloud into a centred cube and back (the training frame of every method)."""

from dataclasses import dataclass

import numpy as np

from recon.engine.errors import InvalidPointCloud


@dataclass(frozen=True)
class UnitCubeTransform:
    """normalised = (original - centre) / scale; the bounding box's longest side becomes `side`.

    Attributes
    ----------
    centre : (3,) float64
        Centre of the input's bounding box, input units.
    scale : float
        Input units per normalised unit.
    """

    centre: np.ndarray
    scale: float

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) input coordinates -> (n, 3) float64 normalised coordinates."""
        return (np.asarray(points, dtype=np.float64) - self.centre) / self.scale

    def invert(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) normalised coordinates -> (n, 3) float64 input coordinates."""
        return np.asarray(points, dtype=np.float64) * self.scale + self.centre


def fit_unit_cube(points: np.ndarray, side: float = 1.0) -> UnitCubeTransform:
    """The transform that centres `points` and scales their longest bounding-box side to `side`.

    Parameters
    ----------
    points : (n, 3) float64
    side : float
        Longest side after normalisation.

    Raises
    ------
    InvalidPointCloud
        When all points coincide (no extent to normalise).
    """
    low, high = points.min(axis=0), points.max(axis=0)
    extent = float((high - low).max())
    if not np.isfinite(extent) or extent <= 0.0:
        raise InvalidPointCloud("all points coincide: the cloud has no extent")
    return UnitCubeTransform(centre=(low + high) / 2.0, scale=extent / side)
