"""Stray points: found against their own neighbourhood, so uneven density is not mistaken for them.

A scan's stray points are of two kinds. Far ones sit alone: the mean distance to their nearest
neighbours is several times that of their closest-packed neighbours (*isolation*; the neighbours'
low quantile, not their median, so strays whose neighbours are mostly other strays still stand
out against the few surface points among them), or several times the whole cloud's median,
for strays so many that they mostly neighbour each other. Near ones sit just off
the surface (a mixed pixel at an edge, a reflection): they have neighbours, but they lie off the
plane those neighbours span by more than the neighbours scatter about it and by a good part of the
local spacing (*off-surface*). Both tests compare a point with its own neighbourhood, so a fused
scan's sparse far side or a grazing, noisier strip keeps its points, and a sparse clean cloud,
whose spacing is far above its noise, loses none.
"""

from dataclasses import dataclass

import numpy as np

from recon.engine.config import OutlierConfig
from recon.engine.normals import neighbourhoods


@dataclass(frozen=True)
class OutlierReport:
    """Which points the tests flagged.

    Attributes
    ----------
    isolated : (n,) bool
    off_surface : (n,) bool
    """

    isolated: np.ndarray
    off_surface: np.ndarray

    @property
    def outliers(self) -> np.ndarray:
        """(n,) bool: flagged by either test."""
        return self.isolated | self.off_surface


def find_outliers(points: np.ndarray, config: OutlierConfig, workers: int = -1) -> OutlierReport:
    """Flag the stray points of `points` ((n, 3) float64, any units: the tests are relative)."""
    n = len(points)
    none = np.zeros(n, bool)
    if n < max(config.min_points, 4):
        return OutlierReport(none, none.copy())
    distances, neighbours = neighbourhoods(points, min(config.neighbours, n - 1), config.chunk,
                                           workers)
    mean_distance = distances.mean(axis=1)
    isolated = mean_distance > config.global_isolation_ratio * np.median(mean_distance)
    off_surface = np.empty(n, bool)
    for start in range(0, n, config.chunk):
        stop = min(start + config.chunk, n)
        ring = neighbours[start:stop]
        ring_distance = mean_distance[ring]
        packed = np.quantile(ring_distance, config.isolation_quantile, axis=1)
        isolated[start:stop] |= mean_distance[start:stop] > config.isolation_ratio * packed
        spacing = np.median(ring_distance, axis=1)
        off_surface[start:stop] = _off_plane(points[start:stop], points[ring], spacing, config)
    return OutlierReport(isolated, off_surface & ~isolated)


def _off_plane(centres: np.ndarray, rings: np.ndarray, spacing: np.ndarray,
               config: OutlierConfig) -> np.ndarray:
    """(m,) bool: centres farther from their ring's plane than the ring scatters about it."""
    mean = rings.mean(axis=1, keepdims=True)
    deviation = rings - mean
    covariance = np.einsum("mki,mkj->mij", deviation, deviation) / rings.shape[1]
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    normal = eigenvectors[:, :, 0]  # smallest eigenvalue: the plane's normal
    scatter = np.sqrt(np.maximum(eigenvalues[:, 0], 0.0))
    height = np.abs(np.einsum("mi,mi->m", centres - mean[:, 0], normal))
    return (height > config.plane_sigmas * scatter) & (height > config.plane_spacings * spacing)
