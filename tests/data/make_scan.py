"""Rebuild tests/data/scans/bun000_8k.ply from the raw Stanford range scan bun000.xyz.

    python tests/data/make_scan.py DIR   # DIR holds bun000.xyz (the benchmark's scans folder)

8,000 of its about 40,000 points, drawn without replacement (seed 0), kept in scan order: one
open, partial view in metres, small enough for an end-to-end test on two cores.
"""

import sys
from pathlib import Path

import numpy as np

from recon.engine.formats import load_point_cloud
from recon.engine.formats.ply import write_point_cloud_ply

TARGET = Path(__file__).resolve().parent / "scans" / "bun000_8k.ply"
POINTS = 8000
SEED = 0


def main(scans: Path) -> None:
    cloud = load_point_cloud(scans / "bun000.xyz")
    rows = np.sort(np.random.default_rng(SEED).choice(len(cloud.points), POINTS, replace=False))
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.write_bytes(write_point_cloud_ply(cloud.points[rows].astype(np.float32)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
