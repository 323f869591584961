"""Stray points are found, surface points are kept, whatever the density."""

import numpy as np
import pytest

from recon.engine.outliers import OutlierConfig, find_outliers


def sphere(n: int, rng: np.random.Generator, radius: float = 1.0) -> np.ndarray:
    """(n, 3) points uniform on a sphere (the normals are the points / radius)."""
    directions = rng.standard_normal((n, 3))
    return radius * directions / np.linalg.norm(directions, axis=1, keepdims=True)


def noisy_scan(n: int, rng: np.random.Generator, noise: float) -> np.ndarray:
    """A dense sphere of radius 1 (diagonal about 3.46) with radial noise `noise` x diagonal."""
    points = sphere(n, rng)
    return points * (1 + noise * 3.46 * rng.standard_normal(n))[:, None]


def near_strays(count: int, rng: np.random.Generator) -> np.ndarray:
    """Points 0.5-5% of the diagonal off the unit sphere, inside or outside."""
    offsets = rng.uniform(0.005, 0.05, count) * 3.46 * rng.choice([-1.0, 1.0], count)
    return sphere(count, rng) * (1 + offsets)[:, None]


@pytest.mark.parametrize("noise", [0.0, 0.001, 0.002])
def test_near_and_far_strays_go_and_the_surface_stays(noise: float) -> None:
    rng = np.random.default_rng(3)
    surface = noisy_scan(40_000, rng, noise)
    near = near_strays(200, rng)
    far = rng.uniform(-1.2, 1.2, size=(200, 3))
    far = far[np.abs(np.linalg.norm(far, axis=1) - 1) > 0.1]  # off the surface, anywhere
    points = np.concatenate([surface, near, far])
    flagged = find_outliers(points, OutlierConfig()).outliers
    n, m = len(surface), len(near)
    assert flagged[:n].mean() <= 0.01, "surface points removed"
    assert flagged[n:n + m].mean() >= 0.95, "near-surface strays kept"
    assert flagged[n + m:].mean() >= 0.95, "strays in the box kept"


def test_uneven_density_is_not_mistaken_for_strays() -> None:
    rng = np.random.default_rng(4)
    points = sphere(60_000, rng)
    dense_half = points[:, 0] > 0
    keep = dense_half | (rng.uniform(size=len(points)) < 0.1)  # the far side: a tenth as dense
    flagged = find_outliers(points[keep], OutlierConfig()).outliers
    assert flagged.mean() <= 0.01


def test_a_sparse_clean_cloud_loses_nothing() -> None:
    rng = np.random.default_rng(5)
    flagged = find_outliers(sphere(1000, rng), OutlierConfig()).outliers
    assert flagged.sum() == 0


def test_chunks_give_the_same_answer_as_one_batch() -> None:
    rng = np.random.default_rng(6)
    points = np.concatenate([noisy_scan(5000, rng, 0.001), near_strays(50, rng)])
    whole = find_outliers(points, OutlierConfig())
    chunked = find_outliers(points, OutlierConfig(chunk=777))
    np.testing.assert_array_equal(whole.outliers, chunked.outliers)


def test_tiny_clouds_are_left_alone() -> None:
    points = np.random.default_rng(7).uniform(size=(20, 3))
    assert not find_outliers(points, OutlierConfig()).outliers.any()
