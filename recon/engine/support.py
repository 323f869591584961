"""Where the surface is data and where it was filled in: each vertex's distance to the nearest
input point, in multiples of that point's local spacing.

A closed mesh of an open scan is part scan and part closure; these values say which is which,
per vertex (exported as `support` in PLY and `_SUPPORT` in GLB) and in the metrics as the area
share within 1, 2 and 4 spacings. Trimming (recon.engine.trimming) cuts at the same values.
"""

import numpy as np
import trimesh
from scipy.spatial import cKDTree

SUPPORT_ATTRIBUTE = "support"
"""The values' name on the mesh (a vertex attribute), in PLY, and (as `_SUPPORT`) in GLB."""
SUPPORT_LEVELS = (1, 2, 4)
"""Spacings at which the metrics give the supported area share."""


def vertex_support(vertices: np.ndarray, points: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """(m,) float32 distance from each vertex to its nearest point over that point's spacing.

    Parameters
    ----------
    vertices : (m, 3) in the frame of `points`
    points : (n, 3) float64
    spacing : (n,) float64 local spacing of each point (recon.engine.normals.local_spacing)
    """
    distance, nearest = cKDTree(points).query(vertices, k=1, workers=-1)
    return (distance / np.maximum(spacing[nearest], 1e-300)).astype(np.float32)


def support_summary(mesh: trimesh.Trimesh, support: np.ndarray) -> dict[str, float]:
    """Area share of the faces whose corners all lie within each SUPPORT_LEVELS spacing."""
    area = np.asarray(mesh.area_faces)
    total = float(area.sum())
    worst = support[mesh.faces].max(axis=1) if len(mesh.faces) else np.zeros(0)
    return {f"area_share_within_{level}": float(area[worst <= level].sum() / total)
            if total > 0 else 0.0 for level in SUPPORT_LEVELS}
