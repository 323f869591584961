"""load_point_cloud: formats, normals, the bunny data, and every rejection a user can hit."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recon.engine.errors import InvalidPointCloud
from recon.engine.formats.ply import write_ply, write_point_cloud_ply
from recon.engine.formats.pointcloud import (
    MIN_DISTINCT_POINTS,
    SUPPORTED_POINT_FORMATS,
    PointCloud,
    load_point_cloud,
)
from tests.data import BUNNY


@pytest.fixture
def cloud_points() -> np.ndarray:
    """(200, 3) float64 points on a unit sphere."""
    points = np.random.default_rng(3).normal(size=(200, 3))
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian", "binary_big_endian"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ply_round_trip_keeps_normals_and_colours(fmt, dtype, cloud_points) -> None:
    n = len(cloud_points)
    vertex = {"x": cloud_points[:, 0].astype(dtype), "y": cloud_points[:, 1].astype(dtype),
              "z": cloud_points[:, 2].astype(dtype), "nx": cloud_points[:, 0].astype(dtype),
              "ny": cloud_points[:, 1].astype(dtype), "nz": cloud_points[:, 2].astype(dtype),
              "red": np.full(n, 200, np.uint8), "green": np.zeros(n, np.uint8),
              "blue": np.zeros(n, np.uint8)}
    cloud = load_point_cloud(write_ply({"vertex": vertex}, format=fmt))
    assert isinstance(cloud, PointCloud)
    assert cloud.points.dtype == np.float64 and cloud.points.shape == (n, 3)
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(cloud.points, cloud_points, atol=tolerance)
    assert cloud.normals is not None
    np.testing.assert_allclose(cloud.normals, cloud_points, atol=tolerance)
    assert cloud.colours is not None
    np.testing.assert_allclose(cloud.colours, np.tile([200 / 255, 0, 0], (n, 1)), atol=1e-6)
    assert cloud.warnings == ()


@pytest.mark.parametrize("name", ["sparse", "sparse_noisy", "dense"])
def test_bunny_points_load(name: str) -> None:
    expected = 1000
    plain = load_point_cloud(BUNNY / name / "points.ply")
    with_normals = load_point_cloud(BUNNY / name / "points_normals.ply")
    assert plain.points.shape == (expected, 3) and plain.normals is None
    assert with_normals.normals is not None and with_normals.normals.shape == (expected, 3)
    np.testing.assert_allclose(np.linalg.norm(with_normals.normals, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(plain.points, with_normals.points)


def test_text_formats_with_comments_count_line_and_normals(tmp_path, cloud_points) -> None:
    rows = "\n".join(" ".join(f"{v:.17g}" for v in (*p, *p)) for p in cloud_points)
    pts = tmp_path / "scan.pts"
    pts.write_text(f"# exported by a scanner\n{len(cloud_points)}\n{rows}\n")
    cloud = load_point_cloud(pts)
    np.testing.assert_allclose(cloud.points, cloud_points)
    np.testing.assert_allclose(cloud.normals, cloud_points)
    xyz = "\n".join(" ".join(f"{v:.17g}" for v in p) + "  # a point" for p in cloud_points)
    cloud = load_point_cloud(xyz.encode())  # sniffed
    np.testing.assert_allclose(cloud.points, cloud_points)
    assert cloud.normals is None


def test_npy_arrays(tmp_path, cloud_points) -> None:
    path = tmp_path / "points.npy"
    np.save(path, np.hstack([cloud_points, cloud_points]).astype(np.float32))
    cloud = load_point_cloud(path)
    np.testing.assert_allclose(cloud.points, cloud_points, atol=1e-6)
    assert cloud.normals is not None
    assert load_point_cloud(_npy(cloud_points)).normals is None


def test_format_argument_overrides_suffix_and_rejects_unknown_names(tmp_path, cloud_points):
    path = tmp_path / "points.bin"
    path.write_bytes(write_point_cloud_ply(cloud_points))
    assert len(load_point_cloud(path, format="ply").points) == len(cloud_points)
    assert len(load_point_cloud(path).points) == len(cloud_points)  # sniffed
    with pytest.raises(ValueError, match="valid formats: ply, xyz, pts, npy, las"):
        load_point_cloud(path, format="e57")
    assert SUPPORTED_POINT_FORMATS == ("ply", "xyz", "pts", "npy", "las")


def _truncated_ply() -> bytes:
    blob = write_point_cloud_ply(np.random.default_rng(0).normal(size=(1000, 3)))
    start = blob.index(b"end_header\n") + len(b"end_header\n")
    return blob[: start + 532 * 12]


_NO_X = (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float y\nproperty float z\n"
         b"end_header\n1 2\n")
_FACES_ONLY = (b"ply\nformat ascii 1.0\nelement face 1\nproperty list uchar int vertex_indices\n"
               b"end_header\n3 0 1 2\n")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"", "empty"),
        (b"  \n\n", "empty"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", "looks like a JPEG image"),
        (b"%PDF-1.7\n", "looks like a PDF document"),
        (_NO_X, "no x coordinate property .properties found: y, z"),
        (_FACES_ONLY, "no 'vertex' element .elements found: face"),
        (b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
         b"property float z\nend_header\n1 2 3\n", "declares 3 vertices but the data holds only 1"),
        (b"ply\nformat ascii 1.0\nelement vertex 0\nproperty float x\nproperty float y\n"
         b"property float z\nend_header\n", "contains no points"),
        (b"1 2 3 4 5\n5 6 7 8 9\n", "expected 3 columns .x y z., 4 .x y z intensity.*shape 2x5"),
        (b"1 2 3\n4 5\n", "cannot read the text point cloud"),
        (b"5\n1 2 3\n4 5 6\n", "declares 5 points on its first line but holds 2 rows"),
    ],
)
def test_bad_bytes_raise_invalid_point_cloud(content: bytes, fragment: str) -> None:
    with pytest.raises(InvalidPointCloud, match=fragment):
        load_point_cloud(content)


def test_truncated_binary_ply_named_ply(tmp_path) -> None:
    path = tmp_path / "scan.ply"
    path.write_bytes(_truncated_ply())
    with pytest.raises(InvalidPointCloud, match="declares 1000 vertices but the data holds "
                                                "only 532; the file looks truncated"):
        load_point_cloud(path)


def test_jpeg_renamed_ply(tmp_path) -> None:
    path = tmp_path / "photo.ply"
    path.write_bytes(b"\xff\xd8\xff\xe1" + bytes(200))
    with pytest.raises(InvalidPointCloud, match="not a PLY file: the content looks like a JPEG"):
        load_point_cloud(path)


def test_missing_file(tmp_path) -> None:
    with pytest.raises(InvalidPointCloud, match="cannot read"):
        load_point_cloud(tmp_path / "absent.ply")


def test_nan_and_inf_coordinates_report_count_and_first_index(cloud_points) -> None:
    points = cloud_points.copy()
    points[17, 1] = np.nan
    points[40, 0] = np.inf
    with pytest.raises(InvalidPointCloud, match="2 of 200 points have NaN or infinite "
                                                r"coordinates \(first at index 17\)"):
        load_point_cloud(write_point_cloud_ply(points))


def test_too_few_distinct_points(cloud_points) -> None:
    few = np.repeat(cloud_points[: MIN_DISTINCT_POINTS - 1], 20, axis=0)
    with pytest.raises(InvalidPointCloud, match=f"only {MIN_DISTINCT_POINTS - 1} distinct points"
                                                f" \\({len(few)} in total\\)"):
        load_point_cloud(_npy(few))
    enough = np.repeat(cloud_points[:MIN_DISTINCT_POINTS], 300, axis=0)  # beyond the prefix
    assert len(load_point_cloud(_npy(enough)).points) == len(enough)


def test_oversize_cloud_is_subsampled_with_a_warning(cloud_points) -> None:
    first = load_point_cloud(write_point_cloud_ply(cloud_points), max_points=50, seed=4)
    second = load_point_cloud(write_point_cloud_ply(cloud_points), max_points=50, seed=4)
    assert first.points.shape == (50, 3)
    np.testing.assert_array_equal(first.points, second.points)
    assert len(first.warnings) == 1
    assert "200 points" in first.warnings[0] and "kept a random subset of 50" in first.warnings[0]
    kept = {tuple(p) for p in cloud_points.astype(np.float32).astype(np.float64)}
    assert all(tuple(p) in kept for p in first.points)


def test_unusable_normals_are_dropped_with_a_warning(cloud_points) -> None:
    normals = cloud_points.copy()
    normals[5] = 0.0
    normals[9] = np.nan
    cloud = load_point_cloud(write_point_cloud_ply(cloud_points, normals))
    assert cloud.normals is None
    assert "2 of 200 are zero-length or not finite (first at index 5)" in cloud.warnings[0]


def test_normals_are_unit_length(cloud_points) -> None:
    cloud = load_point_cloud(write_point_cloud_ply(cloud_points, 3.0 * cloud_points))
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1.0)


def test_light_modules_do_not_import_heavy_dependencies() -> None:
    code = ("import sys\n"
            "import recon.engine.formats.pointcloud, recon.engine.formats.ground_truth\n"
            "import recon.engine.export, recon.engine.metrics, recon.engine.formats.ply\n"
            "heavy = [m for m in ('torch', 'celery', 'boto3', 'fastapi', 'redis', 'pydantic')"
            " if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
