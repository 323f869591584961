"""Decimation libraries side by side: speed and how far each moves the surface.

    python -m bench.decimation [--shape DIR] [--targets 50000 10000] [--repeats 3]
                               [--out bench/DECIMATION.md]

Two meshes: a 500,000-face piece of a scanned mesh (the shape's ground truth, cut by x to its
first 500,000 faces: open, uneven, as scanners make them; the dragon by default, from
`python -m bench.make_data`) and the benchmark bunny's closed ground truth subdivided once
(224,688 faces), to see whether a closed mesh stays closed. The engine's library
(fast-simplification, recon.engine.decimation) runs beside Open3D's quadric decimation; times are
medians of --repeats runs, surface movement is measured both ways on 20,000 samples, relative to
the bounding-box diagonal.
"""

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median

import numpy as np
import trimesh

from bench.data import DEFAULT_DATA_DIR, REPO_ROOT
from bench.make_data import GROUND_TRUTH_MESH_FILE
from recon.engine.decimation import simplified
from recon.engine.metrics import point_to_mesh_distance

PIECE_FACES = 500_000
SAMPLES = 20_000




def _open3d(mesh: trimesh.Trimesh, target: int) -> trimesh.Trimesh:
    import open3d as o3d

    o3d_mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(mesh.vertices),
                                         o3d.utility.Vector3iVector(mesh.faces))
    out = o3d_mesh.simplify_quadric_decimation(target_number_of_triangles=target)
    return trimesh.Trimesh(np.asarray(out.vertices), np.asarray(out.triangles), process=False)


LIBRARIES: dict[str, Callable[[trimesh.Trimesh, int], trimesh.Trimesh]] = {
    "fast-simplification (the engine's)": simplified,
    "open3d": _open3d,
}


def _moved(original: trimesh.Trimesh, result: trimesh.Trimesh) -> tuple[float, float]:
    rng = np.random.default_rng(0)
    diagonal = float(np.linalg.norm(original.extents))
    forward = point_to_mesh_distance(original, result.sample(SAMPLES, seed=0), rng)
    backward = point_to_mesh_distance(result, original.sample(SAMPLES, seed=1), rng)
    moved = np.concatenate([forward, backward]) / diagonal
    return float(moved.mean()), float(moved.max())


def _load(path: Path) -> trimesh.Trimesh:
    mesh = trimesh.load(path, force="mesh", process=True)
    assert isinstance(mesh, trimesh.Trimesh)
    return mesh


def meshes(shape: Path) -> dict[str, trimesh.Trimesh]:
    scanned = _load(shape / GROUND_TRUTH_MESH_FILE)
    order = np.argsort(scanned.triangles_center[:, 0], kind="stable")
    piece = scanned.submesh([np.sort(order[:PIECE_FACES])], append=True)
    assert isinstance(piece, trimesh.Trimesh)
    bunny = _load(DEFAULT_DATA_DIR / "bunny" / GROUND_TRUTH_MESH_FILE)
    return {f"{shape.name} piece (open)": piece, "bunny subdivided (closed)": bunny.subdivide()}


def run(shape: Path, targets: list[int], repeats: int) -> list[str]:
    rows = ["| mesh | faces | target | library | seconds | faces after | moved mean | "
            "moved max | watertight before / after |", "|" + "---|" * 9]
    for name, mesh in meshes(shape).items():
        for target in targets:
            for library, simplify in LIBRARIES.items():
                seconds = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    result = simplify(mesh, target)
                    seconds.append(time.perf_counter() - start)
                mean, worst = _moved(mesh, result)
                rows.append(
                    f"| {name} | {len(mesh.faces):,} | {target:,} | {library} | "
                    f"{median(seconds):.2f} | {len(result.faces):,} | {mean:.5%} | {worst:.4%} | "
                    f"{'yes' if mesh.is_watertight else 'no'} / "
                    f"{'yes' if result.is_watertight else 'no'} |")
                print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.decimation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", type=Path, default=REPO_ROOT / "bench" / "heldout" / "dragon")
    parser.add_argument("--targets", nargs="+", type=int, default=[50_000, 10_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "DECIMATION.md")
    args = parser.parse_args(argv)
    rows = run(args.shape, args.targets, args.repeats)
    command = "python -m bench.decimation " + " ".join(sys.argv[1:] if argv is None else argv)
    args.out.write_text("\n".join([
        "# Decimation libraries", "", f"Made by `{command.strip()}` (medians of "
        f"{args.repeats} runs; moved: distances between the two surfaces both ways on "
        f"{SAMPLES:,} samples each, relative to the bounding-box diagonal).", "", *rows, ""]))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
