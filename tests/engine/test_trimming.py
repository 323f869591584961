"""Trimming keeps the surface the points support and nothing else."""

import numpy as np
import pytest
import trimesh

from recon.engine.errors import EmptySurface
from recon.engine.trimming import trim_unsupported


@pytest.fixture
def sphere() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=4)


def upper_points(n: int) -> np.ndarray:
    directions = np.random.default_rng(0).standard_normal((3 * n, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return directions[directions[:, 2] > 0][:n]


def test_the_unsupported_half_is_removed(sphere) -> None:
    points = upper_points(4000)
    spacing = np.full(len(points), 0.05)
    report = trim_unsupported(sphere, points, spacing, 1.5, 1e-3)
    assert not sphere.is_watertight
    assert sphere.vertices[:, 2].min() > -0.1
    assert 0.4 < report.removed_area_share < 0.6
    assert sphere.area == pytest.approx(2 * np.pi, rel=0.1)


def test_distance_is_in_local_spacings(sphere) -> None:
    points = upper_points(4000)
    tight = sphere.copy()
    loose = sphere.copy()
    trim_unsupported(tight, points, np.full(len(points), 0.05), 1.0, 1e-3)
    trim_unsupported(loose, points, np.full(len(points), 0.05), 8.0, 1e-3)
    assert loose.area > tight.area
    assert loose.vertices[:, 2].min() < tight.vertices[:, 2].min() - 0.2


def test_a_mesh_nowhere_near_the_points_is_an_empty_surface(sphere) -> None:
    far = upper_points(100) + 10.0
    with pytest.raises(EmptySurface, match="trim_distance"):
        trim_unsupported(sphere, far, np.full(len(far), 0.05), 1.5, 1e-3)
