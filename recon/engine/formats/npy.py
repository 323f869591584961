"""NPY arrays read a block of rows at a time from their header's layout, never unpickled.

The header (numpy's own parser) gives the shape, the element type and the order; the declared
size is checked against the file before anything is read, then rows come in blocks, so a huge
or lying header costs nothing and memory follows the block size.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from recon.engine.errors import InvalidPointCloud
from recon.engine.formats.byte_stream import BLOCK_BYTES
from recon.engine.formats.columns import PropertyKind


@dataclass(frozen=True)
class NpyLayout:
    """An array's declared shape, element type, order and where its data starts."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    data_start: int

    @property
    def rows(self) -> int:
        return self.shape[0] if self.shape else 1

    @property
    def row_items(self) -> int:
        return math.prod(self.shape[1:])

    def kinds(self) -> dict[str, PropertyKind]:
        """How each field of a structured array can be used."""
        kinds: dict[str, PropertyKind] = {}
        for name in self.dtype.names or ():
            field = self.dtype[name]
            kinds[name] = "list" if field.shape else \
                "number" if field.kind in "iuf" else "other"
        return kinds


def read_npy_layout(handle: BinaryIO, size: int) -> NpyLayout:
    """Parse and check the header at the start of `handle`.

    Raises `InvalidPointCloud` for a malformed header, Python objects (which would need
    unpickling), sub-array element types, and a declared size the file does not hold.
    """
    handle.seek(0)
    try:
        version = np.lib.format.read_magic(handle)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0  # 3.0 differs only in the header's encoding
        shape, fortran, dtype = read(handle)
    except Exception as error:  # numpy's header parser raises many types on garbage
        raise InvalidPointCloud(f"cannot read the NPY array ({type(error).__name__}: "
                                f"{str(error)[:200]})") from None
    if dtype.hasobject:
        raise InvalidPointCloud("the NPY array holds Python objects, which would need "
                                "unpickling; save plain numbers instead")
    if dtype.subdtype is not None:
        raise InvalidPointCloud(f"the NPY array's element type {dtype} holds sub-arrays; save a "
                                "plain (n, 3) table or a structured array of scalars")
    if any(length < 0 for length in shape):
        raise InvalidPointCloud(f"the NPY header declares a negative shape {tuple(shape)}")
    layout = NpyLayout(tuple(shape), dtype, bool(fortran), handle.tell())
    needed = layout.rows * layout.row_items * dtype.itemsize
    available = size - layout.data_start
    if needed > available:
        raise InvalidPointCloud(f"the NPY header declares an array of shape {layout.shape} "
                                f"({needed} bytes) but the file holds only {available} bytes "
                                "of data; the file looks truncated")
    return layout


def npy_blocks(handle: BinaryIO, layout: NpyLayout,
               block_bytes: int = BLOCK_BYTES) -> Iterator[np.ndarray]:
    """Yield the array's rows in blocks: ``(rows, ...)`` arrays of the declared element type."""
    row_bytes = max(1, layout.row_items * layout.dtype.itemsize)
    step = max(1, block_bytes // row_bytes)
    for start in range(0, layout.rows, step):
        count = min(step, layout.rows - start)
        if layout.fortran and len(layout.shape) > 1:
            yield _fortran_rows(handle, layout, start, count)
            continue
        handle.seek(layout.data_start + start * row_bytes)
        data = handle.read(count * row_bytes)
        block = np.frombuffer(data, dtype=layout.dtype, count=count * layout.row_items)
        yield block.reshape((count, *layout.shape[1:]))


def _fortran_rows(handle: BinaryIO, layout: NpyLayout, start: int, count: int) -> np.ndarray:
    """Rows of a column-major 2-D array: one read per column."""
    if len(layout.shape) != 2:
        raise InvalidPointCloud(f"expected a 2-D NPY array, found shape {layout.shape}")
    rows, itemsize = layout.shape[0], layout.dtype.itemsize
    columns = []
    for column in range(layout.shape[1]):
        handle.seek(layout.data_start + (column * rows + start) * itemsize)
        columns.append(np.frombuffer(handle.read(count * itemsize), layout.dtype, count))
    return np.stack(columns, axis=1)
