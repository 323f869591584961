"""Rebuild tests/data/bunny from the benchmark's bunny (bench/data/bunny): small, seeded copies.

    python tests/data/make_bunny.py   # needs: pip install fast-simplification

- each regime's `points.ply` / `points_normals.ply`, at most 1,000 points (the dense cloud's
  20,000 subsampled without replacement, seed 0);
- `gt_mesh.ply`: the ground-truth mesh decimated to about 5,000 faces (quadric error), still
  watertight;
- `gt_samples_10k.ply`: 10,000 of the 100,000 ground-truth samples with their normals (seed 0).
"""

from pathlib import Path

import fast_simplification
import numpy as np
import trimesh

from recon.engine.formats import load_ground_truth, load_point_cloud
from recon.engine.formats.ply import write_ply, write_point_cloud_ply

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "bench" / "data" / "bunny"
TARGET = Path(__file__).resolve().parent / "bunny"
REGIMES = ("sparse", "sparse_noisy", "dense")
MAX_POINTS = 1000
MESH_FACES = 5000
GT_SAMPLES = 10_000
SEED = 0


def subsample_regime(regime: str) -> None:
    cloud = load_point_cloud(SOURCE / regime / "points_normals.ply")
    rows = np.arange(len(cloud.points))
    if len(rows) > MAX_POINTS:
        rows = np.sort(np.random.default_rng(SEED).choice(rows, MAX_POINTS, replace=False))
    folder = TARGET / regime
    folder.mkdir(parents=True, exist_ok=True)
    points = cloud.points[rows].astype(np.float32)
    normals = cloud.normals[rows].astype(np.float32)
    (folder / "points.ply").write_bytes(write_point_cloud_ply(points))
    (folder / "points_normals.ply").write_bytes(write_point_cloud_ply(points, normals))


def decimate_mesh() -> None:
    gt = load_ground_truth(SOURCE / "gt_mesh.ply")
    points, faces = fast_simplification.simplify(
        gt.points.astype(np.float32), gt.faces.astype(np.int32),
        target_reduction=1.0 - MESH_FACES / len(gt.faces))
    mesh = trimesh.Trimesh(points, faces, process=True)
    if not mesh.is_watertight:
        raise SystemExit("the decimated mesh is not watertight; change MESH_FACES")
    (TARGET / "gt_mesh.ply").write_bytes(write_ply({
        "vertex": {axis: mesh.vertices[:, i].astype(np.float32) for i, axis in enumerate("xyz")},
        "face": {"vertex_indices": mesh.faces.astype(np.int32)},
    }))


def subsample_ground_truth() -> None:
    gt = load_ground_truth(SOURCE / "gt_samples_100k.ply")
    rows = np.sort(np.random.default_rng(SEED).choice(len(gt.points), GT_SAMPLES, replace=False))
    blob = write_point_cloud_ply(gt.points[rows].astype(np.float32),
                                 gt.normals[rows].astype(np.float32))
    (TARGET / "gt_samples_10k.ply").write_bytes(blob)


if __name__ == "__main__":
    for regime in REGIMES:
        subsample_regime(regime)
    decimate_mesh()
    subsample_ground_truth()
