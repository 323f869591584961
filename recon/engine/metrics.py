"""Quality metrics of a reconstructed mesh: fit to the input, mesh facts and, given a ground
truth, the literature's surface metrics (Chamfer L1/L2, normal consistency, F-score, Hausdorff).

One implementation shared by the engine, the service and the benchmark (docs/ENGINE.md, Metrics).
Every returned value is a plain Python int, float, bool or None, so the dicts are JSON-ready.
"""

from __future__ import annotations

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from recon.engine.formats.ground_truth import (
    DEFAULT_SAMPLES,
    GroundTruth,
    sample_ground_truth,
    sample_surface,
)
from recon.engine.mesh_cleanup import face_components

#: Surface samples of the mesh for mesh -> input distances and for candidate-face search.
FIT_SURFACE_SAMPLES = 100_000

#: Mesh farther than this share of the input's bbox diagonal from every input point is "far".
FAR_FROM_INPUT = 0.02

#: Nearest surface anchors (samples and face centroids) whose faces are tested exactly per point.
FIT_CANDIDATE_FACES = 8

#: Input points measured against the mesh at most (larger clouds: a seeded subset).
FIT_MAX_POINTS = 500_000

#: Points per chunk of exact point-triangle distances (bounds memory to ~100 MB).
FIT_CHUNK_POINTS = 50_000

#: F-score thresholds, in unit-cube units (fraction of the ground truth's longest bbox side).
FSCORE_TAUS = (0.01, 0.005)

#: The literature reports Chamfer and Hausdorff multiplied by 100 in the unit-cube frame.
UNIT_CUBE_PERCENT = 100.0


