"""Colours and normals in point files: named PLY/NPY properties at every colour scale, and the
column rule for plain tables (recon.engine.formats.columns), refusals included."""

from __future__ import annotations

import io

import laspy
import numpy as np
import pytest

from recon.engine.errors import InvalidPointCloud
from recon.engine.formats.ply import write_ply
from recon.engine.formats.pointcloud import load_point_cloud

N = 50


@pytest.fixture
def points() -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, (N, 3))


@pytest.fixture
def normals() -> np.ndarray:
    vectors = np.random.default_rng(1).normal(size=(N, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def rgb8() -> np.ndarray:
    """(N, 3) 0-255 integer colours."""
    return np.random.default_rng(2).integers(0, 256, (N, 3))


def _text(*columns: np.ndarray) -> bytes:
    table = np.concatenate(columns, axis=1)
    return "\n".join(" ".join(f"{v:.10g}" for v in row) for row in table).encode()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(("dtype", "scale"), [(np.uint8, 255), (np.uint16, 65535),
                                               (np.float32, 1.0)])
@pytest.mark.parametrize("prefix", ["", "diffuse_"])
def test_ply_colours_at_every_scale(points, rgb8, dtype, scale, prefix) -> None:
    expected = rgb8 / 255.0
    stored = (expected * scale).round() if scale != 1.0 else expected
    vertex = {"x": points[:, 0], "y": points[:, 1], "z": points[:, 2],
              **{prefix + name: stored[:, i].astype(dtype)
                 for i, name in enumerate(("red", "green", "blue"))},
              "alpha": np.full(N, 255, np.uint8)}
    cloud = load_point_cloud(write_ply({"vertex": vertex}))
    assert cloud.colours is not None and cloud.colours.dtype == np.float32
    np.testing.assert_allclose(cloud.colours, expected, atol=1e-6)
    assert cloud.normals is None


def test_ply_without_colours_has_none(points) -> None:
    cloud = load_point_cloud(write_ply({"vertex": {"x": points[:, 0], "y": points[:, 1],
                                                   "z": points[:, 2]}}))
    assert cloud.colours is None


def test_six_text_columns_of_unit_vectors_stay_normals(points, normals) -> None:
    cloud = load_point_cloud(_text(points, normals))
    assert cloud.colours is None
    np.testing.assert_allclose(cloud.normals, normals, atol=1e-8)


@pytest.mark.parametrize("scale", [255.0, 1.0])
def test_six_text_columns_of_colour_values_are_colours(points, rgb8, scale) -> None:
    colours = rgb8 if scale == 255.0 else rgb8 / 255.0
    cloud = load_point_cloud(_text(points, colours))
    assert cloud.normals is None
    np.testing.assert_allclose(cloud.colours, rgb8 / 255.0, atol=1e-6)


def test_pts_with_intensity_and_colours(points, rgb8) -> None:
    intensity = np.random.default_rng(3).integers(-2048, 2048, (N, 1))
    four = load_point_cloud(b"%d\n" % N + _text(points, intensity), format="pts")
    np.testing.assert_allclose(four.points, points, atol=1e-8)
    assert four.colours is None and four.normals is None
    seven = load_point_cloud(b"%d\n" % N + _text(points, intensity, rgb8), format="pts")
    np.testing.assert_allclose(seven.colours, rgb8 / 255.0, atol=1e-6)


@pytest.mark.parametrize("colours_first", [False, True])
def test_nine_columns_tell_normals_from_colours_in_either_order(points, normals, rgb8,
                                                                colours_first) -> None:
    content = _text(points, rgb8, normals) if colours_first else _text(points, normals, rgb8)
    cloud = load_point_cloud(content)
    np.testing.assert_allclose(cloud.normals, normals, atol=1e-8)
    np.testing.assert_allclose(cloud.colours, rgb8 / 255.0, atol=1e-6)


def test_npy_tables_and_structured_arrays_carry_colours(points, normals, rgb8) -> None:
    six = load_point_cloud(_npy(np.concatenate([points, rgb8], axis=1)))
    np.testing.assert_allclose(six.colours, rgb8 / 255.0, atol=1e-6)
    structured = np.zeros(N, dtype=[("x", "f8"), ("y", "f8"), ("z", "f8"), ("red", "u1"),
                                    ("green", "u1"), ("blue", "u1")])
    for i, name in enumerate("xyz"):
        structured[name] = points[:, i]
    for i, name in enumerate(("red", "green", "blue")):
        structured[name] = rgb8[:, i]
    named = load_point_cloud(_npy(structured))
    np.testing.assert_allclose(named.colours, rgb8 / 255.0, atol=1e-6)


def test_subsampling_keeps_colours_with_their_points(points, rgb8) -> None:
    cloud = load_point_cloud(_text(points, rgb8), max_points=20, seed=4)
    assert len(cloud.points) == len(cloud.colours) == 20
    index = [int(np.argmin(np.linalg.norm(points - p, axis=1))) for p in cloud.points]
    np.testing.assert_allclose(cloud.colours, rgb8[index] / 255.0, atol=1e-6)


@pytest.mark.parametrize(("table", "fragment"), [
    ("unit_both", "cannot tell normals from colours.*both of the triples"),
    ("neither", "cannot tell normals from colours.*neither of the triples"),
    ("six_neither", "neither x y z with unit normals nor with colours .*found -3 to 7"),
    ("fractional_255", "0-1 floats or 0-255 integers"),
])
def test_ambiguous_or_impossible_columns_are_refused(points, normals, rgb8, table,
                                                     fragment) -> None:
    tables = {
        "unit_both": _text(points, normals, normals),
        "neither": _text(points, rgb8, rgb8),
        "six_neither": _text(points, np.tile([-3.0, 7.0, 0.5], (N, 1))),
        "fractional_255": _text(points, rgb8 + 0.5),
    }
    with pytest.raises(InvalidPointCloud, match=fragment):
        load_point_cloud(tables[table])


def _las(points: np.ndarray, rgb: np.ndarray | None, compressed: bool = False) -> bytes:
    header = laspy.LasHeader(point_format=3 if rgb is not None else 1, version="1.2")
    header.offsets = points.min(axis=0)
    header.scales = np.array([0.0001, 0.0001, 0.0001])
    las = laspy.LasData(header)
    las.x, las.y, las.z = points[:, 0], points[:, 1], points[:, 2]
    if rgb is not None:
        las.red, las.green, las.blue = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    buffer = io.BytesIO()
    las.write(buffer, do_compress=compressed)
    return buffer.getvalue()


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("bits", [8, 16])
def test_las_and_laz_load_with_colours(points, rgb8, compressed, bits) -> None:
    survey = points * 10 + np.array([512_345.678, 5_412_345.678, 312.345])  # UTM metres
    stored = rgb8 * 257 if bits == 16 else rgb8
    blob = _las(survey, stored, compressed)
    assert blob[:4] == b"LASF"
    cloud = load_point_cloud(blob)  # sniffed by its magic bytes
    assert np.abs(cloud.points - survey).max() < 1e-3  # millimetres kept at UTM scale
    np.testing.assert_allclose(cloud.colours, rgb8 / 255.0, atol=1e-6)


def test_las_without_colours_and_broken_las(points, tmp_path) -> None:
    path = tmp_path / "scan.laz"
    path.write_bytes(_las(points, None, compressed=True))
    cloud = load_point_cloud(path)
    assert cloud.colours is None and len(cloud.points) == N
    with pytest.raises(InvalidPointCloud, match="cannot read the LAS/LAZ file"):
        load_point_cloud(_las(points, None)[:300])
