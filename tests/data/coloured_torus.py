"""A coloured torus: a smooth colour field over its two angles, and noisy samples of it whose
colours carry sensor noise and are stored as 8 bits, as a scanner's would be.

    python -m tests.data.coloured_torus   # writes coloured_torus_mm.ply (millimetres, Z up)
"""

import numpy as np
import trimesh

from recon.engine.formats.ply import write_ply
from recon.engine.formats.pointcloud import PointCloud
from tests.data import TEST_DATA

MAJOR, MINOR = 0.35, 0.12
"""Radii in metres; the torus's axis is z."""
SHIPPED = TEST_DATA / "coloured_torus_mm.ply"
"""6,000 points in millimetres, 8-bit colours."""


def colour_field(points: np.ndarray) -> np.ndarray:
    """(n, 3) sRGB colour in 0-1 at points on (or near) the torus (metres)."""
    theta = np.arctan2(points[:, 1], points[:, 0])
    ring = np.hypot(points[:, 0], points[:, 1]) - MAJOR
    phi = np.arctan2(points[:, 2], ring)
    return np.stack([0.5 + 0.4 * np.cos(theta), 0.5 + 0.4 * np.sin(theta),
                     0.5 + 0.4 * np.cos(phi)], axis=1)


def coloured_torus(n: int, seed: int = 0) -> PointCloud:
    """Noisy samples (metres) with 8-bit colours carrying noise of 8/255."""
    rng = np.random.default_rng(seed)
    surface = trimesh.creation.torus(major_radius=MAJOR, minor_radius=MINOR)
    points, _ = trimesh.sample.sample_surface(surface, n, seed=seed)
    colours = colour_field(points) + rng.normal(0, 8 / 255, (n, 3))
    colours = np.round(np.clip(colours, 0, 1) * 255) / 255
    noisy = points + rng.normal(0, 0.002, points.shape)
    return PointCloud(points=noisy, colours=colours.astype(np.float32))


def main() -> None:
    cloud = coloured_torus(6000)
    millimetres = cloud.points * 1000
    rgb = np.round(cloud.colours * 255).astype(np.uint8)
    vertex = {name: millimetres[:, i].astype(np.float32) for i, name in enumerate("xyz")}
    vertex |= {name: rgb[:, i] for i, name in enumerate(("red", "green", "blue"))}
    SHIPPED.write_bytes(write_ply({"vertex": vertex}))
    print(f"wrote {SHIPPED}")


if __name__ == "__main__":
    main()
