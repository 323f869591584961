"""Rebuild the web page's bundled examples (recon/api/web/examples) with fixed seeds.

    python -m tests.data.make_web_examples

- `bunny.ply`: 3,000 points of the benchmark's dense bunny (bench/data/bunny/dense, noisy, with
  the clean normals), drawn without replacement (seed 0);
- `torus.ply`: 3,000 noisy points of the coloured torus (tests/data/coloured_torus.py) in
  metres, with 8-bit colours, so the page shows a mesh with vertex colours.
"""

from pathlib import Path

import numpy as np

from recon.engine.formats import load_point_cloud
from recon.engine.formats.ply import write_ply, write_point_cloud_ply
from tests.data.coloured_torus import coloured_torus

REPO = Path(__file__).resolve().parents[2]
BUNNY = REPO / "bench" / "data" / "bunny" / "dense" / "points_normals.ply"
TARGET = REPO / "recon" / "api" / "web" / "examples"
POINTS = 3000
SEED = 0


def bunny() -> bytes:
    cloud = load_point_cloud(BUNNY)
    rows = np.sort(np.random.default_rng(SEED).choice(len(cloud.points), POINTS, replace=False))
    assert cloud.normals is not None
    return write_point_cloud_ply(cloud.points[rows].astype(np.float32),
                                 cloud.normals[rows].astype(np.float32))


def torus() -> bytes:
    cloud = coloured_torus(POINTS, seed=SEED)
    assert cloud.colours is not None
    rgb = np.round(cloud.colours * 255).astype(np.uint8)
    vertex: dict[str, np.ndarray] = {
        name: cloud.points[:, i].astype(np.float32) for i, name in enumerate("xyz")}
    vertex |= {name: rgb[:, i] for i, name in enumerate(("red", "green", "blue"))}
    return write_ply({"vertex": vertex})


def main() -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, blob in (("bunny.ply", bunny()), ("torus.ply", torus())):
        (TARGET / name).write_bytes(blob)
        print(f"wrote {TARGET / name} ({len(blob):,} bytes)")


if __name__ == "__main__":
    main()
