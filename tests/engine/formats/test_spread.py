"""Degenerate clouds are refused (one line, one point); planes and thin objects are not."""

from __future__ import annotations

import numpy as np
import pytest

from recon.engine.errors import InvalidPointCloud
from recon.engine.formats.ply import write_ply, write_point_cloud_ply
from recon.engine.formats.pointcloud import load_point_cloud


def _line(n: int = 1000, dtype=np.float64) -> np.ndarray:
    t = np.linspace(-3.0, 5.0, n)
    return (np.array([0.25, 100.0, -7.0]) + t[:, None] * np.array([1.0, 2.0, -0.5])).astype(dtype)


@pytest.mark.parametrize("encoding", ["binary float32", "binary float64", "ascii"])
def test_collinear_points_are_refused(encoding: str) -> None:
    points = _line()
    if encoding == "binary float32":
        blob = write_point_cloud_ply(points)
    else:
        blob = write_ply({"vertex": dict(zip("xyz", points.T, strict=True))},
                         format="binary_little_endian" if encoding == "binary float64"
                         else "ascii")
    with pytest.raises(InvalidPointCloud, match="all points lie on one line; a surface needs "
                                                "points spread in at least two directions"):
        load_point_cloud(blob)


def test_identical_points_are_refused() -> None:
    with pytest.raises(InvalidPointCloud, match="only 1 distinct points"):
        load_point_cloud(write_point_cloud_ply(np.tile([[1.0, 2.0, 3.0]], (1000, 1))))


def test_a_wall_and_a_thin_cable_are_accepted() -> None:
    rng = np.random.default_rng(0)
    wall = np.column_stack([rng.uniform(0, 4, 2000), np.zeros(2000), rng.uniform(0, 3, 2000)])
    assert len(load_point_cloud(write_point_cloud_ply(wall)).points) == 2000
    angle, along = rng.uniform(0, 2 * np.pi, 2000), rng.uniform(0, 10, 2000)
    cable = np.column_stack([along, 0.005 * np.cos(angle), 0.005 * np.sin(angle)])
    assert len(load_point_cloud(write_ply({"vertex": dict(zip("xyz", cable.T, strict=True))}))
               .points) == 2000


def test_huge_finite_coordinates_do_not_overflow_the_check() -> None:
    points = np.random.default_rng(1).normal(size=(100, 3)) * 1e307
    assert len(load_point_cloud(write_ply({"vertex": dict(zip("xyz", points.T, strict=True))}))
               .points) == 100
