"""PLY data model and element decoding (the part of `recon.engine.formats.ply` that reads data).

Binary elements made only of scalar properties are read with one ``np.frombuffer`` call over a
structured dtype; list elements whose rows all hold the same number of entries (triangle faces)
are read the same way with a fixed-stride dtype, and only irregular lists fall back to a per-row
scan. ASCII bodies are split into tokens once and read the same two ways. Counts that do not
match the data raise :class:`PlyError` saying what was declared and what was found.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: numpy integer codes -> ``struct`` codes, for reading list counts row by row.
_STRUCT_CODES = {"i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I"}

_PLURALS = {"vertex": "vertices", "face": "faces", "edge": "edges"}


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


def _empty_element(element: PlyElementHeader) -> PlyElement:
    """An element whose rows hold no data (no rows, or no properties)."""
    props: dict[str, np.ndarray | PlyList] = {}
    for prop in element.properties:
        values = np.zeros(0, dtype=prop.dtype)
        props[prop.name] = PlyList(np.zeros(0, np.int64), values) if prop.is_list else values
    return PlyElement(element.name, element.count, props)


def read_elements(data: bytes, offset: int, elements: list[PlyElementHeader],
                  endian: str | None) -> list[PlyElement]:
    """Decode the body starting at ``offset``; ``endian`` is ``"<"``, ``">"`` or None for ASCII."""
    if endian is None:
        return _read_ascii(data[offset:], elements)
    return _read_binary(data, offset, elements, endian)


# --- binary -------------------------------------------------------------------------------


def _truncated(element: PlyElementHeader, rows: int) -> PlyError:
    return PlyError(f"PLY header declares {element.count} {plural(element.name)} but the data "
                    f"holds only {rows}; the file looks truncated")


def _read_binary(data: bytes, offset: int, elements: list[PlyElementHeader],
                 endian: str) -> list[PlyElement]:
    out = []
    for element in elements:
        parsed, offset = _read_binary_element(data, offset, element, endian)
        out.append(parsed)
    extra = len(data) - offset
    if extra and data[offset:].strip():
        last = elements[-1] if elements else None
        what = f"{last.count} {plural(last.name)}" if last else "no elements"
        raise PlyError(f"PLY header declares {what} but {extra} more bytes follow the last "
                       "element; the declared counts do not match the data")
    return out


def _read_binary_element(data: bytes, offset: int, element: PlyElementHeader,
                         endian: str) -> tuple[PlyElement, int]:
    if element.count == 0 or not element.properties:
        return _empty_element(element), offset
    widths = _first_row_widths(data, offset, element, endian)
    if widths is not None:
        dtype = _fixed_row_dtype(element, widths, endian)
        available = (len(data) - offset) // dtype.itemsize
        if available >= element.count:
            rows = np.frombuffer(data, dtype=dtype, count=element.count, offset=offset)
            if all(np.all(rows[f"c{i}"] == w) for i, w in widths.items()):
                return _element_from_rows(element, rows, widths), offset + rows.nbytes
        elif not widths:
            raise _truncated(element, available)
    return _scan_binary_element(data, offset, element, endian)


def _first_row_widths(data: bytes, offset: int, element: PlyElementHeader,
                      endian: str) -> dict[int, int] | None:
    """List lengths of the first row (property index -> count), or None if it is cut off."""
    widths: dict[int, int] = {}
    for i, prop in enumerate(element.properties):
        if prop.count_dtype is None:
            offset += np.dtype(prop.dtype).itemsize
            continue
        count_type = np.dtype(endian + prop.count_dtype)
        if offset + count_type.itemsize > len(data):
            return None
        widths[i] = _list_length(int(np.frombuffer(data, count_type, 1, offset)[0]), element)
        offset += count_type.itemsize + widths[i] * np.dtype(prop.dtype).itemsize
    return widths


def _fixed_row_dtype(element: PlyElementHeader, widths: Mapping[int, int],
                     endian: str) -> np.dtype:
    fields: list[tuple] = []
    for i, prop in enumerate(element.properties):
        if prop.count_dtype is None:
            fields.append((f"p{i}", endian + prop.dtype))
        else:
            fields.append((f"c{i}", endian + prop.count_dtype))
            fields.append((f"p{i}", endian + prop.dtype, (widths[i],)))
    return np.dtype(fields)


def _element_from_rows(element: PlyElementHeader, rows: np.ndarray,
                       widths: Mapping[int, int]) -> PlyElement:
    props: dict[str, np.ndarray | PlyList] = {}
    for i, prop in enumerate(element.properties):
        column = rows[f"p{i}"].astype(prop.dtype)  # native byte order, contiguous copy
        if prop.is_list:
            counts = np.full(element.count, widths[i], dtype=np.int64)
            props[prop.name] = PlyList(counts, column.reshape(-1))
        else:
            props[prop.name] = column
    return PlyElement(element.name, element.count, props)


def _scan_binary_element(data: bytes, offset: int, element: PlyElementHeader,
                         endian: str) -> tuple[PlyElement, int]:
    """Per-row scan for irregular list lengths; gathers the values with numpy afterwards."""
    starts, counts, end = _scan_binary_layout(data, offset, element, endian)
    buffer = np.frombuffer(data, dtype=np.uint8)
    props: dict[str, np.ndarray | PlyList] = {}
    for i, prop in enumerate(element.properties):
        dtype = np.dtype(endian + prop.dtype)
        index = np.repeat(starts[:, i], counts[:, i])
        first = np.repeat(np.cumsum(counts[:, i]) - counts[:, i], counts[:, i])
        index += (np.arange(len(index)) - first) * dtype.itemsize
        raw = buffer[index[:, None] + np.arange(dtype.itemsize)]
        values = raw.reshape(-1).view(dtype).astype(prop.dtype)
        props[prop.name] = PlyList(counts[:, i].copy(), values) if prop.is_list else values
    return PlyElement(element.name, element.count, props), end


def _scan_binary_layout(data: bytes, offset: int, element: PlyElementHeader,
                        endian: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Byte offset ``(rows, props)`` and length ``(rows, props)`` of every value run."""
    sizes = [np.dtype(p.dtype).itemsize for p in element.properties]
    count_formats = [endian + _STRUCT_CODES[p.count_dtype] if p.count_dtype else ""
                     for p in element.properties]
    min_row = sum(struct.calcsize(fmt) if fmt else size
                  for fmt, size in zip(count_formats, sizes, strict=True))
    if element.count * min_row > len(data) - offset:  # checked before allocating per-row tables
        raise PlyError(f"PLY header declares {element.count} {plural(element.name)} but only "
                       f"{len(data) - offset} bytes of data remain, room for at most "
                       f"{(len(data) - offset) // min_row}; the file looks truncated")
    starts = np.zeros((element.count, len(sizes)), dtype=np.int64)
    counts = np.ones((element.count, len(sizes)), dtype=np.int64)
    for row in range(element.count):
        for i, size in enumerate(sizes):
            fmt = count_formats[i]
            if fmt:
                if offset + struct.calcsize(fmt) > len(data):
                    raise _truncated(element, row)
                counts[row, i] = _list_length(struct.unpack_from(fmt, data, offset)[0], element)
                offset += struct.calcsize(fmt)
            starts[row, i] = offset
            offset += counts[row, i] * size
        if offset > len(data):
            raise _truncated(element, row)
    return starts, counts, offset


