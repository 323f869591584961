"""Normals estimated from points alone face one way per piece, outward, at any size and chunking."""

import numpy as np
import pytest

from recon.engine.config import NormalConfig
from recon.engine.normals import local_spacing, orient_normals


def sphere(n: int, rng: np.random.Generator, centre=(0.0, 0.0, 0.0), radius: float = 1.0):
    directions = rng.standard_normal((n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return np.asarray(centre) + radius * directions, directions


def test_a_sphere_faces_outward() -> None:
    points, truth = sphere(8000, np.random.default_rng(0))
    estimated = orient_normals(points, NormalConfig())
    assert np.allclose(np.linalg.norm(estimated.normals, axis=1), 1.0)
    agreement = np.einsum("ij,ij->i", estimated.normals, truth)
    assert (agreement > 0.9).mean() >= 0.99


def test_an_open_cap_is_consistent_and_faces_away_from_its_centroid() -> None:
    """A single view: the top of a sphere, seen from above; the normals point up, toward the
    viewer, all of them (one flipped region would tell the sign prior the wrong side)."""
    points, truth = sphere(20_000, np.random.default_rng(1))
    cap = points[:, 2] > 0.3
    estimated = orient_normals(points[cap], NormalConfig())
    agreement = np.einsum("ij,ij->i", estimated.normals, truth[cap])
    assert (agreement > 0.9).mean() >= 0.99


def test_separate_pieces_are_each_oriented_outward() -> None:
    rng = np.random.default_rng(2)
    left, left_truth = sphere(5000, rng, centre=(-2.0, 0, 0), radius=0.5)
    right, right_truth = sphere(5000, rng, centre=(2.0, 0, 0), radius=0.8)
    estimated = orient_normals(np.concatenate([left, right]), NormalConfig())
    agreement = np.einsum("ij,ij->i", estimated.normals,
                          np.concatenate([left_truth, right_truth]))
    assert (agreement > 0.9).mean() >= 0.99


def test_chunks_give_the_same_normals_as_one_batch() -> None:
    points, _ = sphere(3000, np.random.default_rng(3))
    whole = orient_normals(points, NormalConfig())
    chunked = orient_normals(points, NormalConfig(chunk=700))
    assert np.allclose(whole.normals, chunked.normals)
    assert np.allclose(whole.spacing, chunked.spacing)


@pytest.mark.parametrize("n", [2000, 32_000])
def test_spacing_follows_the_density(n: int) -> None:
    """On a unit sphere of n points the spacing scales like sqrt(area / n)."""
    points, _ = sphere(n, np.random.default_rng(4))
    spacing = local_spacing(points, NormalConfig())
    expected = np.sqrt(4 * np.pi / n)
    assert 0.7 * expected < np.median(spacing) < 2.0 * expected
