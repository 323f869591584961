"""Open scans give one sheet through their points: `trimmed` keeps what the points support and
stops at their boundary, `closed` is watertight; the sign prior is what keeps a sheet signed."""

import dataclasses

import numpy as np
import pytest

from recon.engine.errors import EmptySurface
from recon.engine.formats.pointcloud import PointCloud
from recon.engine.pipeline import reconstruct
from recon.engine.support import SUPPORT_ATTRIBUTE


def hemisphere(n: int, seed: int) -> PointCloud:
    """The upper half of the unit sphere, as one view from above would see it."""
    directions = np.random.default_rng(seed).standard_normal((2 * n + 1000, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return PointCloud(points=directions[directions[:, 2] > 0][:n])


def wave(n: int, seed: int) -> PointCloud:
    """A gently curved sheet over the square [-1, 1]^2: nothing like the initial sphere."""
    xy = np.random.default_rng(seed).uniform(-1, 1, (n, 2))
    return PointCloud(points=np.c_[xy, 0.15 * np.sin(3 * xy[:, 0]) * np.cos(2 * xy[:, 1])])


@pytest.fixture
def open_config(tiny_config, tweak):
    """The tiny config, trained long enough for a sheet's field to turn unsigned unaided."""
    return tweak(tiny_config, training={"max_iterations": 1500}, meshing={"resolution": 64})


def boundary_vertices(mesh) -> np.ndarray:
    """Vertices on edges used by one face only."""
    counts = np.bincount(mesh.edges_unique_inverse, minlength=len(mesh.edges_unique))
    return mesh.vertices[np.unique(mesh.edges_unique[counts == 1])]


def test_trimmed_hemisphere_is_open_and_its_boundary_follows_the_rim(open_config, tweak):
    config = tweak(open_config, meshing={"surface": "trimmed"})
    result = reconstruct(hemisphere(6000, seed=0), config)
    mesh, metrics = result.mesh, result.metrics
    assert metrics["surface"]["kind"] == "trimmed" and not metrics["surface"]["watertight"]
    assert 0.2 < metrics["surface"]["removed_area_share"] < 0.9
    assert not mesh.is_watertight and metrics["mesh"]["largest_component_area_share"] > 0.99
    assert metrics["fit_to_input"]["relative"]["p95"] < 0.005
    # A rim about trim_distance spacings wide is kept past the last points; with 6,000 points
    # that is a couple of percent of the diagonal, so a little area counts as far.
    assert metrics["fit_to_input"]["far_area_share"] < 0.03
    assert np.abs(np.linalg.norm(mesh.vertices, axis=1) - 1).mean() < 0.01
    rim = boundary_vertices(mesh)
    assert len(rim) > 50
    # The cut runs along the equator, where the data ends (a random sample's widest gaps may
    # leave a few pinholes inside).
    assert np.quantile(np.abs(rim[:, 2]), 0.9) < 0.1
    assert not any("watertight" in warning for warning in result.warnings)


def test_closed_hemisphere_is_watertight_through_the_points(open_config):
    result = reconstruct(hemisphere(6000, seed=0), open_config)
    metrics = result.metrics
    assert metrics["surface"] == {"kind": "closed", "watertight": True}
    assert result.mesh.is_watertight and metrics["mesh"]["largest_component_area_share"] > 0.99
    assert metrics["fit_to_input"]["relative"]["p95"] < 0.005


def test_support_tells_the_scanned_half_from_the_closure(open_config):
    result = reconstruct(hemisphere(6000, seed=0), open_config)
    mesh = result.mesh
    support = mesh.vertex_attributes[SUPPORT_ATTRIBUTE]
    assert support.shape == (len(mesh.vertices),) and (support >= 0).all()
    scanned = (mesh.vertices[:, 2] > 0.1) & (np.abs(np.linalg.norm(mesh.vertices, axis=1) - 1)
                                              < 0.02)
    closure = mesh.vertices[:, 2] < -0.1
    assert scanned.sum() > 100 and closure.sum() > 100
    assert np.quantile(support[scanned], 0.95) < 1.5
    assert np.quantile(support[closure], 0.05) > 4
    shares = result.metrics["support"]
    assert 0.2 < shares["area_share_within_1"] <= shares["area_share_within_2"] <= \
        shares["area_share_within_4"] < 0.9


def test_without_the_sign_prior_a_sheet_loses_its_surface(open_config, tweak):
    """The failure the prior exists for: the field turns unsigned and the sheet is lost, either
    as a surface far from the points or with no zero level set left at all."""
    sign = dataclasses.replace(open_config.method_config.sign, enabled=False)
    try:
        result = reconstruct(wave(6000, seed=1), tweak(open_config, method_config={"sign": sign}))
    except EmptySurface:
        return
    assert result.metrics["run"]["sign_prior"] == "not watched"
    assert result.metrics["fit_to_input"]["relative"]["p95"] > 0.05


@pytest.mark.parametrize("surface", ["closed", "trimmed"])
def test_with_the_sign_prior_a_sheet_comes_back(open_config, tweak, surface):
    result = reconstruct(wave(6000, seed=1), tweak(open_config, meshing={"surface": surface}))
    mesh, metrics = result.mesh, result.metrics
    assert metrics["run"]["sign_prior"] == "on" and 0 < metrics["run"]["sign_prior_from"] < 0.5
    assert metrics["fit_to_input"]["relative"]["p95"] < 0.005
    assert metrics["mesh"]["largest_component_area_share"] > 0.99
    assert mesh.is_watertight == (surface == "closed")
    if surface == "trimmed":
        assert metrics["fit_to_input"]["far_area_share"] < 0.01
        edge = np.abs(boundary_vertices(mesh)[:, :2]).max(axis=1)
        assert np.quantile(edge, 0.1) > 0.9 and edge.max() < 1.1  # the square's edge
