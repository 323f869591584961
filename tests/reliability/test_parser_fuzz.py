"""Property-based fuzzing of the point-cloud readers (`recon.engine.formats`).

Whatever the bytes, `load_point_cloud` either raises `InvalidPointCloud` (the API's 422) or
returns a valid cloud: finite float64 points, at least the minimum number of distinct points,
unit normals and 0-1 colours when present. Any other exception would be a 500 in the API and a
crash in the worker. Inputs: random bytes, and valid PLY (binary and ASCII), PLY headers, XYZ
text, NPY and LAS/LAZ files mutated byte by byte or token by token.

The runs are reproducible (`derandomize=True`, no example database) and bounded by
`tests.reliability.record.scaled`; every target records its example count.
"""

import io
from collections import Counter
from collections.abc import Callable

import laspy
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.engine.formats import InvalidPointCloud, PointCloud, load_point_cloud
from recon.engine.formats.ply import PLY_TYPES, PlyList, write_ply
from recon.engine.formats.pointcloud import MIN_DISTINCT_POINTS
from tests.reliability.record import record_scenario, scaled

pytestmark = [
    pytest.mark.reliability,
    pytest.mark.timeout(300),
    # numpy reads an NPY header with ast.literal_eval, which warns about mutated escapes
    pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning"),
]

GROUP = "hostile input"
EXAMPLES = scaled(ci=1000, full=20000)
FORMATS = [None, "ply", "xyz", "pts", "npy", "las"]
INTERESTING_NUMBERS = ["0", "1", "2", "3", "255", "256", "65536", "2147483647", "4294967295",
                       "4294967296", "1000000000000000", "-1", "1e400", "nan", "-inf", "0x10",
                       "9" * 30, "\u00b2"]
INTERESTING_TOKENS = [*INTERESTING_NUMBERS, "", " ", ",", "#", "\x00", "\r", "\t\t", "e", "--1",
                      "1.2.3", "\ufeff", "\u00e9"]


def fuzz_settings(examples: int = EXAMPLES) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- seeds -----------------------------------------------------------------------------------


def _cloud(n: int = 40) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(n, 3))
    normals = points / np.linalg.norm(points, axis=1, keepdims=True)
    colours = rng.integers(0, 256, (n, 3)).astype(np.uint8)
    return points, normals, colours


def _ply(fmt: str) -> bytes:
    points, normals, colours = _cloud()
    vertex = {
        "x": points[:, 0].astype(np.float32), "y": points[:, 1].astype(np.float32),
        "z": points[:, 2], "nx": normals[:, 0], "ny": normals[:, 1], "nz": normals[:, 2],
        "red": colours[:, 0], "green": colours[:, 1], "blue": colours[:, 2],
    }
    faces = PlyList(np.array([3, 4, 3, 0, 3]), np.arange(13, dtype=np.int32))
    return write_ply({"vertex": vertex, "face": {"vertex_indices": faces}}, format=fmt)


def _xyz() -> bytes:
    points, normals, colours = _cloud()
    rows = np.hstack([points, normals, colours])
    return ("# scanner export\n40\n" + "\n".join(
        " ".join(f"{v:.6g}" for v in row) for row in rows) + "\n").encode()


def _npy(structured: bool, fortran: bool = False) -> bytes:
    points, normals, _ = _cloud()
    if structured:
        array = np.zeros(len(points), dtype=[("x", "<f4"), ("y", ">f8"), ("z", "<f8"),
                                              ("red", "u1"), ("green", "u1"), ("blue", "u1")])
        for i, name in enumerate("xyz"):
            array[name] = points[:, i]
    else:
        array = np.asarray(np.hstack([points, normals]), order="F" if fortran else "C")
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _las(compressed: bool) -> bytes:
    points, _, colours = _cloud()
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.offsets, header.scales = points.min(axis=0), np.array([1e-4, 1e-4, 1e-4])
    las = laspy.LasData(header)
    las.x, las.y, las.z = points[:, 0], points[:, 1], points[:, 2]
    las.red, las.green, las.blue = colours[:, 0], colours[:, 1], colours[:, 2]
    buffer = io.BytesIO()
    las.write(buffer, do_compress=compressed)
    return buffer.getvalue()


SEEDS = {
    "binary PLY": [_ply("binary_little_endian"), _ply("binary_big_endian")],
    "ASCII PLY": [_ply("ascii")],
    "XYZ text": [_xyz()],
    "NPY": [_npy(False), _npy(False, fortran=True), _npy(True)],
    "LAS/LAZ": [_las(False), _las(True)],
}


# --- strategies ------------------------------------------------------------------------------


@st.composite
def byte_mutations(draw: st.DrawFn, seeds: list[bytes]) -> bytes:
    """A seed with a few bytes flipped, set, inserted, deleted or duplicated, or cut short."""
    blob = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "duplicate", "cut"]))
        at = draw(st.integers(0, max(0, len(blob) - 1)))
        if kind == "flip" and blob:
            blob[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and blob:
            blob[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            blob[at:at] = draw(st.binary(min_size=1, max_size=24))
        elif kind == "delete":
            del blob[at:at + draw(st.integers(1, 24))]
        elif kind == "duplicate":
            blob[at:at] = blob[at:at + draw(st.integers(1, 64))]
        elif kind == "cut":
            del blob[at:]
    return bytes(blob)


@st.composite
def token_mutations(draw: st.DrawFn, seeds: list[bytes], vocabulary: list[str]) -> bytes:
    """A text seed with whitespace-separated tokens replaced, inserted or removed."""
    text = draw(st.sampled_from(seeds)).decode("latin-1")
    tokens = text.split(" ")
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(tokens) - 1))
        kind = draw(st.sampled_from(["replace", "insert", "remove", "newline"]))
        word = draw(st.sampled_from(vocabulary))
        if kind == "replace":
            tokens[at] = word
        elif kind == "insert":
            tokens.insert(at, word)
        elif kind == "remove" and len(tokens) > 1:
            del tokens[at]
        elif kind == "newline":
            tokens[at] += "\n"
    return " ".join(tokens).encode("utf-8", "surrogatepass")