def _nearest(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (k,) and index (k,) of each source point's nearest target point."""
    distance, index = cKDTree(target).query(source, k=1, workers=-1)
    return distance, index


def point_to_mesh_distance(mesh: trimesh.Trimesh, points: np.ndarray,
                           rng: np.random.Generator) -> np.ndarray:
    """Distance from each point to the mesh surface.

    The closest point is searched exactly on the faces of the FIT_CANDIDATE_FACES nearest
    surface anchors (face centroids plus area-weighted samples), so the result is exact unless
    the true closest face is not among them, and it never underestimates.

    Parameters
    ----------
    mesh : triangle mesh with at least one face
    points : (n, 3) float
    rng : generator for the anchor samples

    Returns
    -------
    (n,) float64 distances in the mesh's units
    """
    faces = np.asarray(mesh.faces)
    corners = np.asarray(mesh.vertices, np.float64)[faces]
    samples, _, sample_faces = sample_surface(mesh.vertices, faces, FIT_SURFACE_SAMPLES, rng)
    anchors = np.concatenate([corners.mean(axis=1), samples])
    anchor_faces = np.concatenate([np.arange(len(faces)), sample_faces])
    k = min(FIT_CANDIDATE_FACES, len(anchors))
    _, nearest = cKDTree(anchors).query(points, k=k, workers=-1)
    candidates = anchor_faces[nearest.reshape(len(points), k)]
    distances = np.empty(len(points))
    for start in range(0, len(points), FIT_CHUNK_POINTS):
        block = slice(start, start + FIT_CHUNK_POINTS)
        chunk = candidates[block].reshape(-1)
        queries = np.repeat(points[block], k, axis=0)
        closest = trimesh.triangles.closest_point(corners[chunk], queries)
        distances[block] = np.linalg.norm(closest - queries, axis=1).reshape(-1, k).min(axis=1)
    return distances


def fit_to_input_metrics(mesh: trimesh.Trimesh, points: np.ndarray, *, seed: int = 0) -> dict:
    """How well the mesh fits the input points (input units and relative to the bbox diagonal).

    Parameters
    ----------
    mesh : the reconstruction, in input coordinates, with at least one face
    points : (n, 3) float input points

    Returns
    -------
    dict with mean, p95, max (input -> mesh), mesh_to_input_mean, chamfer (mean of the two
    one-sided means), bbox_diagonal, ``relative`` (the distances / bbox_diagonal), and
    far_area_share: the share of the mesh's area farther than FAR_FROM_INPUT diagonals from every
    input point (a closed bubble behind an open scan, or blobs, show up there).
    """
    if len(mesh.faces) == 0:
        raise ValueError("the mesh has no faces; fit metrics need a surface")
    rng = np.random.default_rng(seed)
    points = np.asarray(points, np.float64)
    if len(points) > FIT_MAX_POINTS:
        points = points[rng.choice(len(points), FIT_MAX_POINTS, replace=False)]
    to_mesh = point_to_mesh_distance(mesh, points, rng)
    samples, _, _ = sample_surface(mesh.vertices, mesh.faces, FIT_SURFACE_SAMPLES, rng)
    to_input, _ = _nearest(samples, points)
    distances = {
        "mean": float(to_mesh.mean()),
        "p95": float(np.percentile(to_mesh, 95)),
        "max": float(to_mesh.max()),
        "mesh_to_input_mean": float(to_input.mean()),
        "chamfer": float(0.5 * (to_mesh.mean() + to_input.mean())),
    }
    diagonal = float(np.linalg.norm(points.max(axis=0) - points.min(axis=0)))
    relative = {k: (v / diagonal if diagonal > 0 else None) for k, v in distances.items()}
    far = float((to_input > FAR_FROM_INPUT * diagonal).mean())
    return {**distances, "bbox_diagonal": diagonal, "relative": relative, "far_area_share": far}


def mesh_facts(mesh: trimesh.Trimesh) -> dict:
    """Counts and topology of a mesh.

    Returns
    -------
    dict: vertices, faces, watertight, components (vertex-connected pieces), euler
    (V - E + F over referenced vertices), genus (closed orientable meshes only, else None),
    area, volume (watertight only, else None; negative means inward-facing triangles),
    largest_component_area_share.
    """
    faces = np.asarray(mesh.faces)
    used = np.unique(faces)
    edges = mesh.edges_unique
    euler = len(used) - len(edges) + len(faces)
    labels = face_components(faces, len(mesh.vertices)) if len(faces) else np.zeros(0, int)
    components = len(np.unique(labels))
    area = float(mesh.area)
    largest = 0.0
    if len(faces) and area > 0:
        _, labels = np.unique(labels, return_inverse=True)
        by_piece = np.bincount(labels, weights=mesh.area_faces)
        largest = float(by_piece.max() / by_piece.sum())  # one summation: a share, never > 1
    watertight = bool(mesh.is_watertight)
    genus = None
    if watertight and mesh.is_winding_consistent and (2 * components - euler) % 2 == 0:
        genus = int((2 * components - euler) // 2)
    return {
        "vertices": int(len(mesh.vertices)),
        "faces": int(len(faces)),
        "watertight": watertight,
        "components": int(components),
        "euler": int(euler),
        "genus": genus,
        "area": area,
        "volume": float(mesh.volume) if watertight else None,
        "largest_component_area_share": largest,
    }




def surface_distance_metrics(pred_points: np.ndarray, pred_normals: np.ndarray | None,
                             gt_points: np.ndarray, gt_normals: np.ndarray | None, *,
                             unit_scale: float) -> dict:
    """Chamfer, normal consistency, F-score and Hausdorff between two point samples.

    Parameters
    ----------
    pred_points : (n, 3) samples of the reconstruction, input units
    pred_normals : (n, 3) unit normals or None
    gt_points : (m, 3) samples of the ground truth, input units
    gt_normals : (m, 3) unit normals or None
    unit_scale : input units per unit-cube unit (the ground truth's longest bbox side)

    Returns
    -------
    dict: cd1_x100, cd2_x100 (unit-cube frame), cd1, cd2 (input units), nc (None without both
    normals), fscore_0.01, fscore_0.005 (thresholds in the unit-cube frame), hausdorff (input
    units), hausdorff_x100.
    """
    if unit_scale <= 0:
        raise ValueError(f"unit_scale must be positive, got {unit_scale}")
    pred_to_gt, pred_nn = _nearest(pred_points, gt_points)
    gt_to_pred, gt_nn = _nearest(gt_points, pred_points)
    cd1 = 0.5 * (pred_to_gt.mean() + gt_to_pred.mean())
    cd2 = 0.5 * (np.square(pred_to_gt).mean() + np.square(gt_to_pred).mean())
    hausdorff = max(pred_to_gt.max(), gt_to_pred.max())
    out: dict = {
        "cd1_x100": float(cd1 / unit_scale * UNIT_CUBE_PERCENT),
        "cd2_x100": float(cd2 / unit_scale**2 * UNIT_CUBE_PERCENT),
        "cd1": float(cd1),
        "cd2": float(cd2),
        "nc": None,
    }
    if pred_normals is not None and gt_normals is not None:
        forward = np.abs(np.sum(pred_normals * gt_normals[pred_nn], axis=1)).mean()
        backward = np.abs(np.sum(gt_normals * pred_normals[gt_nn], axis=1)).mean()
        out["nc"] = float(0.5 * (forward + backward))
    for tau in FSCORE_TAUS:
        out[f"fscore_{tau}"] = _fscore(pred_to_gt, gt_to_pred, tau * unit_scale)
    out["hausdorff"] = float(hausdorff)
    out["hausdorff_x100"] = float(hausdorff / unit_scale * UNIT_CUBE_PERCENT)
    return out


def _fscore(pred_to_gt: np.ndarray, gt_to_pred: np.ndarray, threshold: float) -> float:
    """Harmonic mean of precision (pred within threshold) and recall (gt within threshold)."""
    precision = float(np.mean(pred_to_gt <= threshold))
    recall = float(np.mean(gt_to_pred <= threshold))
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def ground_truth_metrics(mesh: trimesh.Trimesh, gt: GroundTruth, *,
                         n_samples: int = DEFAULT_SAMPLES, seed: int = 0) -> dict:
    """Surface metrics of a reconstruction against a ground truth (both in input units).

    The unit-cube frame is the ground truth's: scale = its bounding box's longest side.
    The mesh is sampled with a generator seeded by ``(seed, 1)`` and the ground truth with
    ``seed``, so the two sample sets are independent draws.

    Returns
    -------
    surface_distance_metrics' dict plus ``n_samples``.
    """
    if len(mesh.faces) == 0:
        raise ValueError("the mesh has no faces; ground-truth metrics need a surface")
    extent = gt.points.max(axis=0) - gt.points.min(axis=0)
    unit_scale = float(extent.max())
    gt_points, gt_normals = sample_ground_truth(gt, n_samples, seed)
    pred_points, pred_normals, _ = sample_surface(mesh.vertices, mesh.faces, n_samples,
                                                  np.random.default_rng([seed, 1]))
    out = surface_distance_metrics(pred_points, pred_normals, gt_points, gt_normals,
                                   unit_scale=unit_scale)
    out["n_samples"] = int(n_samples)
    return out
