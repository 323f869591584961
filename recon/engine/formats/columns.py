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

The readers decode a file a block of rows at a time, so every rule that looks at all rows (unit
length, colour range) is kept as running statistics (`TripleStats`) and applied once the last
block is in (`Layout.resolve`); only the rows kept after subsampling are stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np

from recon.engine.errors import InvalidPointCloud

TABLE_LAYOUTS = (
    "3 columns (x y z), 4 (x y z intensity), 6 (x y z nx ny nz, or x y z r g b), "
    "7 (x y z intensity r g b) or 9 (x y z with normals and colours in either order)")
"""The table rule in one line, for error messages and the docs."""

UNIT_TOLERANCE = 1e-2
"""A row's triple reads as a normal when its length is within this of 1."""

_MIN_NORMAL_LENGTH = 1e-12
"""Normals shorter than this are unusable."""

_NORMAL_NAMES = (("nx", "ny", "nz"), ("normal_x", "normal_y", "normal_z"))
_COLOUR_NAMES = (("red", "green", "blue"), ("diffuse_red", "diffuse_green", "diffuse_blue"))

#: What a triple of columns after x y z holds: normals, colours (LAS: 8 or 16 bits by the
#: largest value), or either, decided by the table rule once every row was seen.
Role = Literal["normals", "colours", "las_colours", "either"]

#: How a named property can be used: a number, a list (PLY), or something else (NPY text).
PropertyKind = Literal["number", "list", "other"]


@dataclass
class ColourStats:
    """Running facts about colour values that decide their scale: finite, range, integral."""

    dtype: np.dtype | None = None
    finite: bool = True
    low: float = np.inf
    high: float = -np.inf
    integral: bool = True

    def update(self, values: np.ndarray) -> ColourStats:
        if values.size == 0:
            return self
        if self.dtype is None:
            self.dtype = values.dtype
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            self.finite = False
            return self
        self.low = min(self.low, float(values.min()))
        self.high = max(self.high, float(values.max()))
        if self.integral and values.dtype.kind == "f":
            self.integral = bool(np.array_equal(values, np.round(values)))
        return self

    def convert(self, values: np.ndarray, where: str) -> np.ndarray:
        """Values of this colour column -> float32 sRGB in 0-1 (the module docstring's scales)."""
        if not self.finite:
            raise InvalidPointCloud(f"{where}: colour values must be finite")
        if self.dtype == np.uint8:
            return (values / 255.0).astype(np.float32)
        if self.dtype == np.uint16:
            return (values / 65535.0).astype(np.float32)
        if self.low >= 0.0 and self.high <= 1.0:
            return values.astype(np.float32)
        if self.low >= 0.0 and self.high <= 255.0 and self.integral:
            return (values / 255.0).astype(np.float32)
        raise InvalidPointCloud(f"{where}: colour values must be 0-1 floats or 0-255 integers, "
                                f"found {self.low:g} to {self.high:g}")


def colour_values(values: np.ndarray, where: str) -> np.ndarray:
    """(n, 3) colour values -> float32 sRGB in 0-1 (see the module docstring for the scales)."""
    return ColourStats().update(values).convert(values, where)


@dataclass
class TripleStats:
    """Running facts about one triple of columns over every row, kept or not."""

    role: Role
    unit: bool = True
    bad_normals: int = 0
    first_bad_normal: int = -1
    colours: ColourStats = field(default_factory=ColourStats)

    def update(self, values: np.ndarray, start: int) -> None:
        """Fold in rows ``start .. start + len(values)`` of the triple."""
        if self.role in ("normals", "either"):
            with np.errstate(over="ignore", invalid="ignore"):  # overflow: not a usable normal
                length = np.linalg.norm(values.astype(np.float64), axis=1)
            bad = ~np.isfinite(length) | (length < _MIN_NORMAL_LENGTH)
            if bad.any():
                self.first_bad_normal = self.first_bad_normal if self.bad_normals else \
                    start + int(np.argmax(bad))
                self.bad_normals += int(bad.sum())
            if self.role == "either" and self.unit:
                self.unit = bool(np.all(np.abs(length - 1.0) <= UNIT_TOLERANCE))
        if self.role != "normals":
            self.colours.update(values)


@dataclass(frozen=True)
class Resolved:
    """What the triples turned out to be: kept normals (raw, with their stats) and colours."""

    normals: np.ndarray | None = None
    normal_stats: TripleStats | None = None
    colours: np.ndarray | None = None


class Layout(Protocol):
    """How a reader's rows split into points and triples, and what the triples are at the end."""

    @property
    def roles(self) -> tuple[Role, ...]:
        """What each triple after x y z holds, in the order the reader passes them."""
        ...

    def resolve(self, kept: Sequence[np.ndarray], stats: Sequence[TripleStats]) -> Resolved:
        """Normals and colours from the kept rows of each triple and their all-row stats."""
        ...


