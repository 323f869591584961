"""The PLY data model (declared elements and properties, decoded values) and its error type.

Shared by the header parser (`recon.engine.formats.ply`) and the block decoders of element data
(`ply_binary`, `ply_ascii`, `ply_body`), which read a body a block of rows at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_PLURALS = {"vertex": "vertices", "face": "faces", "edge": "edges"}

#: Longest list one row may hold. Real polygons have a handful of corners; the cap keeps a
#: single row (a "list bomb") from growing a read buffer without bound.
MAX_LIST_LENGTH = 1 << 16


class PlyError(ValueError):
    """The bytes are not a well-formed PLY file; the message says what is wrong."""


@dataclass(frozen=True)
class PlyProperty:
    """One declared property: ``dtype`` is a numpy code (``"f4"``); lists have a ``count_dtype``."""

    name: str
    dtype: str
    count_dtype: str | None = None

    @property
    def is_list(self) -> bool:
        return self.count_dtype is not None


@dataclass(frozen=True)
class PlyElementHeader:
    """One declared element (``element vertex 1000``) and its properties, in file order."""

    name: str
    count: int
    properties: tuple[PlyProperty, ...]


@dataclass(frozen=True)
class PlyList:
    """A list property: row ``i`` holds ``values[offsets[i]:offsets[i] + counts[i]]``.

    Attributes
    ----------
    counts : (n,) int64
    values : (sum(counts),) the declared value type
    """

    counts: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.counts)

    def is_uniform(self) -> bool:
        return len(self.counts) == 0 or bool(np.all(self.counts == self.counts[0]))

    def as_array(self) -> np.ndarray:
        """Rows as an ``(n, k)`` array; raises PlyError when the rows differ in length."""
        if not self.is_uniform():
            raise PlyError("list rows have different lengths; use rows() instead")
        width = int(self.counts[0]) if len(self.counts) else 0
        return self.values.reshape(len(self.counts), width)

    def rows(self) -> list[np.ndarray]:
        """Rows as a list of 1-D arrays (slow for millions of rows; prefer as_array)."""
        return np.split(self.values, np.cumsum(self.counts)[:-1]) if len(self.counts) else []


#: One block of an element's rows: property name -> ``(rows,)`` array or `PlyList`.
PlyBlock = dict[str, "np.ndarray | PlyList"]


@dataclass(frozen=True)
class PlyElement:
    """The data of one element: property name -> ``(n,)`` array or :class:`PlyList`."""

    name: str
    count: int
    properties: dict[str, np.ndarray | PlyList]

    def __getitem__(self, name: str) -> np.ndarray | PlyList:
        return self.properties[name]

    def __contains__(self, name: object) -> bool:
        return name in self.properties


@dataclass(frozen=True)
class PlyData:
    """A parsed PLY file: elements by name (in file order), comments and obj_info lines."""

    format: str
    elements: dict[str, PlyElement]
    comments: tuple[str, ...] = ()
    obj_info: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> PlyElement:
        return self.elements[name]

    def __contains__(self, name: object) -> bool:
        return name in self.elements


def plural(element: str) -> str:
    """Name a count of ``element`` rows in messages (``vertex`` -> ``vertices``)."""
    return _PLURALS.get(element, f"'{element}' elements")


def truncated(element: PlyElementHeader, rows: int) -> PlyError:
    """The error for an element whose data ends after `rows` complete rows."""
    return PlyError(f"PLY header declares {element.count} {plural(element.name)} but the data "
                    f"holds only {rows}; the file looks truncated")


def list_too_long(element: PlyElementHeader, row: int, length: int | str) -> PlyError:
    """The error for a row whose list is longer than `MAX_LIST_LENGTH`."""
    return PlyError(f"PLY {element.name} row {row} declares a list of {length} values; at most "
                    f"{MAX_LIST_LENGTH} are read per row")


def cast_values(values: np.ndarray, dtype: str, element: PlyElementHeader,
                prop: PlyProperty) -> np.ndarray:
    """Float64 values parsed from text -> the property's type; integers must fit their type."""
    if dtype[0] == "f":
        return values.astype(dtype)
    info = np.iinfo(dtype)
    inside = np.isfinite(values) & (values >= info.min) & (values <= info.max)
    if not inside.all():
        bad = values[~inside][0]
        raise PlyError(f"PLY {element.name} property {prop.name!r} holds {bad:g}, which does not "
                       f"fit its integer type")
    return values.astype(np.int64).astype(dtype)


def empty_element(element: PlyElementHeader) -> PlyElement:
    """An element whose rows hold no data (no rows, or no properties)."""
    props: dict[str, np.ndarray | PlyList] = {}
    for prop in element.properties:
        values = np.zeros(0, dtype=prop.dtype)
        props[prop.name] = PlyList(np.zeros(0, np.int64), values) if prop.is_list else values
    return PlyElement(element.name, element.count, props)
