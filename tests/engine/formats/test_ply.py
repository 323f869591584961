"""PLY reader/writer: every format and type, list properties, and malformed files."""

from __future__ import annotations

import io

import numpy as np
import pytest
import trimesh

from recon.engine.formats.ply import (
    FORMATS,
    PLY_TYPES,
    PlyError,
    PlyList,
    read_ply,
    write_ply,
    write_point_cloud_ply,
)
from tests.data import BUNNY


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _header(*lines: str, fmt: str = "ascii") -> bytes:
    return ("\n".join(["ply", f"format {fmt} 1.0", *lines, "end_header"]) + "\n").encode()


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("type_name", list(PLY_TYPES))
def test_every_scalar_type_round_trips(fmt: str, type_name: str) -> None:
    dtype = np.dtype(PLY_TYPES[type_name])
    values = np.array([0, 1, 2, 100, 127], dtype=dtype)
    if dtype.kind in "if":
        values[0] = -5
    body = write_ply({"vertex": {"v": values}}, format=fmt).replace(
        f"property {_canonical(dtype)} v".encode(), f"property {type_name} v".encode())
    parsed = read_ply(body)["vertex"]["v"]
    assert parsed.dtype == dtype
    np.testing.assert_array_equal(parsed, values)


def _canonical(dtype: np.dtype) -> str:
    return {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int",
            "u4": "uint", "f4": "float", "f8": "double"}[dtype.kind + str(dtype.itemsize)]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_mixed_polygon_lists_and_extra_properties(fmt: str) -> None:
    faces = PlyList(np.array([3, 4, 0, 3]), np.arange(10, dtype=np.int32))
    elements = {
        "vertex": {"x": np.arange(5.0), "y": np.ones(5, np.float32),
                   "red": np.arange(5, dtype=np.uint8)},
        "face": {"vertex_index": faces, "flag": np.array([1, -2, 3, 4], dtype=np.int16)},
    }
    data = read_ply(write_ply(elements, format=fmt, comments=["made by a test"]))
    assert data.format == fmt
    assert data.comments == ("made by a test",)
    assert list(data.elements) == ["vertex", "face"]
    parsed = data["face"]["vertex_index"]
    np.testing.assert_array_equal(parsed.counts, [3, 4, 0, 3])
    np.testing.assert_array_equal(parsed.values, np.arange(10))
    assert [r.tolist() for r in parsed.rows()] == [[0, 1, 2], [3, 4, 5, 6], [], [7, 8, 9]]
    np.testing.assert_array_equal(data["face"]["flag"], [1, -2, 3, 4])
    np.testing.assert_array_equal(data["vertex"]["red"], np.arange(5))


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_uniform_triangle_lists_read_as_a_table(fmt: str) -> None:
    triangles = np.arange(12, dtype=np.int32).reshape(4, 3)
    data = read_ply(write_ply({"vertex": {"x": np.zeros(12)},
                               "face": {"vertex_indices": triangles}}, format=fmt))
    np.testing.assert_array_equal(data["face"]["vertex_indices"].as_array(), triangles)


def test_ascii_header_with_crlf_comments_and_obj_info() -> None:
    text = ("ply\r\nformat ascii 1.0\r\ncomment hello world\r\nobj_info scanner 3\r\n"
            "element vertex 2\r\nproperty float x\r\nproperty float y\r\nproperty float z\r\n"
            "end_header\r\n1 2 3\r\n4 5 6\r\n")
    data = read_ply(text.encode())
    assert data.comments == ("hello world",)
    assert data.obj_info == ("scanner 3",)
    np.testing.assert_array_equal(data["vertex"]["z"], [3, 6])


def test_point_cloud_writer_is_binary_le_float32_and_trimesh_reads_it(rng) -> None:
    points, normals = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    blob = write_point_cloud_ply(points, normals)
    assert b"format binary_little_endian 1.0" in blob and b"property float nx" in blob
    vertex = read_ply(blob)["vertex"]
    np.testing.assert_array_equal(vertex["x"], points[:, 0].astype(np.float32))
    np.testing.assert_array_equal(vertex["nz"], normals[:, 2].astype(np.float32))
    cloud = trimesh.load(io.BytesIO(blob), file_type="ply")
    np.testing.assert_allclose(cloud.vertices, points, rtol=1e-6)


