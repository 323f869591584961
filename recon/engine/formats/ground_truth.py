"""Ground-truth surfaces for evaluation: loading a mesh or point set and sampling it.

A ground truth is either a triangle mesh (PLY with a face element, OBJ, STL, OFF) or a point set
(PLY without faces, XYZ/PTS, NPY). Meshes are sampled uniformly by area with face normals, so the
metrics compare like with like whatever the mesh's tessellation.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from recon.engine.errors import InvalidGroundTruth, InvalidPointCloud
from recon.engine.formats.ply import PlyError, PlyList, read_ply
from recon.engine.formats.pointcloud import load_point_cloud, sniff_format

#: Mesh formats read through trimesh (PLY is read by recon.engine.formats.ply).
TRIMESH_FORMATS = ("obj", "stl", "off")

SUPPORTED_GROUND_TRUTH_FORMATS = ("ply", *TRIMESH_FORMATS, "xyz", "pts", "npy")

#: Largest point set accepted as a ground truth (bigger ones are subsampled with a warning).
MAX_GROUND_TRUTH_POINTS = 10_000_000

#: Default number of surface samples used by the ground-truth metrics (the literature's 100k).
DEFAULT_SAMPLES = 100_000


@dataclass(frozen=True)
class GroundTruth:
    """A reference surface.

    Attributes
    ----------
    points : (n, 3) float64 mesh vertices or the point set
    normals : (n, 3) float64 or None
    faces : (m, 3) int64 triangles indexing ``points``, or None for a point set
    """

    points: np.ndarray
    normals: np.ndarray | None = None
    faces: np.ndarray | None = None


def _read(source: str | os.PathLike | bytes, format: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        data, suffix = bytes(source), ""
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as error:
            raise InvalidGroundTruth(f"cannot read {source}: {error.strerror}") from None
        suffix = Path(source).suffix.lower().lstrip(".")
    fmt = (format or suffix).lower()
    if format is not None and fmt not in SUPPORTED_GROUND_TRUTH_FORMATS:
        raise ValueError(f"unknown ground-truth format {format!r}; valid formats: "
                         f"{', '.join(SUPPORTED_GROUND_TRUTH_FORMATS)}")
    if not data.strip():
        raise InvalidGroundTruth("the ground-truth file is empty")
    if fmt not in SUPPORTED_GROUND_TRUTH_FORMATS:
        try:
            fmt = sniff_format(data)
        except InvalidPointCloud as error:
            raise InvalidGroundTruth(str(error).replace("point cloud", "ground truth")) from None
    return data, fmt


def load_ground_truth(source: str | os.PathLike | bytes, *,
                      format: str | None = None) -> GroundTruth:
    """Read a ground-truth mesh or point set.

    Parameters
    ----------
    source : a path (format from its suffix) or bytes (PLY/NPY/XYZ sniffed; pass ``format`` for
        OBJ/STL/OFF bytes).
    format : one of SUPPORTED_GROUND_TRUTH_FORMATS.

    Raises
    ------
    InvalidGroundTruth
        The content is not a readable mesh or point set.
    """
    data, fmt = _read(source, format)
    if fmt == "ply":
        gt = _from_ply(data)
    elif fmt in TRIMESH_FORMATS:
        gt = _from_trimesh(data, fmt)
    else:
        try:
            cloud = load_point_cloud(data, format=fmt, max_points=MAX_GROUND_TRUTH_POINTS)
        except InvalidPointCloud as error:
            raise InvalidGroundTruth(f"ground truth: {error.message}") from None
        gt = GroundTruth(cloud.points, cloud.normals)
    return _checked(gt)


def _from_ply(data: bytes) -> GroundTruth:
    try:
        ply = read_ply(data)
    except PlyError as error:
        raise InvalidGroundTruth(f"ground truth: {error}") from None
    faces = None
    if "face" in ply and ply["face"].count:
        lists = [v for k, v in ply["face"].properties.items()
                 if k in ("vertex_indices", "vertex_index") and isinstance(v, PlyList)]
        if not lists:
            raise InvalidGroundTruth("ground truth: the PLY face element has no vertex_indices "
                                     "list property")
        faces = _triangulate(lists[0])
    try:
        cloud = load_point_cloud(data, format="ply", max_points=MAX_GROUND_TRUTH_POINTS) \
            if faces is None else None
    except InvalidPointCloud as error:
        raise InvalidGroundTruth(f"ground truth: {error.message}") from None
    if cloud is not None:
        return GroundTruth(cloud.points, cloud.normals)
    if "vertex" not in ply or not all(k in ply["vertex"] for k in "xyz"):
        raise InvalidGroundTruth("ground truth: the PLY mesh has no vertex x/y/z properties")
    vertex = ply["vertex"]
    points = np.stack([np.asarray(vertex[k], np.float64) for k in "xyz"], axis=1)
    return GroundTruth(points, None, faces)


def _triangulate(faces: PlyList) -> np.ndarray:
    """Polygons (PLY lists) -> (m, 3) int64 triangles, fanning any polygon with > 3 corners."""
    if faces.is_uniform():
        table = faces.as_array().astype(np.int64)
        return table[:, [0, 1, 2]] if table.shape[1] == 3 else _fan(table)
    triangles = [_fan(np.asarray(row, np.int64)[None]) for row in faces.rows() if len(row) >= 3]
    return np.concatenate(triangles) if triangles else np.zeros((0, 3), np.int64)


def _fan(polygons: np.ndarray) -> np.ndarray:
    """(m, k) polygons -> (m * (k - 2), 3) triangles sharing each polygon's first corner."""
    k = polygons.shape[1]
    if k < 3:
        return np.zeros((0, 3), np.int64)
    parts = [polygons[:, [0, i, i + 1]] for i in range(1, k - 1)]
    return np.stack(parts, axis=1).reshape(-1, 3)


