"""Loading and validating input point clouds (PLY, XYZ/PTS text, NPY, LAS/LAZ) without torch.

The HTTP service calls :func:`load_point_cloud` on every upload before queueing a job, so each
rejection is an :class:`InvalidPointCloud` whose message tells the user what to fix. Files are
parsed a block at a time (`recon.engine.formats.cloud_readers`): memory follows the points kept
(at most `max_points`), not the size of the file, in the API and in the worker alike.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from recon.engine.errors import InvalidPointCloud
from recon.engine.formats.accumulate import CloudAccumulator, Gathered
from recon.engine.formats.cloud_readers import READERS
from recon.engine.formats.sniff import (
    FOREIGN_MAGIC,
    describe_content,
    foreign_content,
    magic_format,
    sniff_format,
)
from recon.engine.formats.source import SNIFF_BYTES, Source, open_source
from recon.engine.formats.spread import degenerate_reason

__all__ = [
    "DEFAULT_MAX_POINTS", "FOREIGN_MAGIC", "MIN_DISTINCT_POINTS", "SNIFF_BYTES", "SUFFIX_ALIASES",
    "SUPPORTED_POINT_FORMATS", "PointCloud", "describe_content", "foreign_content",
    "load_point_cloud", "magic_format", "sniff_format",
]

#: Fewest distinct points accepted: below this no surface can be fitted meaningfully.
MIN_DISTINCT_POINTS = 16

#: Default cap on the number of points; larger clouds are subsampled (seeded), not rejected.
DEFAULT_MAX_POINTS = 2_000_000

SUPPORTED_POINT_FORMATS = ("ply", "xyz", "pts", "npy", "las")

#: File suffixes read as a format other than their own name (laspy reads LAZ as LAS).
SUFFIX_ALIASES = {"txt": "xyz", "asc": "xyz", "csv": "xyz", "laz": "las"}

#: Rows checked for distinct points before falling back to a full ``np.unique``.
_DISTINCT_PREFIX_ROWS = 4096


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


def _format_of(source: Source, format: str | None) -> str:
    if source.size == 0 or (source.size <= len(source.head) and not source.head.strip()):
        raise InvalidPointCloud("the point cloud file is empty (no points)")
    if format is not None:
        if format.lower() not in SUPPORTED_POINT_FORMATS:
            raise ValueError(f"unknown point cloud format {format!r}; "
                             f"valid formats: {', '.join(SUPPORTED_POINT_FORMATS)}")
        return format.lower()
    suffix = SUFFIX_ALIASES.get(source.suffix, source.suffix)
    return suffix if suffix in SUPPORTED_POINT_FORMATS else sniff_format(source.head)


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
        MIN_DISTINCT_POINTS distinct points, all points on one line.
    """
    with open_source(source) as opened:
        read = READERS[_format_of(opened, format)]
        acc = CloudAccumulator(max_points=max_points, seed=seed)
        read(opened, acc)
        if acc.overflowed:  # the count is known now: read again, keeping the seeded subset
            acc = CloudAccumulator(max_points=max_points, seed=seed, total=acc.rows)
            read(opened, acc)
        gathered = acc.gather()
    return _validated(gathered, max_points=max_points, seed=seed)


def _validated(gathered: Gathered, *, max_points: int, seed: int) -> PointCloud:
    rows, points, resolved = gathered.rows, gathered.points, gathered.resolved
    if rows == 0:
        raise InvalidPointCloud("the point cloud contains no points")
    if gathered.bad_points:
        raise InvalidPointCloud(
            f"{gathered.bad_points} of {rows} points have NaN or infinite coordinates "
            f"(first at index {gathered.first_bad_point}); remove them and upload again")
    warnings: list[str] = []
    normals = None
    if resolved.normals is not None and resolved.normal_stats is not None:
        stats = resolved.normal_stats
        if stats.bad_normals:
            warnings.append(f"ignored the normals: {stats.bad_normals} of {rows} are zero-length "
                            f"or not finite (first at index {stats.first_bad_normal}); the points "
                            "are used without normals")
        else:
            length = np.linalg.norm(resolved.normals, axis=1)
            normals = np.ascontiguousarray(resolved.normals / length[:, None], dtype=np.float64)
    if rows > max_points:
        warnings.append(f"the cloud has {rows} points, more than the maximum of "
                        f"{max_points}; kept a random subset of {max_points} points (seed {seed})")
    distinct = _distinct_count(points)
    if distinct < MIN_DISTINCT_POINTS:
        raise InvalidPointCloud(f"the point cloud has only {distinct} distinct points "
                                f"({len(points)} in total); at least {MIN_DISTINCT_POINTS} "
                                "distinct points are needed")
    reason = degenerate_reason(points)
    if reason is not None:
        raise InvalidPointCloud(f"the point cloud cannot describe a surface: {reason}")
    return PointCloud(np.ascontiguousarray(points, dtype=np.float64), normals, tuple(warnings),
                      resolved.colours)


def _distinct_count(points: np.ndarray) -> int:
    """Number of distinct rows, computed on a prefix when that already suffices."""
    prefix = points[:_DISTINCT_PREFIX_ROWS] + 0.0  # + 0.0 folds -0.0 into 0.0
    distinct = len(np.unique(prefix, axis=0))
    if distinct >= MIN_DISTINCT_POINTS or len(points) <= _DISTINCT_PREFIX_ROWS:
        return distinct
    return len(np.unique(points + 0.0, axis=0))