@st.composite
def header_mutations(draw: st.DrawFn) -> bytes:
    """A PLY whose header lines are dropped, doubled, swapped or given other words."""
    blob = draw(st.sampled_from(SEEDS["binary PLY"] + SEEDS["ASCII PLY"]))
    end = blob.index(b"end_header\n") + len(b"end_header\n")
    lines = blob[:end].decode("ascii").splitlines()
    words = [*INTERESTING_NUMBERS, *PLY_TYPES, "list", "vertex", "face", "x", "float128",
             "element", "property", "format", "ascii", "binary_little_endian", "end_header"]
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(1, len(lines) - 1))
        kind = draw(st.sampled_from(["drop", "double", "swap", "word"]))
        if kind == "drop" and len(lines) > 2:
            del lines[at]
        elif kind == "double":
            lines.insert(at, lines[at])
        elif kind == "swap":
            other = draw(st.integers(1, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif kind == "word":
            parts = lines[at].split()
            if parts:
                parts[draw(st.integers(0, len(parts) - 1))] = draw(st.sampled_from(words))
                lines[at] = " ".join(parts)
    return ("\n".join(lines) + "\n").encode("utf-8") + blob[end:]


# --- the property ----------------------------------------------------------------------------


def outcome(data: bytes, fmt: str | None, max_points: int = 2_000_000) -> str:
    """'refused' or 'accepted'; fails the test on anything else or on an invalid cloud."""
    try:
        cloud = load_point_cloud(data, format=fmt, max_points=max_points, seed=1)
    except InvalidPointCloud as error:
        assert error.message
        return "refused"
    check_cloud(cloud)
    return "accepted"


def check_cloud(cloud: PointCloud) -> None:
    points = cloud.points
    assert points.dtype == np.float64 and points.ndim == 2 and points.shape[1] == 3
    assert np.isfinite(points).all()
    assert len(np.unique(points, axis=0)) >= MIN_DISTINCT_POINTS
    if cloud.normals is not None:
        assert cloud.normals.shape == points.shape and np.isfinite(cloud.normals).all()
        np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1.0, atol=1e-6)
    if cloud.colours is not None:
        assert cloud.colours.shape == points.shape and np.isfinite(cloud.colours).all()
        assert cloud.colours.min() >= 0.0 and cloud.colours.max() <= 1.0


def run(strategy: st.SearchStrategy[bytes], formats: list[str | None], tally: Counter[str],
        examples: int = EXAMPLES) -> None:
    @fuzz_settings(examples)
    @given(data=strategy, fmt=st.sampled_from(formats), small=st.booleans())
    def property_holds(data: bytes, fmt: str | None, small: bool) -> None:
        tally[outcome(data, fmt, max_points=20 if small else 2_000_000)] += 1

    property_holds()


TARGETS: dict[str, Callable[[], tuple[st.SearchStrategy[bytes], list[str | None]]]] = {
    "random bytes": lambda: (st.binary(max_size=4096), FORMATS),
    "random bytes after a PLY magic": lambda: (
        st.binary(max_size=2048).map(lambda b: b"ply\nformat ascii 1.0\n" + b), [None, "ply"]),
    "mutated binary PLY": lambda: (byte_mutations(SEEDS["binary PLY"]), [None, "ply"]),
    "mutated ASCII PLY (bytes)": lambda: (byte_mutations(SEEDS["ASCII PLY"]), [None, "ply"]),
    "mutated ASCII PLY (tokens)": lambda: (
        token_mutations(SEEDS["ASCII PLY"], INTERESTING_TOKENS), [None, "ply"]),
    "mutated PLY headers": lambda: (header_mutations(), [None, "ply"]),
    "mutated XYZ text (bytes)": lambda: (byte_mutations(SEEDS["XYZ text"]), ["xyz", "pts"]),
    "mutated XYZ text (tokens)": lambda: (
        token_mutations(SEEDS["XYZ text"], INTERESTING_TOKENS), ["xyz", None]),
    "mutated NPY": lambda: (byte_mutations(SEEDS["NPY"]), [None, "npy"]),
    "mutated LAS/LAZ": lambda: (byte_mutations(SEEDS["LAS/LAZ"]), [None, "las"]),
}


@pytest.mark.parametrize("target", list(TARGETS))
def test_readers_raise_only_invalid_point_cloud(
    target: str, request: pytest.FixtureRequest
) -> None:
    strategy, formats = TARGETS[target]()
    tally: Counter[str] = Counter()
    passed = False
    try:
        run(strategy, formats, tally)
        passed = True
    finally:
        record_scenario(
            GROUP,
            f"parser fuzzing: {target}",
            {"examples": sum(tally.values()), "refused": tally["refused"],
             "accepted": tally["accepted"], "max_examples": EXAMPLES},
            passed=passed,
            test=request.node.nodeid,
        )


def test_the_seeds_themselves_are_accepted() -> None:
    """The mutations start from valid files, so the fuzzing explores near the accepted ones."""
    for name, blobs in SEEDS.items():
        for blob in blobs:
            assert outcome(blob, None) == "accepted", name
