"""What the columns of a point file mean: positions, normals and colours, by one documented rule.

Named properties (PLY, structured NPY) say what they are: x/y/z, nx/ny/nz or normal_x/y/z, and
red/green/blue or diffuse_red/green/blue (any alpha is ignored). Plain tables (XYZ/PTS text, NPY
arrays) have only a column count, so the rule is:

- 3 columns: x y z;
- 4: x y z intensity (PTS; the intensity is not used);
- 6: x y z, then normals when every row's last three values form a unit vector, colours when they
  are colour values; anything else is refused;
- 7: x y z intensity r g b (PTS);
- 9: x y z and two triples, one of them unit normals and the other colours, in either order.

Colour values are 0-1 floats, or integers 0-255 (or 0-65535 in a 16-bit PLY property); all come
out as sRGB in 0-1. A table whose triples fit neither reading, or both, is refused with a message
that names the rule, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recon.engine.errors import InvalidPointCloud
from recon.engine.formats.ply import PlyList

TABLE_LAYOUTS = (
    "3 columns (x y z), 4 (x y z intensity), 6 (x y z nx ny nz, or x y z r g b), "
    "7 (x y z intensity r g b) or 9 (x y z with normals and colours in either order)")
"""The table rule in one line, for error messages and the docs."""

UNIT_TOLERANCE = 1e-2
"""A row's triple reads as a normal when its length is within this of 1."""

_NORMAL_NAMES = (("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z"))
_COLOUR_NAMES = (("red", "green", "blue"), ("diffuse_red", "diffuse_green", "diffuse_blue"))


@dataclass(frozen=True)
class Columns:
    """(n, 3) float64 points, and (n, 3) normals and (n, 3) float32 sRGB colours in 0-1, or None."""

    points: np.ndarray
    normals: np.ndarray | None = None
    colours: np.ndarray | None = None


def colour_values(values: np.ndarray, where: str) -> np.ndarray:
    """(n, 3) colour values -> float32 sRGB in 0-1 (see the module docstring for the scales)."""
    if not np.isfinite(values).all():
        raise InvalidPointCloud(f"{where}: colour values must be finite")
    if values.dtype == np.uint8:
        return (values / 255.0).astype(np.float32)
    if values.dtype == np.uint16:
        return (values / 65535.0).astype(np.float32)
    low, high = float(values.min()), float(values.max())
    if low >= 0.0 and high <= 1.0:
        return values.astype(np.float32)
    if low >= 0.0 and high <= 255.0 and np.array_equal(values, np.round(values)):
        return (values / 255.0).astype(np.float32)
    raise InvalidPointCloud(
        f"{where}: colour values must be 0-1 floats or 0-255 integers, found {low:g} to {high:g}")


def from_properties(props: dict, where: str) -> Columns:
    """Columns of a PLY element or structured NPY array, by property name."""
    def scalar(names: tuple[str, ...]) -> bool:
        return all(n in props and not isinstance(props[n], PlyList) for n in names)

    missing = [n for n in ("x", "y", "z") if n not in props]
    if missing:
        found = ", ".join(props) or "none"
        raise InvalidPointCloud(f"{where} has no {'/'.join(missing)} coordinate property "
                                f"(properties found: {found})")
    if not scalar(("x", "y", "z")):
        raise InvalidPointCloud(f"{where} stores x/y/z as lists, not scalar values")
    points = np.stack([np.asarray(props[n], dtype=np.float64) for n in ("x", "y", "z")], axis=1)
    normals = colours = None
    for names in _NORMAL_NAMES:
        if scalar(names):
            normals = np.stack([np.asarray(props[n], np.float64) for n in names], axis=1)
            break
    for names in _COLOUR_NAMES:
        if scalar(names):
            stacked = np.stack([np.asarray(props[n]) for n in names], axis=1)
            colours = colour_values(stacked, f"{where} ({'/'.join(names)})")
            break
    return Columns(points, normals, colours)


def from_table(table: np.ndarray, what: str) -> Columns:
    """Columns of a plain (n, c) table by the module docstring's rule."""
    width = table.shape[1] if table.ndim == 2 else None
    if width not in (3, 4, 6, 7, 9):
        shape = "x".join(map(str, table.shape))
        raise InvalidPointCloud(f"expected {TABLE_LAYOUTS} per {what}; found an array of "
                                f"shape {shape}")
    points = table[:, :3].copy()
    if width in (3, 4):
        return Columns(points)
    if width == 7:
        return Columns(points, colours=colour_values(table[:, 4:7],
                                                     f"the colour columns 5-7 of each {what}"))
    triples = [table[:, 3:6], table[:, 6:9]] if width == 9 else [table[:, 3:6]]
    unit = [_all_unit(triple) for triple in triples]
    if width == 6:
        if unit[0]:
            return Columns(points, normals=triples[0].copy())
        return Columns(points, colours=_table_colours(triples[0], what, width))
    if unit[0] == unit[1]:
        raise InvalidPointCloud(
            f"cannot tell normals from colours in the 9 columns of each {what}: "
            f"{'both' if unit[0] else 'neither'} of the triples 4-6 and 7-9 have unit length on "
            "every row; write x y z nx ny nz r g b with unit normals, or use PLY with named "
            "properties")
    normals, colours = (triples[0], triples[1]) if unit[0] else (triples[1], triples[0])
    return Columns(points, normals=normals.copy(), colours=_table_colours(colours, what, width))


def _all_unit(triple: np.ndarray) -> bool:
    length = np.linalg.norm(triple, axis=1)
    return bool(np.all(np.abs(length - 1.0) <= UNIT_TOLERANCE))


def _table_colours(triple: np.ndarray, what: str, width: int) -> np.ndarray:
    try:
        return colour_values(triple, f"each {what}")
    except InvalidPointCloud as error:
        raise InvalidPointCloud(
            f"the {width} columns of each {what} are neither x y z with unit normals nor with "
            f"colours ({error}); the layouts read are {TABLE_LAYOUTS}") from None
