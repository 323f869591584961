"""Block-by-block reading: the same result whatever the block size, bounded buffers, and the
refusals that keep a hostile file from growing them (absurd counts, endless tokens or lines)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from recon.engine.errors import InvalidPointCloud
from recon.engine.formats.accumulate import subsample_rows
from recon.engine.formats.npy import npy_blocks, read_npy_layout
from recon.engine.formats.ply import PlyError, PlyList, read_ply, write_ply
from recon.engine.formats.ply_model import MAX_LIST_LENGTH
from recon.engine.formats.pointcloud import load_point_cloud
from recon.engine.formats.text import MAX_LINE_BYTES, text_tables

BLOCK_SIZES = [1, 7, 64, 1000]


@pytest.fixture
def mesh_elements() -> dict:
    rng = np.random.default_rng(5)
    faces = PlyList(np.array([3, 4, 0, 3, 5] * 40), np.arange(15 * 40, dtype=np.int32))
    triangles = np.arange(300, dtype=np.int32).reshape(100, 3)
    return {
        "vertex": {"x": rng.normal(size=300), "y": rng.normal(size=300).astype(np.float32),
                   "red": rng.integers(0, 256, 300).astype(np.uint8)},
        "face": {"vertex_index": faces, "flag": np.arange(200, dtype=np.int16) - 100},
        "triangle": {"vertex_indices": triangles},
    }


def _same(a, b) -> None:
    assert list(a.elements) == list(b.elements)
    for name, element in a.elements.items():
        for prop, values in element.properties.items():
            other = b[name][prop]
            if isinstance(values, PlyList):
                np.testing.assert_array_equal(values.counts, other.counts)
                np.testing.assert_array_equal(values.values, other.values)
                assert values.values.dtype == other.values.dtype
            else:
                np.testing.assert_array_equal(values, other)
                assert values.dtype == other.dtype


@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian", "binary_big_endian"])
@pytest.mark.parametrize("block_bytes", BLOCK_SIZES)
def test_any_block_size_reads_the_same(fmt: str, block_bytes: int, mesh_elements) -> None:
    blob = write_ply(mesh_elements, format=fmt)
    _same(read_ply(blob), read_ply(blob, block_bytes=block_bytes))


@pytest.mark.parametrize("block_bytes", [5, 64, 1 << 20])
def test_ascii_rows_need_not_be_one_per_line(block_bytes: int) -> None:
    head = (b"ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty int y\n"
            b"end_header\n")
    expected = read_ply(head + b"1 2\n3 4\n5 6\n7 8\n")
    for body in (b"1 2 3 4 5 6 7 8\n", b"1\n2\n3\n4\n5\n6\n7\n8", b"1 2\n\n3 4\n\n5 6\r\n7 8"):
        _same(expected, read_ply(head + body, block_bytes=block_bytes))


def test_ascii_integers_must_fit_their_type() -> None:
    head = b"ply\nformat ascii 1.0\nelement vertex 2\nproperty uchar v\nend_header\n"
    assert np.asarray(read_ply(head + b"0\n255\n")["vertex"]["v"]).tolist() == [0, 255]
    for bad in (b"0\n256\n", b"0\n-1\n", b"nan\n1\n"):
        with pytest.raises(PlyError, match="does not fit its integer type"):
            read_ply(head + bad)


@pytest.mark.parametrize("count", ["1000000000000000", "5"])
def test_ascii_count_beyond_the_data_reports_the_rows_found(count: str) -> None:
    head = (f"ply\nformat ascii 1.0\nelement vertex {count}\nproperty float x\n"
            "end_header\n").encode()
    with pytest.raises(PlyError, match=f"declares {count} vertices but the data holds only 3"):
        read_ply(head + b"1\n2\n3\n", block_bytes=4)


def test_binary_absurd_count_fails_before_reading() -> None:
    head = (b"ply\nformat binary_little_endian 1.0\nelement vertex 1000000000000000\n"
            b"property float x\nend_header\n")
    with pytest.raises(PlyError, match="declares 1000000000000000 vertices but the data holds "
                                       "only 2"):
        read_ply(head + bytes(8))


def test_endless_token_is_refused() -> None:
    head = b"ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n"
    with pytest.raises(PlyError, match="a value of more than"):
        read_ply(head + b"1" * (200 * 1024), block_bytes=64 * 1024)


@pytest.mark.parametrize("fmt", ["ascii", "binary_little_endian"])
def test_list_longer_than_the_cap_is_refused(fmt: str) -> None:
    head = (f"ply\nformat {fmt} 1.0\nelement face 1\nproperty list uint int v\n"
            "end_header\n").encode()
    length = MAX_LIST_LENGTH + 1
    body = f"{length} 0\n".encode() if fmt == "ascii" else \
        np.array([length], "<u4").tobytes() + bytes(4 * length)
    with pytest.raises(PlyError, match=f"list of {length} values"):
        read_ply(head + body)


def test_text_blocks_and_line_numbers_span_the_whole_file() -> None:
    rows = "\n".join(f"{i} {i + 0.5} {-i}" for i in range(50)).encode()
    whole = np.concatenate(list(text_tables(io.BytesIO(rows), rows)))
    small = np.concatenate(list(text_tables(io.BytesIO(rows), rows, block_bytes=16)))
    np.testing.assert_array_equal(whole, small)
    assert whole.shape == (50, 3)
    broken = rows + b"\n1 2\n"
    with pytest.raises(InvalidPointCloud, match="line 51 has 2 values where the lines before "
                                                "have 3"):
        list(text_tables(io.BytesIO(broken), broken, block_bytes=16))
    word = rows.replace(b"7 7.5 -7", b"7 seven -7")
    with pytest.raises(InvalidPointCloud, match="line 8 holds 'seven', which is not a number"):
        list(text_tables(io.BytesIO(word), word, block_bytes=16))


def test_text_line_longer_than_the_cap_is_refused() -> None:
    blob = b"1 2 3\n" + b"1 " * MAX_LINE_BYTES
    with pytest.raises(InvalidPointCloud, match="a line longer than"):
        list(text_tables(io.BytesIO(blob), blob, block_bytes=4096))


def test_csv_with_a_byte_order_mark_and_crlf(tmp_path) -> None:
    points = np.random.default_rng(1).normal(size=(40, 3))
    text = "\ufeff" + "\r\n".join(",".join(f"{v:.17g}" for v in p) for p in points)
    path = tmp_path / "scan.csv"
    path.write_bytes(text.encode("utf-8"))
    np.testing.assert_array_equal(load_point_cloud(path).points, points)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize("fortran", [False, True])
@pytest.mark.parametrize("dtype", ["<f4", ">f8", "<i2"])
def test_npy_blocks_in_either_order_and_byte_order(fortran: bool, dtype: str) -> None:
    table = (np.random.default_rng(2).normal(size=(37, 6)) * 100).astype(dtype)
    table = np.asfortranarray(table) if fortran else table
    blob = _npy(table)
    layout = read_npy_layout(io.BytesIO(blob), len(blob))
    assert layout.fortran == fortran
    blocks = list(npy_blocks(io.BytesIO(blob), layout, block_bytes=50))
    assert len(blocks) > 1
    np.testing.assert_array_equal(np.concatenate(blocks), table)


@pytest.mark.parametrize(("array", "fragment"), [
    (np.array([1, "a", None], dtype=object), "Python objects"),
    (np.zeros(10, dtype=[("x", "f4", (3,)), ("y", "f4"), ("z", "f4")]), "x/y/z as lists"),
    (np.zeros((20, 2)), "shape 20x2"),
    (np.zeros((20, 3), dtype="U3"), "not real numbers"),
    (np.zeros((4, 5, 3)), "shape 4x5x3"),
])
def test_npy_refusals(array: np.ndarray, fragment: str) -> None:
    with pytest.raises(InvalidPointCloud, match=fragment):
        load_point_cloud(_npy(array))


def test_npy_sub_array_element_type_is_refused() -> None:
    blob = io.BytesIO()
    header = {"descr": ("<f4", (3,)), "fortran_order": False, "shape": (10,)}
    np.lib.format.write_array_header_1_0(blob, header)
    blob.write(bytes(120))
    with pytest.raises(InvalidPointCloud, match="holds sub-arrays"):
        load_point_cloud(blob.getvalue())


def test_npy_header_declaring_more_than_the_file_holds() -> None:
    blob = _npy(np.zeros((10, 3)))
    lying = blob.replace(b"(10, 3), }", b"(10000000000000, 3), }")
    assert lying != blob
    with pytest.raises(InvalidPointCloud, match="the file looks truncated"):
        load_point_cloud(lying)


def test_subsample_rows_is_a_seeded_uniform_subset() -> None:
    kept = subsample_rows(3_000_000, 1_000_000, seed=9)
    assert len(kept) == 1_000_000 and len(np.unique(kept)) == len(kept)
    assert np.all(np.diff(kept) > 0) and kept[0] >= 0 and kept[-1] < 3_000_000
    np.testing.assert_array_equal(kept, subsample_rows(3_000_000, 1_000_000, seed=9))
    assert not np.array_equal(kept, subsample_rows(3_000_000, 1_000_000, seed=10))
    per_third = np.bincount(kept // 1_000_000)
    assert np.all(np.abs(per_third - 333_333) < 3_000)  # uniform over the whole range


def test_every_format_keeps_the_same_subset_for_a_seed(tmp_path) -> None:
    points = np.random.default_rng(4).normal(size=(500, 3))
    text = "\n".join(" ".join(repr(float(v)) for v in p) for p in points).encode()
    sources = {
        "ascii.ply": write_ply({"vertex": dict(zip("xyz", points.T, strict=True))},
                               format="ascii"),
        "binary.ply": write_ply({"vertex": dict(zip("xyz", points.T, strict=True))}),
        "points.npy": _npy(points),
        "points.xyz": text,  # read twice: the count is known only at the end
    }
    kept = []
    for name, blob in sources.items():
        path = tmp_path / name
        path.write_bytes(blob)
        cloud = load_point_cloud(path, max_points=100, seed=3)
        assert cloud.warnings and "(seed 3)" in cloud.warnings[0]
        kept.append(cloud.points)
    for other in kept[1:]:
        np.testing.assert_array_equal(kept[0], other)
    np.testing.assert_array_equal(kept[0], points[subsample_rows(500, 100, seed=3)])