@dataclass(frozen=True)
class NamedLayout:
    """Points, normals and colours by property name (PLY elements, structured NPY)."""

    where: str
    normals: tuple[str, str, str] | None = None
    colours: tuple[str, str, str] | None = None

    @classmethod
    def of(cls, kinds: Mapping[str, PropertyKind], where: str) -> NamedLayout:
        """The layout of properties with these kinds; raises when x/y/z are missing or unusable."""
        missing = [n for n in ("x", "y", "z") if n not in kinds]
        if missing:
            found = ", ".join(kinds) or "none"
            raise InvalidPointCloud(f"{where} has no {'/'.join(missing)} coordinate property "
                                    f"(properties found: {found})")
        if any(kinds[n] == "list" for n in "xyz"):
            raise InvalidPointCloud(f"{where} stores x/y/z as lists, not scalar values")
        if any(kinds[n] != "number" for n in "xyz"):
            raise InvalidPointCloud(f"{where} stores x/y/z as values that are not numbers")

        def numbers(names: tuple[str, str, str]) -> bool:
            return all(kinds.get(n) == "number" for n in names)

        normals = next((names for names in _NORMAL_NAMES if numbers(names)), None)
        colours = next((names for names in _COLOUR_NAMES if numbers(names)), None)
        return cls(where, normals, colours)

    @property
    def roles(self) -> tuple[Role, ...]:
        roles: tuple[Role, ...] = ("normals",) if self.normals else ()
        return roles + (("colours",) if self.colours else ())

    def split(self, props: Mapping[str, object]) -> tuple[np.ndarray, list[np.ndarray]]:
        """(rows, 3) float64 points and the raw triples of one block of properties."""
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float64: inf, refused later
            points = np.stack([np.asarray(props[n], dtype=np.float64) for n in "xyz"], axis=1)
            normals = [np.asarray(props[n], np.float64) for n in self.normals or ()]
        triples = []
        if normals:
            triples.append(np.stack(normals, axis=1))
        if self.colours:
            triples.append(np.stack([np.asarray(props[n]) for n in self.colours], axis=1))
        return points, triples

    def resolve(self, kept: Sequence[np.ndarray], stats: Sequence[TripleStats]) -> Resolved:
        normals = normal_stats = colours = None
        index = 0
        if self.normals:
            normals, normal_stats, index = kept[0], stats[0], 1
        if self.colours:
            where = f"{self.where} ({'/'.join(self.colours)})"
            colours = stats[index].colours.convert(kept[index], where)
        return Resolved(normals, normal_stats, colours)


def table_shape_error(shape: tuple[int, ...], what: str) -> InvalidPointCloud:
    """The refusal of a table whose shape fits no layout of the rule."""
    text = "x".join(map(str, shape))
    return InvalidPointCloud(f"expected {TABLE_LAYOUTS} per {what}; found an array of "
                             f"shape {text}")


_TABLE_ROLES: dict[int, tuple[Role, ...]] = {
    3: (), 4: (), 6: ("either",), 7: ("colours",), 9: ("either", "either")}


@dataclass(frozen=True)
class TableLayout:
    """Points, normals and colours of a plain ``(rows, width)`` table, by the module's rule."""

    width: int
    what: str

    @classmethod
    def of(cls, shape: tuple[int, ...], what: str) -> TableLayout:
        """The layout of a table of this shape; raises when the rule has none for it."""
        if len(shape) != 2 or shape[1] not in _TABLE_ROLES:
            raise table_shape_error(shape, what)
        return cls(shape[1], what)

    @property
    def roles(self) -> tuple[Role, ...]:
        return _TABLE_ROLES[self.width]

    def split(self, table: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """(rows, 3) float64 points and the triples of one block of rows."""
        points = np.ascontiguousarray(table[:, :3], dtype=np.float64)
        if self.width == 7:
            return points, [table[:, 4:7]]
        return points, [table[:, 3 + 3 * i:6 + 3 * i] for i in range(len(self.roles))]

    def resolve(self, kept: Sequence[np.ndarray], stats: Sequence[TripleStats]) -> Resolved:
        what, width = self.what, self.width
        if width in (3, 4):
            return Resolved()
        if width == 7:
            where = f"the colour columns 5-7 of each {what}"
            return Resolved(colours=stats[0].colours.convert(kept[0], where))
        if width == 6:
            if stats[0].unit:
                return Resolved(kept[0], stats[0])
            return Resolved(colours=_table_colours(kept[0], stats[0], what, width))
        if stats[0].unit == stats[1].unit:
            raise InvalidPointCloud(
                f"cannot tell normals from colours in the 9 columns of each {what}: "
                f"{'both' if stats[0].unit else 'neither'} of the triples 4-6 and 7-9 have unit "
                "length on every row; write x y z nx ny nz r g b with unit normals, or use PLY "
                "with named properties")
        n, c = (0, 1) if stats[0].unit else (1, 0)
        return Resolved(kept[n], stats[n], _table_colours(kept[c], stats[c], what, width))


def _table_colours(values: np.ndarray, stats: TripleStats, what: str, width: int) -> np.ndarray:
    try:
        return stats.colours.convert(values, f"each {what}")
    except InvalidPointCloud as error:
        raise InvalidPointCloud(
            f"the {width} columns of each {what} are neither x y z with unit normals nor with "
            f"colours ({error}); the layouts read are {TABLE_LAYOUTS}") from None


@dataclass(frozen=True)
class LasLayout:
    """LAS/LAZ points and, when the point format has them, RGB colours.

    The specification asks for 16-bit colour values but many writers store 8-bit ones in those
    fields, so colours whose largest value (over every point) is at most 255 are read as 8-bit.
    """

    has_colours: bool

    @property
    def roles(self) -> tuple[Role, ...]:
        return ("las_colours",) if self.has_colours else ()

    def resolve(self, kept: Sequence[np.ndarray], stats: Sequence[TripleStats]) -> Resolved:
        if not self.has_colours:
            return Resolved()
        scale = 255.0 if stats[0].colours.high <= 255 else 65535.0
        return Resolved(colours=(kept[0] / scale).astype(np.float32))
