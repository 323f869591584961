"""Decimation to a face budget (`target_faces`), for web pages, game engines and robots' maps.

Quadric edge collapse (fast-simplification: the Fast Quadric Mesh Simplification algorithm in C++,
ten times faster than Open3D's quadric decimation on 500,000 faces, bench/DECIMATION.md) keeps a
closed mesh closed once the rare back-to-back face pairs it leaves are dropped, and stays close to
it. Vertices are not merged afterwards: two may coincide where a thin part collapsed, and merging
them would join the surface there. The report says how far decimation moved the surface,
measured both ways between the two meshes on surface samples. Vertex colours and support values
are computed after decimation, from the input points, so they stay exact.
"""

from dataclasses import dataclass

import fast_simplification
import numpy as np
import trimesh

from recon.engine.metrics import point_to_mesh_distance

MOVE_SAMPLES = 20_000
"""Surface samples per side when measuring how far decimation moved the surface."""


@dataclass(frozen=True)
class DecimationReport:
    """What decimation did: faces before and after, and how far the surface moved (relative to
    the bounding-box diagonal, mean and maximum over samples of both meshes)."""

    faces_before: int
    faces_after: int
    moved_mean: float
    moved_max: float

    def as_metrics(self) -> dict:
        return {"faces_before": self.faces_before, "faces_after": self.faces_after,
                "moved_mean_relative": self.moved_mean, "moved_max_relative": self.moved_max}


def decimate(mesh: trimesh.Trimesh, target_faces: int, seed: int = 0) -> tuple[trimesh.Trimesh,
                                                                              DecimationReport]:
    """`mesh` decimated to about `target_faces` faces (unchanged when it has no more)."""
    before = len(mesh.faces)
    if before <= target_faces:
        return mesh, DecimationReport(before, before, 0.0, 0.0)
    result = simplified(mesh, target_faces)
    rng = np.random.default_rng(seed)
    diagonal = float(np.linalg.norm(mesh.extents))
    forward = point_to_mesh_distance(mesh, result.sample(MOVE_SAMPLES, seed=seed), rng)
    backward = point_to_mesh_distance(result, mesh.sample(MOVE_SAMPLES, seed=seed + 1), rng)
    moved = np.concatenate([forward, backward]) / diagonal
    return result, DecimationReport(before, len(result.faces), float(moved.mean()),
                                    float(moved.max()))


def simplified(mesh: trimesh.Trimesh, target_faces: int) -> trimesh.Trimesh:
    """`mesh` collapsed to about `target_faces` faces (see the module docstring)."""
    vertices, faces = fast_simplification.simplify(
        np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64),
        target_count=target_faces)
    result = trimesh.Trimesh(vertices, _without_fins(faces), process=False)
    result.remove_unreferenced_vertices()
    return result


def _without_fins(faces: np.ndarray) -> np.ndarray:
    """`faces` without the pairs of back-to-back faces on the same three vertices that an edge
    collapse occasionally leaves (each of their edges then has four faces, so a closed mesh
    stops being a manifold); dropping both restores it."""
    _, inverse, counts = np.unique(np.sort(faces, axis=1), axis=0, return_inverse=True,
                                   return_counts=True)
    return faces[counts[inverse.reshape(-1)] == 1]