@pytest.mark.parametrize("encoding", ["ascii", "binary"])
def test_reads_what_trimesh_writes(encoding: str) -> None:
    mesh = trimesh.creation.icosphere(2)
    data = read_ply(trimesh.exchange.ply.export_ply(mesh, encoding=encoding))
    faces = data["face"]["vertex_indices"].as_array()
    np.testing.assert_array_equal(faces, mesh.faces)
    np.testing.assert_allclose(data["vertex"]["x"], mesh.vertices[:, 0], rtol=1e-6)


def test_reads_the_bunny_ground_truth_mesh() -> None:
    data = read_ply((BUNNY / "gt_mesh.ply").read_bytes())
    assert data["vertex"].count == 2502
    assert data["face"]["vertex_indices"].as_array().shape == (5000, 3)


def test_truncated_binary_reports_the_rows_found(rng) -> None:
    blob = write_point_cloud_ply(rng.normal(size=(1000, 3)))
    header_size = blob.index(b"end_header\n") + len(b"end_header\n")
    with pytest.raises(PlyError, match="declares 1000 vertices but the data holds only 532; "
                                       "the file looks truncated"):
        read_ply(blob[: header_size + 532 * 12 + 5])


def test_truncated_binary_faces() -> None:
    blob = write_ply({"face": {"vertex_indices": np.zeros((10, 3), np.int32)}})
    with pytest.raises(PlyError, match="declares 10 faces but the data holds only 9"):
        read_ply(blob[:-3])


def test_trailing_bytes_after_the_data(rng) -> None:
    blob = write_point_cloud_ply(rng.normal(size=(10, 3)))
    with pytest.raises(PlyError, match="declares 10 vertices but 120 more bytes follow"):
        read_ply(blob + blob[-120:])
    assert read_ply(blob + b"\n")["vertex"].count == 10  # a final newline is harmless


def test_ascii_count_mismatch() -> None:
    head = _header("element vertex 3", "property float x", "property float y")
    with pytest.raises(PlyError, match="declares 3 vertices but the data holds only 2"):
        read_ply(head + b"1 2\n3 4\n")
    with pytest.raises(PlyError, match="declares 3 vertices but 2 more values follow"):
        read_ply(head + b"1 2\n3 4\n5 6\n7 8\n")


def test_ascii_non_numeric_value() -> None:
    head = _header("element vertex 2", "property float x")
    with pytest.raises(PlyError, match="not a number"):
        read_ply(head + b"1\nabc\n")


@pytest.mark.parametrize(
    ("blob", "fragment"),
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "not a PLY file"),
        (b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n1\n", "no 'end_header'"),
        (b"ply\nformat binary_middle_endian 1.0\nend_header\n", "unknown PLY format"),
        (b"ply\nelement vertex 1\nproperty float x\nend_header\n1\n", "no 'format' line"),
        (_header("element vertex 1", "property float128 x"), "unknown type 'float128'"),
        (_header("property float x"), "before any element"),
        (_header("element vertex many"), "malformed PLY element line"),
        (_header("element vertex 1", "property float x", "property float x"), "twice"),
        (_header("element face 1", "property list float int v"), "must be an integer"),
        (_header("bogus line"), "unexpected line 'bogus line'"),
        (b"ply\nformat ascii 1.0\nend_headerXYZ", "not followed by a line break"),
    ],
)
def test_malformed_headers(blob: bytes, fragment: str) -> None:
    with pytest.raises(PlyError, match=fragment):
        read_ply(blob)


def test_plyerror_is_a_valueerror() -> None:
    assert issubclass(PlyError, ValueError)


def test_empty_elements() -> None:
    data = read_ply(write_ply({"vertex": {"x": np.zeros(0)},
                               "face": {"vertex_indices": np.zeros((0, 3), np.int32)}}))
    assert data["vertex"].count == 0 and len(data["face"]["vertex_indices"]) == 0


def test_absurd_declared_list_count_fails_fast_without_allocating() -> None:
    head = _header("element face 1000000000000", "property list uchar int vertex_indices",
                   fmt="binary_little_endian")
    with pytest.raises(PlyError, match="declares 1000000000000 faces but only 13 bytes"):
        read_ply(head + b"\x03" + bytes(12))


def test_element_without_properties_takes_no_bytes() -> None:
    head = _header("element marker 5", "element vertex 1", "property uchar v",
                   fmt="binary_little_endian")
    data = read_ply(head + b"\x07")
    assert data["marker"].count == 5 and data["vertex"]["v"].tolist() == [7]


def test_negative_list_length() -> None:
    head = _header("element face 1", "property list char int vertex_indices",
                   fmt="binary_little_endian")
    with pytest.raises(PlyError, match="negative list length"):
        read_ply(head + b"\xff" + bytes(12))
