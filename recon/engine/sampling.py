"""Training data from a normalised point cloud: kNN scales, deduplication and the query pool.

Queries follow Neural-Pull: q = p + s * sigma_p * eps with eps ~ N(0, I), the target t(q) is the
input point nearest to q. Every draw comes from the caller's seeded `numpy.random.Generator`.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from recon.engine.config import PreparationConfig


@dataclass(frozen=True)
class QueryPool:
    """Training queries with their targets.

    Attributes
    ----------
    queries : (m, 3) float32
    targets : (m, 3) float32
        Nearest input point of each query.
    target_sigma : (m,) float32
        sigma of each query's target point (the adversarial radius is a fraction of it).
    spread : float
        The spread factor s used for this pool.
    """

    queries: np.ndarray
    targets: np.ndarray
    target_sigma: np.ndarray
    spread: float


def deduplicate(points: np.ndarray) -> np.ndarray:
    """Indices of the distinct rows of `points`, each at its first occurrence, in input order
    (so normals and colours follow their points)."""
    _, first = np.unique(points, axis=0, return_index=True)
    first.sort()
    return first


def knn_sigma(
    tree: cKDTree, centres: np.ndarray, config: PreparationConfig, workers: int = -1
) -> np.ndarray:
    """Distance from each centre to its K-th nearest other input point, floored.

    Parameters
    ----------
    tree : cKDTree over the (n, 3) input points
    centres : (c, 3) float64
        Input points whose scale is wanted (all of them, or a subset for huge clouds).
    config : PreparationConfig
        `knn_k` (capped at n - 1), `sigma_floor`, `knn_chunk`.

    Returns
    -------
    (c,) float64
    """
    k = max(1, min(config.knn_k, tree.n - 1))
    sigma = np.empty(len(centres))
    for start in range(0, len(centres), config.knn_chunk):
        chunk = centres[start : start + config.knn_chunk]
        # k + 1 because each centre is itself an input point at distance 0.
        distance, _ = tree.query(chunk, k=[k + 1], workers=workers)
        sigma[start : start + len(chunk)] = distance[:, 0]
    return np.maximum(sigma, config.sigma_floor)


def query_spread(n_points: int, config: PreparationConfig) -> float:
    """s = spread_base * sqrt(N / spread_reference_points), clipped to [spread_min, spread_max]."""
    spread = config.spread_base * math.sqrt(n_points / config.spread_reference_points)
    return float(np.clip(spread, config.spread_min, config.spread_max))


def sample_queries(
    points: np.ndarray, config: PreparationConfig, rng: np.random.Generator, workers: int = -1
) -> QueryPool:
    """Build the query pool (bounded at about `total_queries` however large the cloud).

    Parameters
    ----------
    points : (n, 3) float64
        Normalised, deduplicated input points.
    config : PreparationConfig
    rng : numpy.random.Generator
        Seeded by the caller.

    Returns
    -------
    QueryPool
    """
    n = len(points)
    tree = cKDTree(points)
    per_point = max(config.min_queries_per_point, config.total_queries // n)
    budget_centres = max(1, config.total_queries // per_point)
    if n > budget_centres:
        centre_index = np.sort(rng.choice(n, size=budget_centres, replace=False))
    else:
        centre_index = np.arange(n)
    centres = points[centre_index]
    sigma_centres = knn_sigma(tree, centres, config, workers)
    spread = query_spread(n, config)
    noise = rng.standard_normal((len(centres), per_point, 3))
    queries = centres[:, None, :] + spread * sigma_centres[:, None, None] * noise
    queries = queries.reshape(-1, 3)
    far = round(config.far_query_share * len(queries))
    if far:
        extent = config.far_query_extent * config.unit_cube_side
        queries[rng.permutation(len(queries))[:far]] = rng.uniform(-extent, extent, (far, 3))
    _, target_index = tree.query(queries, k=1, workers=workers)
    target_sigma = _sigma_of(tree, points, target_index, centre_index, sigma_centres, config)
    return QueryPool(
        queries=queries.astype(np.float32),
        targets=points[target_index].astype(np.float32),
        target_sigma=target_sigma.astype(np.float32),
        spread=spread,
    )


def _sigma_of(
    tree: cKDTree,
    points: np.ndarray,
    target_index: np.ndarray,
    centre_index: np.ndarray,
    sigma_centres: np.ndarray,
    config: PreparationConfig,
) -> np.ndarray:
    """sigma of every target, computing it only for targets that were not centres."""
    sigma = np.full(len(points), np.nan)
    sigma[centre_index] = sigma_centres
    used = np.unique(target_index)
    missing = used[np.isnan(sigma[used])]
    if len(missing):
        sigma[missing] = knn_sigma(tree, points[missing], config)
    return sigma[target_index]