def _from_trimesh(data: bytes, fmt: str) -> GroundTruth:
    try:
        mesh = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh", process=False)
    except Exception as error:  # trimesh raises many types for bad files
        raise InvalidGroundTruth(f"ground truth: cannot read the {fmt.upper()} mesh "
                                 f"({type(error).__name__}: {error})") from None
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise InvalidGroundTruth(f"ground truth: the {fmt.upper()} file holds no triangles")
    return GroundTruth(np.asarray(mesh.vertices, np.float64), None,
                       np.asarray(mesh.faces, np.int64))


def _checked(gt: GroundTruth) -> GroundTruth:
    if len(gt.points) == 0:
        raise InvalidGroundTruth("ground truth: no vertices or points")
    if not np.isfinite(gt.points).all():
        raise InvalidGroundTruth("ground truth: some coordinates are NaN or infinite")
    if gt.faces is not None:
        if len(gt.faces) == 0:
            raise InvalidGroundTruth("ground truth: the mesh has no triangles")
        if gt.faces.min() < 0 or gt.faces.max() >= len(gt.points):
            raise InvalidGroundTruth(f"ground truth: face indices reach {int(gt.faces.max())} "
                                     f"but the mesh has {len(gt.points)} vertices")
        if triangle_areas(gt.points, gt.faces).sum() <= 0:
            raise InvalidGroundTruth("ground truth: every triangle has zero area")
    return gt


def triangle_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Areas of triangles: vertices (n, 3), faces (m, 3) -> (m,) float64."""
    corners = vertices[faces]
    return 0.5 * np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0],
                                         corners[:, 2] - corners[:, 0]), axis=1)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, n: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample a triangle mesh uniformly by area.

    Parameters
    ----------
    vertices : (v, 3) float
    faces : (m, 3) int
    n : number of samples
    rng : the generator to draw from

    Returns
    -------
    points : (n, 3) float64
    normals : (n, 3) float64 unit face normals of the sampled triangles
    face_index : (n,) int64 triangle of each sample
    """
    vertices = np.asarray(vertices, np.float64)
    corners = vertices[np.asarray(faces)]
    cross = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    doubled_area = np.linalg.norm(cross, axis=1)
    cumulative = np.cumsum(doubled_area)
    face_index = np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right")
    face_index = np.minimum(face_index, len(faces) - 1)
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1.0  # reflect into the triangle instead of rejecting
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    a, b, c = corners[face_index, 0], corners[face_index, 1], corners[face_index, 2]
    points = a + u[:, None] * (b - a) + v[:, None] * (c - a)
    lengths = np.maximum(doubled_area[face_index], np.finfo(float).tiny)
    normals = cross[face_index] / lengths[:, None]
    return points, normals, face_index


def sample_ground_truth(gt: GroundTruth, n: int = DEFAULT_SAMPLES,
                        seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Evaluation samples of a ground truth.

    Meshes are sampled uniformly by area (face normals); point sets with more than ``n`` points
    are subsampled without replacement, smaller ones are returned whole.

    Returns
    -------
    points : (k, 3) float64 with k = n for meshes, min(n, len(points)) for point sets
    normals : (k, 3) float64 or None
    """
    rng = np.random.default_rng(seed)
    if gt.faces is not None and len(gt.faces):
        points, normals, _ = sample_surface(gt.points, gt.faces, n, rng)
        return points, normals
    if len(gt.points) <= n:
        return gt.points, gt.normals
    keep = np.sort(rng.choice(len(gt.points), n, replace=False))
    return gt.points[keep], None if gt.normals is None else gt.normals[keep]
