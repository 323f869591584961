"""Removal of specks: tiny closed pieces the fitted field leaves around single noisy points.

A Neural-Pull-style field can dip below zero in a pocket a voxel wide next to a noisy input point;
marching cubes turns that into a separate piece of near-zero area that a user never wants (it
also breaks watertightness where the pocket is thinner than a cell). Pieces are judged by area
relative to the largest piece, so separate objects of a multi-object scan are kept.
"""

import numpy as np
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def face_components(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """Label of the vertex-connected piece each face belongs to."""
    rows = faces[:, [0, 1, 2]].reshape(-1)
    cols = faces[:, [1, 2, 0]].reshape(-1)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_vertices, n_vertices))
    _, labels = connected_components(graph, directed=False)
    return labels[faces[:, 0]]


def drop_specks(mesh: trimesh.Trimesh, min_area_share: float) -> int:
    """Remove, in place, the pieces whose area is below `min_area_share` of the largest piece's.

    Returns the number of pieces removed.
    """
    if min_area_share <= 0 or len(mesh.faces) == 0:
        return 0
    labels = face_components(np.asarray(mesh.faces), len(mesh.vertices))
    _, labels = np.unique(labels, return_inverse=True)
    area = np.bincount(labels, weights=mesh.area_faces)
    small = area < min_area_share * area.max()
    if not small.any():
        return 0
    mesh.update_faces(~small[labels])
    mesh.remove_unreferenced_vertices()
    return int(small.sum())
