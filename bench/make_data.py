"""Turn any ground-truth mesh into a benchmark shape folder laid out like ``bench/data/bunny``.

The presets were tuned on the bunny; a shape built here from another scan (the Stanford dragon,
say) checks that they were not tuned to it. The recipe is the bunny's (bench/data/README.md): the
bounding box centred at the origin with its longest side 1, 100k area-uniform ground-truth samples
with face normals, and the three input regimes with their point counts and noise, at fixed seeds.

    python -m bench.make_data MESH --name NAME [--data DIR] [--seed N] [--force]

MESH is any file trimesh reads (PLY, OBJ, STL, OFF, GLB), optionally gzip-compressed (``.gz``).
Then ``python -m bench --data DIR --shape NAME`` benchmarks it.
"""

import argparse
import gzip
import io
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh

from bench.data import GROUND_TRUTH_FILE, POINTS_FILE, POINTS_NORMALS_FILE, REPO_ROOT
from recon.engine.formats.ply import write_point_cloud_ply

DEFAULT_OUT_DIR = REPO_ROOT / "bench" / "heldout"
"""Where shapes go unless --data says otherwise (git-ignored: rebuilt from the source mesh)."""
GROUND_TRUTH_MESH_FILE = "gt_mesh.ply"
TRANSFORM_FILE = "transform.json"
GROUND_TRUTH_SAMPLES = 100_000


@dataclass(frozen=True)
class Regime:
    """How one input regime is drawn from the surface."""

    points: int
    noise_sigma: float
    """Standard deviation of the Gaussian noise per coordinate, in the unit-cube frame."""


REGIME_RECIPES = {
    "sparse": Regime(1_000, 0.0),
    "sparse_noisy": Regime(1_000, 0.005),
    "dense": Regime(20_000, 0.0025),
}
"""The regimes of bench/data/README.md (its bunny was made this way)."""


def load_mesh(path: Path) -> trimesh.Trimesh:
    """A triangle mesh from `path` (``.gz`` is decompressed first); raises ValueError if empty."""
    if path.suffix == ".gz":
        data = gzip.decompress(path.read_bytes())
        file_type = Path(path.stem).suffix.lstrip(".")
        loaded = trimesh.load(io.BytesIO(data), file_type=file_type, force="mesh")
    else:
        loaded = trimesh.load(path, force="mesh")
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ValueError(f"{path}: no triangles found; give a mesh file (PLY, OBJ, STL, OFF, GLB)")
    return loaded


def normalise(mesh: trimesh.Trimesh) -> tuple[trimesh.Trimesh, np.ndarray, float]:
    """The mesh with its bounding box centred at the origin and longest side 1, and that map's
    centre and scale (normalised = (original - centre) / scale)."""
    low, high = mesh.bounds
    centre = (low + high) / 2.0
    scale = float(np.max(high - low))
    if scale <= 0.0:
        raise ValueError("the mesh has no extent (all vertices coincide)")
    unit = mesh.copy()
    unit.apply_translation(-centre)
    unit.apply_scale(1.0 / scale)
    return unit, centre, scale


def sample_surface(mesh: trimesh.Trimesh, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` area-uniform surface points and their faces' unit normals."""
    points, faces = trimesh.sample.sample_surface(mesh, count, seed=seed)
    return np.asarray(points, dtype=np.float64), np.asarray(mesh.face_normals[faces])


def build_shape(mesh_path: Path, out_dir: Path, seed: int = 0) -> dict:
    """Write gt_mesh.ply, gt_samples_100k.ply, transform.json and every regime into `out_dir`.

    Each regime draws its own points (seed + its index), as the bunny's regimes do; the noise is
    added to the positions only, so ``points_normals.ply`` carries the clean normals. The folder is
    built beside `out_dir` and renamed into place at the end, so a failure never leaves a partial
    shape for the benchmark to read (an existing `out_dir` is replaced only then).

    Returns
    -------
    The transform written to transform.json.
    """
    mesh, centre, scale = normalise(load_mesh(mesh_path))
    transform = {"source_file": mesh_path.name, "centre": centre.tolist(), "scale": scale,
                 "seed": seed, "note": "normalised = (original - centre) / scale"}
    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _write_shape(mesh, transform, staging, seed)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    return transform


def _write_shape(mesh: trimesh.Trimesh, transform: dict, out_dir: Path, seed: int) -> None:
    """Every file of `build_shape` into `out_dir`."""
    (out_dir / TRANSFORM_FILE).write_text(json.dumps(transform, indent=1) + "\n", encoding="utf-8")
    mesh.export(out_dir / GROUND_TRUTH_MESH_FILE)
    samples, normals = sample_surface(mesh, GROUND_TRUTH_SAMPLES, seed)
    (out_dir / GROUND_TRUTH_FILE).write_bytes(write_point_cloud_ply(samples, normals))
    for index, (name, regime) in enumerate(REGIME_RECIPES.items(), start=1):
        points, clean_normals = sample_surface(mesh, regime.points, seed + index)
        rng = np.random.default_rng(seed + index)
        points = points + rng.normal(0.0, regime.noise_sigma, points.shape)
        regime_dir = out_dir / name
        regime_dir.mkdir(exist_ok=True)
        (regime_dir / POINTS_FILE).write_bytes(write_point_cloud_ply(points))
        (regime_dir / POINTS_NORMALS_FILE).write_bytes(write_point_cloud_ply(points, clean_normals))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.make_data", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mesh", type=Path, help="ground-truth mesh file")
    parser.add_argument("--name", required=True, help="shape name: the folder under --data")
    parser.add_argument("--data", type=Path, default=DEFAULT_OUT_DIR,
                        help=f"data folder (default {DEFAULT_OUT_DIR.relative_to(REPO_ROOT)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="overwrite an existing shape folder")
    args = parser.parse_args(argv)
    out_dir = args.data / args.name
    if out_dir.exists() and not args.force:
        print(f"error: {out_dir} exists; pass --force to rebuild it", file=sys.stderr)
        return 2
    try:
        build_shape(args.mesh, out_dir, args.seed)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {out_dir}; benchmark it with: python -m bench --data {args.data} "
          f"--shape {args.name} --out bench/out_{args.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
