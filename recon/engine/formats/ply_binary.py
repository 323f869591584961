"""Decoding a binary PLY element a block of rows at a time.

Rows made only of scalars, and list rows that all hold the same number of entries (triangle
faces), are read with one ``np.frombuffer`` per block over a structured dtype; only blocks with
irregular lists fall back to a per-row scan. Blocks come from a `ByteStream`, so memory follows
the block size, not the file size.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping

import numpy as np

from recon.engine.formats.byte_stream import BLOCK_BYTES, ByteStream
from recon.engine.formats.ply_model import (
    MAX_LIST_LENGTH,
    PlyBlock,
    PlyElementHeader,
    PlyError,
    PlyList,
    list_too_long,
    plural,
    truncated,
)

#: numpy integer codes -> ``struct`` codes, for reading list counts row by row.
_STRUCT_CODES = {"i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I"}

#: A block whose fixed-width prefix is shorter than this is scanned row by row instead.
_MIN_FIXED_ROWS = 256


def min_row_bytes(element: PlyElementHeader) -> int:
    """Bytes of the shortest possible row (lists empty)."""
    return sum(np.dtype(p.count_dtype or p.dtype).itemsize for p in element.properties)


def check_room(element: PlyElementHeader, remaining: int) -> None:
    """Refuse, before anything is read or allocated, a count the remaining bytes cannot hold."""
    row = min_row_bytes(element)
    if element.count * row <= remaining:
        return
    if not any(p.is_list for p in element.properties):
        raise truncated(element, remaining // row)
    raise PlyError(f"PLY header declares {element.count} {plural(element.name)} but only "
                   f"{remaining} bytes of data remain, room for at most {remaining // row}; "
                   "the file looks truncated")


def binary_blocks(stream: ByteStream, element: PlyElementHeader, endian: str,
                  block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[PlyBlock, int]]:
    """Yield ``(block, rows)`` until `element.count` rows are read; raise on truncation."""
    done, want = 0, block_bytes
    while done < element.count:
        view = stream.peek(want)
        left = element.count - done
        rows, used, block = _fixed_rows(view, element, endian, left, done)
        if rows == 0:
            rows, used, block = _scanned_rows(view, element, endian, left, done)
        if rows == 0:
            if len(view) < want:
                raise truncated(element, done)
            want *= 2  # one row longer than a block: bounded by MAX_LIST_LENGTH
            continue
        stream.consume(used)
        done, want = done + rows, block_bytes
        yield block, rows


def _first_row_widths(view: memoryview, element: PlyElementHeader, endian: str,
                      row: int) -> dict[int, int] | None:
    """List lengths of the first row (property index -> count), or None if it is cut off."""
    widths: dict[int, int] = {}
    offset = 0
    for i, prop in enumerate(element.properties):
        if prop.count_dtype is None:
            offset += np.dtype(prop.dtype).itemsize
            continue
        count_type = np.dtype(endian + prop.count_dtype)
        if offset + count_type.itemsize > len(view):
            return None
        widths[i] = _list_length(int(np.frombuffer(view, count_type, 1, offset)[0]), element,
                                 row)
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


def _fixed_rows(view: memoryview, element: PlyElementHeader, endian: str, left: int,
                done: int) -> tuple[int, int, PlyBlock]:
    """The block's leading rows that share the first row's list lengths, read as one table."""
    widths = _first_row_widths(view, element, endian, done)
    if widths is None:
        return 0, 0, {}
    dtype = _fixed_row_dtype(element, widths, endian)
    rows = np.frombuffer(view, dtype=dtype, count=min(left, len(view) // dtype.itemsize))
    if widths and len(rows):
        same = np.logical_and.reduce([rows[f"c{i}"] == w for i, w in widths.items()])
        if not same.all():
            first_other = int(np.argmin(same))
            if first_other < _MIN_FIXED_ROWS:
                return 0, 0, {}
            rows = rows[:first_other]
    block: PlyBlock = {}
    for i, prop in enumerate(element.properties):
        column = rows[f"p{i}"].astype(prop.dtype)  # native byte order, contiguous copy
        if prop.is_list:
            counts = np.full(len(rows), widths[i], dtype=np.int64)
            block[prop.name] = PlyList(counts, column.reshape(-1))
        else:
            block[prop.name] = column
    return len(rows), rows.nbytes, block


def _scanned_rows(view: memoryview, element: PlyElementHeader, endian: str, left: int,
                  done: int) -> tuple[int, int, PlyBlock]:
    """Rows with irregular list lengths: find each run's offset, then gather with numpy."""
    starts, counts, used = _scan_layout(view, element, endian, left, done)
    rows = len(starts)
    if rows == 0:
        return 0, 0, {}
    buffer = np.frombuffer(view, dtype=np.uint8)
    block: PlyBlock = {}
    for i, prop in enumerate(element.properties):
        dtype = np.dtype(endian + prop.dtype)
        index = np.repeat(starts[:, i], counts[:, i])
        first = np.repeat(np.cumsum(counts[:, i]) - counts[:, i], counts[:, i])
        index += (np.arange(len(index)) - first) * dtype.itemsize
        raw = buffer[index[:, None] + np.arange(dtype.itemsize)]
        values = raw.reshape(-1).view(dtype).astype(prop.dtype)
        block[prop.name] = PlyList(counts[:, i].copy(), values) if prop.is_list else values
    return rows, used, block


def _scan_layout(view: memoryview, element: PlyElementHeader, endian: str, left: int,
                 done: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Byte offset and length ``(rows, props)`` of every value run of the complete rows."""
    sizes = [np.dtype(p.dtype).itemsize for p in element.properties]
    count_formats = [endian + _STRUCT_CODES[p.count_dtype] if p.count_dtype else ""
                     for p in element.properties]
    starts: list[list[int]] = []
    counts: list[list[int]] = []
    offset = 0
    while len(starts) < left:
        row_starts, row_counts, position = [], [], offset
        for fmt, size in zip(count_formats, sizes, strict=True):
            count = 1
            if fmt:
                if position + struct.calcsize(fmt) > len(view):
                    break
                count = _list_length(struct.unpack_from(fmt, view, position)[0], element,
                                     done + len(starts))
                position += struct.calcsize(fmt)
            row_starts.append(position)
            row_counts.append(count)
            position += count * size
        if len(row_starts) < len(sizes) or position > len(view):
            break  # the row is cut off by the end of the block
        starts.append(row_starts)
        counts.append(row_counts)
        offset = position
    width = len(sizes)
    return (np.array(starts, dtype=np.int64).reshape(-1, width),
            np.array(counts, dtype=np.int64).reshape(-1, width), offset)


def _list_length(value: int, element: PlyElementHeader, row: int) -> int:
    if value < 0:
        raise PlyError(f"PLY {element.name} data holds a negative list length ({value})")
    if value > MAX_LIST_LENGTH:
        raise list_too_long(element, row, value)
    return value
