"""Oriented normals estimated from the points alone, and the local point spacing.

A range scan carries no inside/outside: Neural-Pull's loss is met by an unsigned distance as well
as by a signed one, and on an open sheet the fitted field loses the sign its sphere initialisation
gave it (docs/ENGINE.md, Open surfaces). These normals give the sign prior
(recon.engine.methods.sign_prior) a side to hold on to. Each normal is the smallest principal axis
of its neighbourhood; orientations are made consistent along a minimum spanning tree of the kNN
graph weighted by 1 - |n_i . n_j| (Hoppe et al. 1992), so the orientation crosses flat regions
before creased ones, and each connected piece then faces away from the cloud's centroid. The
propagation is vectorised: the sign relative to a piece's root is a product along the tree path,
taken by pointer jumping in log(depth) array operations, never a loop over points.
"""

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import breadth_first_order, minimum_spanning_tree
from scipy.spatial import cKDTree

from recon.engine.config import NormalConfig


@dataclass(frozen=True)
class OrientedNormals:
    """Unit normals consistent within each connected piece, and the local spacing.

    Attributes
    ----------
    normals : (n, 3) float64
    spacing : (n,) float64
        Mean distance from each point to its `NormalConfig.neighbours` nearest neighbours.
    """

    normals: np.ndarray
    spacing: np.ndarray


def neighbourhoods(points: np.ndarray, k: int, chunk: int,
                   workers: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest other points of every point: (n, k) distances and (n, k) indices."""
    tree = cKDTree(points)
    n = len(points)
    distances = np.empty((n, k))
    index = np.empty((n, k), np.int64)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        d, i = tree.query(points[start:stop], k=k + 1, workers=workers)
        distances[start:stop], index[start:stop] = d[:, 1:], i[:, 1:]  # first is the point itself
    return distances, index


def local_spacing(points: np.ndarray, config: NormalConfig) -> np.ndarray:
    """(n,) mean distance from each point to its nearest neighbours (the scale trimming uses)."""
    k = max(1, min(config.neighbours, len(points) - 1))
    distances, _ = neighbourhoods(points, k, config.chunk)
    return distances.mean(axis=1)


def orient_normals(points: np.ndarray, config: NormalConfig) -> OrientedNormals:
    """Estimate and orient normals of `points` ((n, 3) float64, n >= 3)."""
    n = len(points)
    k = max(2, min(config.neighbours, n - 1))
    distances, index = neighbourhoods(points, k, config.chunk)
    normals = np.empty((n, 3))
    for start in range(0, n, config.chunk):
        stop = min(start + config.chunk, n)
        normals[start:stop] = _plane_normals(points[index[start:stop]])
    signs, piece = _tree_signs(normals, index)
    normals *= signs[:, None]
    return OrientedNormals(_face_outward(points, normals, piece), distances.mean(axis=1))


def _plane_normals(rings: np.ndarray) -> np.ndarray:
    """(m, 3) smallest principal axis of each (m, k, 3) neighbourhood."""
    deviation = rings - rings.mean(axis=1, keepdims=True)
    covariance = np.einsum("mki,mkj->mij", deviation, deviation)
    _, vectors = np.linalg.eigh(covariance)
    return vectors[:, :, 0]


def _tree_signs(normals: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """+-1 per point making normals agree along the kNN graph's minimum spanning forest, and the
    root of each point's tree (one per connected piece)."""
    n, k = index.shape
    rows = np.repeat(np.arange(n), k)
    cols = index.reshape(-1)
    alignment = np.abs(np.einsum("ij,ij->i", normals[rows], normals[cols]))
    # csgraph drops zero weights, so the weight never reaches zero. A virtual root n joined to
    # every point by an edge heavier than any real one (at most 1 + 1e-6) enters each tree of the
    # forest through exactly one point, so one breadth-first search covers every piece.
    weight = np.concatenate([1.0 - alignment + 1e-6, np.full(n, 10.0)])
    rows = np.concatenate([rows, np.full(n, n)])
    cols = np.concatenate([cols, np.arange(n)])
    graph = coo_matrix((weight, (rows, cols)), shape=(n + 1, n + 1)).tocsr()
    tree = minimum_spanning_tree(graph.maximum(graph.T))
    _, parent = breadth_first_order(tree, n, directed=False, return_predecessors=True)
    parent = parent[:n].copy()
    root = parent == n
    parent[root] = np.flatnonzero(root)
    sign = np.where(np.einsum("ij,ij->i", normals, normals[parent]) < 0, -1.0, 1.0)
    sign[root] = 1.0
    # Pointer jumping: after each pass, sign is the product along the path to `parent`, and
    # parent is twice as far up the tree; it ends with every point's sign relative to its root.
    while True:
        grandparent = parent[parent]
        if np.array_equal(grandparent, parent):
            return sign, parent
        sign = sign * sign[parent]
        parent = grandparent


def _face_outward(points: np.ndarray, normals: np.ndarray, piece: np.ndarray) -> np.ndarray:
    """Flip each connected piece whose normals point, on balance, toward the cloud's centroid
    (outward for a closed scan, toward the scanner for a single view)."""
    outward = np.einsum("ij,ij->i", normals, points - points.mean(axis=0))
    vote = np.bincount(piece, weights=outward, minlength=len(points))
    return normals * np.where(vote[piece] < 0, -1.0, 1.0)[:, None]
