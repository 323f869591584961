"""Trimming: remove the parts of the zero level set that no input point supports.

A field fitted to an open scan closes its surface somewhere the scanner never looked (against the
box, or in a smooth bubble behind the sheet). `surface: trimmed` keeps only the faces whose corners
all lie near an input point, near meaning within `trim_distance` local spacings, the spacing being
that of the nearest input point (recon.engine.support), so a fused scan's sparse far side keeps
its surface as well as its dense front does. This is what users do to a screened Poisson mesh
with its density values; the result follows the data's own boundary and is not watertight.
"""

from dataclasses import dataclass

import numpy as np
import trimesh

from recon.engine.errors import EmptySurface
from recon.engine.mesh_cleanup import drop_specks
from recon.engine.support import vertex_support


@dataclass(frozen=True)
class TrimReport:
    """How much trimming removed."""

    removed_area_share: float
    """Share of the untrimmed mesh's area removed."""
    pieces_removed: int
    """Specks left by the cut and dropped with it."""


def trim_unsupported(mesh: trimesh.Trimesh, points: np.ndarray, spacing: np.ndarray,
                     trim_distance: float, min_piece_area_share: float) -> TrimReport:
    """Remove, in place, the faces of `mesh` with a corner farther than `trim_distance` * spacing
    from every input point, then the specks the cut leaves.

    Raises
    ------
    EmptySurface
        When no face is supported.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        In the frame of `points`.
    points : (n, 3) float64
    spacing : (n,) float64
        Local spacing of each point (recon.engine.normals.local_spacing).
    trim_distance : float
        In multiples of the local spacing.
    min_piece_area_share : float
        Pieces under this share of the largest piece's area are dropped after the cut.
    """
    area = float(mesh.area)
    if len(mesh.faces) == 0 or area <= 0:
        return TrimReport(0.0, 0)
    supported = vertex_support(mesh.vertices, points, spacing) <= trim_distance
    keep = supported[mesh.faces].all(axis=1)
    if not keep.any():
        raise EmptySurface("no part of the fitted surface lies near the input points; try "
                           "surface 'closed' or a larger trim_distance")
    if not keep.all():
        mesh.update_faces(keep)
        mesh.remove_unreferenced_vertices()
    pieces = drop_specks(mesh, min_piece_area_share)
    return TrimReport(1.0 - float(mesh.area) / area, pieces)
