"""Loading and validating input point clouds (PLY, XYZ/PTS text, NPY, LAS/LAZ) without torch.

The HTTP service calls :func:`load_point_cloud` on every upload before queueing a job, so each
rejection is an :class:`InvalidPointCloud` whose message tells the user what to fix.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import laspy
import numpy as np

from recon.engine.errors import InvalidPointCloud
from recon.engine.formats.columns import Columns, colour_values, from_properties, from_table
from recon.engine.formats.ply import PlyError, read_ply

#: Fewest distinct points accepted: below this no surface can be fitted meaningfully.
MIN_DISTINCT_POINTS = 16

#: Default cap on the number of points; larger clouds are subsampled (seeded), not rejected.
DEFAULT_MAX_POINTS = 2_000_000

SUPPORTED_POINT_FORMATS = ("ply", "xyz", "pts", "npy", "las")

#: File suffixes read as a format other than their own name (laspy reads LAZ as LAS).
SUFFIX_ALIASES = {"txt": "xyz", "asc": "xyz", "laz": "las"}

#: Bytes from the start of a file that sniffing looks at.
SNIFF_BYTES = 4096

#: Rows checked for distinct points before falling back to a full ``np.unique``.
_DISTINCT_PREFIX_ROWS = 4096

#: Normals shorter than this are treated as missing.
_MIN_NORMAL_LENGTH = 1e-12

#: Leading bytes of the binary point formats -> the format they name.
_FORMAT_MAGIC = {b"ply": "ply", b"\x93NUMPY": "npy", b"LASF": "las"}

#: Leading bytes of binary files people upload by mistake -> what to call them in messages.
#: The engine reads none of them, so a service may refuse them before parsing.
FOREIGN_MAGIC = {
    b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image", b"GIF8": "a GIF image",
    b"%PDF": "a PDF document", b"PK\x03\x04": "a ZIP archive",
    b"\x1f\x8b": "gzip-compressed data", b"glTF": "a glTF binary (GLB) mesh",
}

#: Every signature `describe_content` names: the foreign ones, text look-alikes, NumPy.
_KNOWN_MAGIC = {
    **FOREIGN_MAGIC,
    b"solid": "an ASCII STL mesh", b"<": "an HTML/XML document", b"{": "a JSON document",
    b"\x93NUMPY": "a NumPy array",
}


@dataclass(frozen=True)
class PointCloud:
    """A validated point cloud in input coordinates.

    Attributes
    ----------
    points : (n, 3) float64
    normals : (n, 3) float64 unit vectors, or None
    warnings : messages for the user (subsampling, dropped normals)
    colours : (n, 3) float32 sRGB in 0-1, or None (recon.engine.formats.columns)
    """

    points: np.ndarray
    normals: np.ndarray | None = None
    warnings: tuple[str, ...] = ()
    colours: np.ndarray | None = None


def describe_content(data: bytes) -> str:
    """Say in a few words what some bytes look like, for error messages."""
    if not data:
        return "an empty file"
    for magic, what in _KNOWN_MAGIC.items():
        if data.startswith(magic):
            return what
    head = data[:2048]
    if b"\x00" in head:
        return f"binary data starting with {data[:8]!r}"
    return f"text starting with {head[:40].decode('utf-8', 'replace')!r}"


def foreign_content(data: bytes) -> str | None:
    """What some bytes are when they start like a known binary non-point file (an image, an
    archive, a GLB mesh), else None."""
    return next((what for magic, what in FOREIGN_MAGIC.items() if data.startswith(magic)), None)


def magic_format(data: bytes) -> str | None:
    """The binary point format the first bytes name (``ply`` or ``npy``), else None."""
    return next((fmt for magic, fmt in _FORMAT_MAGIC.items() if data.startswith(magic)), None)


def sniff_format(data: bytes) -> str:
    """Guess the point format of some bytes: ``ply``, ``npy`` or ``xyz``.

    Raises
    ------
    InvalidPointCloud
        When the content is none of the supported formats.
    """
    fmt = magic_format(data)
    if fmt is not None:
        return fmt
    head = data[:SNIFF_BYTES]
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    rows = [ln.split("#", 1)[0].replace(",", " ").split() for ln in text.splitlines()]
    rows = [row for row in rows if row]
    if rows and all(_is_number(tok) for row in rows[:8] for tok in row):
        return "xyz"
    raise InvalidPointCloud(f"unrecognised point cloud: the content looks like "
                            f"{describe_content(data)}; expected a PLY, XYZ/PTS text or NPY file")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _read_source(source: str | os.PathLike | bytes, format: str | None) -> tuple[bytes, str]:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        suffix = ""
    else:
        path = Path(source)
        try:
            data = path.read_bytes()
        except OSError as error:
            raise InvalidPointCloud(f"cannot read {path}: {error.strerror}") from None
        suffix = path.suffix.lower().lstrip(".")
        suffix = SUFFIX_ALIASES.get(suffix, suffix)
    if not data.strip():
        raise InvalidPointCloud("the point cloud file is empty (no points)")
    if format is not None:
        if format.lower() not in SUPPORTED_POINT_FORMATS:
            raise ValueError(f"unknown point cloud format {format!r}; "
                             f"valid formats: {', '.join(SUPPORTED_POINT_FORMATS)}")
        return data, format.lower()
    return data, suffix if suffix in SUPPORTED_POINT_FORMATS else sniff_format(data)


def load_point_cloud(source: str | os.PathLike | bytes, *, format: str | None = None,
                     max_points: int = DEFAULT_MAX_POINTS, seed: int = 0) -> PointCloud:
    """Read and validate a point cloud.

    Parameters
    ----------
    source : a path (format from its suffix, else sniffed) or the file's bytes (format sniffed).
    format : one of SUPPORTED_POINT_FORMATS to override the guess.
    max_points : clouds with more points are subsampled to this many, with a warning.
    seed : seed of the subsampling generator.

    Returns
    -------
    PointCloud with float64 points and, when present and usable, unit normals and colours.

    Raises
    ------
    InvalidPointCloud
        Empty or unreadable content, missing coordinates, NaN/inf, count mismatches, fewer than
        MIN_DISTINCT_POINTS distinct points.
    """
    data, fmt = _read_source(source, format)
    readers = {"ply": _points_from_ply, "xyz": _points_from_text, "pts": _points_from_text,
               "npy": _points_from_npy, "las": _points_from_las}
    return _validated(readers[fmt](data), max_points=max_points, seed=seed)


def _validated(columns: Columns, *, max_points: int, seed: int) -> PointCloud:
    points, normals, colours = columns.points, columns.normals, columns.colours
    warnings: list[str] = []
    if len(points) == 0:
        raise InvalidPointCloud("the point cloud contains no points")
    bad = ~np.isfinite(points).all(axis=1)
    if bad.any():
        raise InvalidPointCloud(
            f"{int(bad.sum())} of {len(points)} points have NaN or infinite coordinates "
            f"(first at index {int(np.argmax(bad))}); remove them and upload again")
    if normals is not None:
        normals, note = _usable_normals(normals)
        warnings += [note] if note else []
    if len(points) > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(len(points), max_points, replace=False))
        warnings.append(f"the cloud has {len(points)} points, more than the maximum of "
                        f"{max_points}; kept a random subset of {max_points} points (seed {seed})")
        points = points[keep]
        normals = normals[keep] if normals is not None else None
        colours = colours[keep] if colours is not None else None
    distinct = _distinct_count(points)
    if distinct < MIN_DISTINCT_POINTS:
        raise InvalidPointCloud(f"the point cloud has only {distinct} distinct points "
                                f"({len(points)} in total); at least {MIN_DISTINCT_POINTS} "
                                "distinct points are needed")
    return PointCloud(np.ascontiguousarray(points, dtype=np.float64),
                      normals, tuple(warnings), colours)


def _usable_normals(normals: np.ndarray) -> tuple[np.ndarray | None, str | None]:
    """Unit normals, or None and a warning when some are zero-length or not finite."""
    length = np.linalg.norm(normals, axis=1)
    bad = ~np.isfinite(length) | (length < _MIN_NORMAL_LENGTH)
    if bad.any():
        return None, (f"ignored the normals: {int(bad.sum())} of {len(normals)} are zero-length "
                      f"or not finite (first at index {int(np.argmax(bad))}); the points are "
                      "used without normals")
    return np.ascontiguousarray(normals / length[:, None], dtype=np.float64), None


def _distinct_count(points: np.ndarray) -> int:
    """Number of distinct rows, computed on a prefix when that already suffices."""
    prefix = points[:_DISTINCT_PREFIX_ROWS] + 0.0  # + 0.0 folds -0.0 into 0.0
    distinct = len(np.unique(prefix, axis=0))
    if distinct >= MIN_DISTINCT_POINTS or len(points) <= _DISTINCT_PREFIX_ROWS:
        return distinct
    return len(np.unique(points + 0.0, axis=0))


# --- format readers: bytes -> Columns (recon.engine.formats.columns says what columns mean) ----


def _points_from_ply(data: bytes) -> Columns:
    try:
        ply = read_ply(data)
    except PlyError as error:
        message = str(error)
        if message.startswith("not a PLY file"):
            message = (f"not a PLY file: the content looks like {describe_content(data)} "
                       "(a PLY file starts with 'ply')")
        raise InvalidPointCloud(message) from None
    if "vertex" not in ply:
        found = ", ".join(ply.elements) or "none"
        raise InvalidPointCloud(f"the PLY file has no 'vertex' element (elements found: {found})")
    return from_properties(ply["vertex"].properties, "the PLY vertex element")


def _points_from_text(data: bytes) -> Columns:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPointCloud(f"not an XYZ/PTS text file: the content looks like "
                                f"{describe_content(data)}") from None
    lines = [ln.split("#", 1)[0].replace(",", " ").strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]
    if not lines:
        raise InvalidPointCloud("the point cloud file is empty (only comments or blank lines)")
    declared = None
    if len(lines[0].split()) == 1 and lines[0].isdigit():
        declared, lines = int(lines[0]), lines[1:]
    if declared is not None and declared != len(lines):
        raise InvalidPointCloud(f"the file declares {declared} points on its first line but "
                                f"holds {len(lines)} rows")
    if not lines:
        raise InvalidPointCloud("the point cloud contains no points")
    try:
        table = np.loadtxt(lines, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise InvalidPointCloud(f"cannot read the text point cloud: {error}") from None
    return from_table(table, "text row")


def _points_from_npy(data: bytes) -> Columns:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InvalidPointCloud(f"cannot read the NPY array ({error}); the content looks like "
                                f"{describe_content(data)}") from None
    if array.dtype.names:
        props = {name: array[name] for name in array.dtype.names}
        return from_properties(props, "the NPY structured array")
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise InvalidPointCloud(f"the NPY array holds {array.dtype} values, not real numbers")
    return from_table(array.astype(np.float64), "NPY array row")


def _points_from_las(data: bytes) -> Columns:
    """LAS or LAZ (laspy; LAZ through its lazrs backend): scaled coordinates in float64, so survey
    coordinates keep their precision, and RGB where the point format has it. The specification
    asks for 16-bit colour values but many writers store 8-bit ones in those fields, so colours
    whose largest value is at most 255 are read as 8-bit."""
    try:
        las = laspy.read(io.BytesIO(data))
    except (laspy.errors.LaspyException, ValueError, OSError, EOFError) as error:
        raise InvalidPointCloud(f"cannot read the LAS/LAZ file: {error}") from None
    points = np.stack([np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)], axis=1)
    if not {"red", "green", "blue"} <= set(las.point_format.dimension_names):
        return Columns(points.astype(np.float64))
    rgb = np.stack([np.asarray(las.red), np.asarray(las.green), np.asarray(las.blue)], axis=1)
    rgb = rgb.astype(np.uint8) if rgb.size and rgb.max() <= 255 else rgb.astype(np.uint16)
    return Columns(points.astype(np.float64), colours=colour_values(rgb, "the LAS colours"))
