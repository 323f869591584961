"""Synthetic example point clouds with exact normals (sphere, torus), for demos and tests."""

from collections.abc import Callable

import numpy as np

SPHERE_RADIUS = 0.5
"""Radius of the example sphere."""
TORUS_MAJOR_RADIUS = 0.35
"""Distance from the torus centre to the centre of its tube."""
TORUS_MINOR_RADIUS = 0.15
"""Radius of the torus tube."""


def sphere(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points uniform on the sphere of radius SPHERE_RADIUS; returns (n, 3) points, normals."""
    normals = rng.standard_normal((n, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return SPHERE_RADIUS * normals, normals


def torus(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points uniform by area on a torus around z; returns (n, 3) points, normals."""
    big, small = TORUS_MAJOR_RADIUS, TORUS_MINOR_RADIUS
    u = rng.uniform(0, 2 * np.pi, 4 * n)
    v = rng.uniform(0, 2 * np.pi, 4 * n)
    # Area density is proportional to (R + r cos v): rejection sampling makes it uniform.
    keep = rng.uniform(0, big + small, 4 * n) < big + small * np.cos(v)
    u, v = u[keep][:n], v[keep][:n]
    normals = np.stack([np.cos(v) * np.cos(u), np.cos(v) * np.sin(u), np.sin(v)], axis=1)
    centres = np.stack([big * np.cos(u), big * np.sin(u), np.zeros_like(u)], axis=1)
    return centres + small * normals, normals


def torus_distance(points: np.ndarray) -> np.ndarray:
    """Unsigned distance of (n, 3) points to the example torus; returns (n,)."""
    ring = np.hypot(points[:, 0], points[:, 1]) - TORUS_MAJOR_RADIUS
    return np.abs(np.hypot(ring, points[:, 2]) - TORUS_MINOR_RADIUS)


def sphere_distance(points: np.ndarray) -> np.ndarray:
    """Unsigned distance of (n, 3) points to the example sphere; returns (n,)."""
    return np.abs(np.linalg.norm(points, axis=1) - SPHERE_RADIUS)


SHAPES: dict[str, Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "sphere": sphere,
    "torus": torus,
}


def example_cloud(
    shape: str, n: int = 2000, noise: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Points and normals of a named example shape, with optional Gaussian noise on the points.

    Raises
    ------
    ValueError
        On an unknown shape (the message lists the valid names).
    """
    if shape not in SHAPES:
        raise ValueError(f"unknown example {shape!r}; valid examples: {', '.join(SHAPES)}")
    rng = np.random.default_rng(seed)
    points, normals = SHAPES[shape](n, rng)
    if noise > 0:
        points = points + noise * rng.standard_normal(points.shape)
    return points, normals
