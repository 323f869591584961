"""The virtual range scanner: deterministic, open from one view, noisy and stray as configured."""

import numpy as np
import pytest
import trimesh

from bench.scanner import ScannerConfig, scan

RADIUS = 1.0


@pytest.fixture(scope="module")
def sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)


def diagonal(mesh: trimesh.Trimesh) -> float:
    return float(np.linalg.norm(mesh.bounds[1] - mesh.bounds[0]))


def test_the_same_config_gives_the_same_scan(sphere) -> None:
    config = ScannerConfig(views=2, points=5000, seed=3)
    first, second = scan(sphere, config), scan(sphere, config)
    np.testing.assert_array_equal(first.points, second.points)
    np.testing.assert_array_equal(first.view, second.view)
    assert not np.array_equal(first.points, scan(sphere, ScannerConfig(views=2, points=5000,
                                                                        seed=4)).points)


def test_one_view_is_open_and_faces_its_camera(sphere) -> None:
    result = scan(sphere, ScannerConfig(views=1, points=5000, stray_fraction=0.0))
    assert len(result.points) == 5000 and not result.stray.any()
    assert len(result.seen_faces) < 0.55 * len(sphere.faces)  # at most the near half
    outward = result.surface_points / np.linalg.norm(result.surface_points, axis=1)[:, None]
    towards_camera = result.cameras[0] - result.surface_points
    assert (np.einsum("ij,ij->i", outward, towards_camera) > 0).all()


def test_fused_views_see_more_and_noise_stays_in_its_range(sphere) -> None:
    config = ScannerConfig(views=4, points=8000, stray_fraction=0.0)
    fused = scan(sphere, config)
    single = scan(sphere, ScannerConfig(views=1, points=8000, stray_fraction=0.0))
    assert len(fused.seen_faces) > 1.5 * len(single.seen_faces)
    assert set(np.unique(fused.view)) == {0, 1, 2, 3}
    error = np.linalg.norm(fused.points - fused.surface_points, axis=1) / diagonal(sphere)
    assert 0.5 * config.noise < np.median(error) < 2 * config.max_noise
    assert error.max() < 6 * config.max_noise


def test_strays_are_half_near_the_surface_and_half_anywhere(sphere) -> None:
    config = ScannerConfig(views=4, points=20_000, stray_fraction=0.01)
    result = scan(sphere, config)
    strays = result.points[result.stray]
    assert len(strays) == 200 and np.isnan(result.surface_points[result.stray]).all()
    off_surface = np.abs(np.linalg.norm(strays, axis=1) - RADIUS) / diagonal(sphere)
    near = off_surface[:100]
    low, high = config.stray_near_range
    assert (near > 0.8 * low).all() and (near < 1.05 * high).all()
    box = np.abs(strays[100:]).max(axis=1)
    assert (box <= 1.2 * RADIUS + 1e-9).all() and off_surface[100:].max() > high  # box + 10%