def _list_length(value: int, element: PlyElementHeader) -> int:
    if value < 0:
        raise PlyError(f"PLY {element.name} data holds a negative list length ({value})")
    return value


# --- ASCII --------------------------------------------------------------------------------


def _read_ascii(body: bytes, elements: list[PlyElementHeader]) -> list[PlyElement]:
    tokens = body.split()
    position = 0
    out = []
    for element in elements:
        parsed, position = _read_ascii_element(tokens, position, element)
        out.append(parsed)
    if position < len(tokens):
        last = elements[-1] if elements else None
        what = f"{last.count} {plural(last.name)}" if last else "no elements"
        raise PlyError(f"PLY header declares {what} but {len(tokens) - position} more values "
                       "follow the last element; the declared counts do not match the data")
    return out


def _ascii_row_stride(tokens: list[bytes], position: int,
                      element: PlyElementHeader) -> dict[int, int] | None:
    widths: dict[int, int] = {}
    for i, prop in enumerate(element.properties):
        if prop.is_list:
            if position >= len(tokens) or not tokens[position].isdigit():
                return None
            widths[i] = int(tokens[position])
            position += 1 + widths[i]
        else:
            position += 1
    return widths


def _read_ascii_element(tokens: list[bytes], position: int,
                        element: PlyElementHeader) -> tuple[PlyElement, int]:
    if element.count == 0 or not element.properties:
        return _empty_element(element), position
    widths = _ascii_row_stride(tokens, position, element)
    if widths is not None:
        stride = len(element.properties) + sum(widths.values())
        end = position + element.count * stride
        if end <= len(tokens):
            table = np.array(tokens[position:end], dtype=bytes).reshape(element.count, stride)
            columns = _ascii_columns(element, widths)
            if all(np.all(table[:, columns[i][0] - 1] == str(w).encode())
                   for i, w in widths.items()):
                return _ascii_element(element, table, columns, widths), end
        elif not widths:
            raise _truncated(element, (len(tokens) - position) // max(stride, 1))
    return _scan_ascii_element(tokens, position, element)


def _ascii_columns(element: PlyElementHeader, widths: Mapping[int, int]) -> list[tuple[int, int]]:
    """Column range ``(start, stop)`` of each property's values in a fixed-width row."""
    columns, col = [], 0
    for i, prop in enumerate(element.properties):
        col += 1 if prop.is_list else 0
        width = widths[i] if prop.is_list else 1
        columns.append((col, col + width))
        col += width
    return columns


def _to_numbers(raw: np.ndarray, dtype: str, element: PlyElementHeader) -> np.ndarray:
    try:
        if dtype[0] == "f":
            return raw.astype(np.float64).astype(dtype)
        return raw.astype(np.float64).astype(np.int64).astype(dtype)
    except ValueError as error:
        raise PlyError(f"PLY {element.name} data holds a value that is not a number "
                       f"({error})") from None


def _ascii_element(element: PlyElementHeader, table: np.ndarray,
                   columns: list[tuple[int, int]], widths: Mapping[int, int]) -> PlyElement:
    props: dict[str, np.ndarray | PlyList] = {}
    for i, prop in enumerate(element.properties):
        start, stop = columns[i]
        values = _to_numbers(table[:, start:stop], prop.dtype, element)
        if prop.is_list:
            counts = np.full(element.count, widths[i], dtype=np.int64)
            props[prop.name] = PlyList(counts, values.reshape(-1))
        else:
            props[prop.name] = values[:, 0]
    return PlyElement(element.name, element.count, props)


def _scan_ascii_element(tokens: list[bytes], position: int,
                        element: PlyElementHeader) -> tuple[PlyElement, int]:
    values: list[list[bytes]] = [[] for _ in element.properties]
    counts: list[list[int]] = [[] for _ in element.properties]
    for row in range(element.count):
        for i, prop in enumerate(element.properties):
            width = 1
            if prop.is_list:
                if position >= len(tokens) or not tokens[position].isdigit():
                    _raise_ascii_row(tokens, position, element, row)
                width = int(tokens[position])
                counts[i].append(width)
                position += 1
            if position + width > len(tokens):
                raise _truncated(element, row)
            values[i].extend(tokens[position:position + width])
            position += width
    props: dict[str, np.ndarray | PlyList] = {}
    for i, prop in enumerate(element.properties):
        column = _to_numbers(np.array(values[i], dtype=bytes), prop.dtype, element)
        props[prop.name] = PlyList(np.array(counts[i], dtype=np.int64), column) \
            if prop.is_list else column
    return PlyElement(element.name, element.count, props), position


def _raise_ascii_row(tokens: list[bytes], position: int, element: PlyElementHeader,
                     row: int) -> None:
    if position >= len(tokens):
        raise _truncated(element, row)
    raise PlyError(f"PLY {element.name} row {row} has list length {tokens[position]!r}, "
                   "which is not a non-negative integer")
