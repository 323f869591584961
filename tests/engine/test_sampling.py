"""Preparation: normalisation, deduplication, kNN scales and the query pool."""

import numpy as np
import pytest
from scipy.spatial import cKDTree

from recon.engine.config import PreparationConfig
from recon.engine.errors import InvalidPointCloud
from recon.engine.normalization import fit_unit_cube
from recon.engine.sampling import deduplicate, knn_sigma, query_spread, sample_queries


def test_unit_cube_round_trip_and_extent():
    rng = np.random.default_rng(0)
    points = rng.uniform(-3, 7, (200, 3)) * [1.0, 0.5, 2.0]
    transform = fit_unit_cube(points, side=1.0)
    unit = transform.apply(points)
    extent = unit.max(axis=0) - unit.min(axis=0)
    assert extent.max() == pytest.approx(1.0)
    np.testing.assert_allclose((unit.max(axis=0) + unit.min(axis=0)) / 2, 0.0, atol=1e-12)
    np.testing.assert_allclose(transform.invert(unit), points, atol=1e-12)


def test_unit_cube_rejects_a_single_repeated_point():
    with pytest.raises(InvalidPointCloud, match="no extent"):
        fit_unit_cube(np.ones((20, 3)))


def test_deduplicate_keeps_first_occurrences_in_order():
    points = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=float)
    np.testing.assert_array_equal(deduplicate(points), [0, 1, 3])


def test_knn_sigma_is_the_kth_other_neighbour():
    points = np.array([[float(i), 0.0, 0.0] for i in range(10)])
    sigma = knn_sigma(cKDTree(points), points, PreparationConfig(knn_k=2))
    assert sigma[0] == pytest.approx(2.0)
    assert sigma[5] == pytest.approx(1.0)


def test_knn_k_is_capped_for_tiny_clouds():
    points = np.eye(3) * [1.0, 2.0, 3.0]
    points = np.vstack([points, np.zeros(3)])
    sigma = knn_sigma(cKDTree(points), points, PreparationConfig(knn_k=50))
    # K = N - 1 = 3: the farthest other point.
    assert sigma[3] == pytest.approx(3.0)
    assert np.isfinite(sigma).all()


def test_sigma_floor_guards_clustered_points():
    points = np.vstack([np.zeros((5, 3)) + 1e-9 * np.arange(5)[:, None], np.ones((3, 3))])
    config = PreparationConfig(knn_k=2, sigma_floor=1e-3)
    assert knn_sigma(cKDTree(points), points, config).min() >= 1e-3


def test_query_spread_follows_the_formula_and_is_clipped():
    config = PreparationConfig(spread_min=0.02, spread_max=1.0)
    assert query_spread(20_000, config) == pytest.approx(0.25)
    assert query_spread(5_000, config) == pytest.approx(0.125)
    assert query_spread(10, config) == config.spread_min
    assert query_spread(100_000_000, config) == config.spread_max


def test_query_targets_are_the_nearest_input_points():
    rng = np.random.default_rng(1)
    points = rng.uniform(-0.5, 0.5, (300, 3))
    pool = sample_queries(points, PreparationConfig(total_queries=3000), np.random.default_rng(2))
    assert pool.queries.shape == (3000, 3)
    brute = np.linalg.norm(pool.queries[:, None, :] - points[None].astype(np.float32), axis=2)
    nearest = points[brute.argmin(axis=1)].astype(np.float32)
    np.testing.assert_allclose(pool.targets, nearest, atol=1e-6)
    sigma = knn_sigma(cKDTree(points), points, PreparationConfig())
    expected = sigma[brute.argmin(axis=1)]
    np.testing.assert_allclose(pool.target_sigma, expected, rtol=1e-6)


def test_query_count_is_bounded_for_huge_clouds():
    rng = np.random.default_rng(3)
    points = rng.uniform(-0.5, 0.5, (60_000, 3))
    config = PreparationConfig(total_queries=20_000, knn_k=10)
    pool = sample_queries(points, config, np.random.default_rng(0))
    assert len(pool.queries) == 20_000
    assert np.isfinite(pool.target_sigma).all()


def test_query_pool_is_reproducible_by_seed():
    points = np.random.default_rng(4).uniform(-0.5, 0.5, (200, 3))
    config = PreparationConfig(total_queries=2000)
    a = sample_queries(points, config, np.random.default_rng(7))
    b = sample_queries(points, config, np.random.default_rng(7))
    c = sample_queries(points, config, np.random.default_rng(8))
    np.testing.assert_array_equal(a.queries, b.queries)
    assert not np.array_equal(a.queries, c.queries)


@pytest.mark.parametrize("share", [0.0, 0.25])
def test_a_share_of_queries_is_drawn_far_from_the_points(share):
    """Points on a small sphere: the far queries fill the box, the rest hug the sphere."""
    rng = np.random.default_rng(5)
    direction = rng.standard_normal((400, 3))
    points = 0.1 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
    config = PreparationConfig(total_queries=8000, far_query_share=share, far_query_extent=0.5)
    pool = sample_queries(points, config, np.random.default_rng(0))
    radius = np.linalg.norm(pool.queries, axis=1)
    far = np.abs(radius - 0.1) > 0.05
    # A uniform draw in the cube [-0.5, 0.5]^3 lands within 0.05 of the sphere ~1% of the time.
    assert far.mean() == pytest.approx(share * 0.99, abs=0.015)
    assert np.abs(pool.queries).max() <= 0.5
    nearest = cKDTree(points).query(pool.queries)[1]
    np.testing.assert_allclose(pool.targets, points[nearest].astype(np.float32), atol=1e-6)
