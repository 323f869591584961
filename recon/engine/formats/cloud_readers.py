"""One reader per point format, each feeding a `CloudAccumulator` a block of rows at a time.

A reader turns its format's blocks into float64 points plus the raw triples its layout names
(`recon.engine.formats.columns`); the accumulator validates every row and keeps the subset. A
reader may be called twice on the same source (see `accumulate`), so each starts by rewinding.
"""

from __future__ import annotations

from collections.abc import Callable

import laspy
import numpy as np

from recon.engine.errors import InvalidPointCloud
from recon.engine.formats.accumulate import CloudAccumulator
from recon.engine.formats.byte_stream import ByteStream
from recon.engine.formats.columns import (
    LasLayout,
    NamedLayout,
    PropertyKind,
    TableLayout,
    table_shape_error,
)
from recon.engine.formats.las_header import check_las_file
from recon.engine.formats.npy import npy_blocks, read_npy_layout
from recon.engine.formats.ply import PlyError, body_blocks, read_header
from recon.engine.formats.sniff import describe_content
from recon.engine.formats.source import Source
from recon.engine.formats.text import text_tables

#: LAS/LAZ points decoded at a time.
LAS_CHUNK_POINTS = 500_000

Reader = Callable[[Source, CloudAccumulator], None]


def read_ply_points(source: Source, acc: CloudAccumulator) -> None:
    """The vertex element of a PLY file; every other element is parsed (checked) and dropped."""
    stream = ByteStream(source.rewind(), source.size)
    try:
        header = read_header(stream)
        vertex = next((e for e in header.elements if e.name == "vertex"), None)
        if vertex is None:
            found = ", ".join(e.name for e in header.elements) or "none"
            raise InvalidPointCloud(f"the PLY file has no 'vertex' element (elements found: "
                                    f"{found})")
        kinds: dict[str, PropertyKind] = {
            p.name: "list" if p.is_list else "number" for p in vertex.properties}
        layout = NamedLayout.of(kinds, "the PLY vertex element")
        for element, block, _ in body_blocks(stream, header):
            if element is vertex:
                if acc.layout is None:  # the reader has checked the count against the data
                    acc.begin(layout, total=vertex.count)
                acc.add(*layout.split(block))
        if acc.layout is None:
            acc.begin(layout, total=0)
    except PlyError as error:
        message = str(error)
        if message.startswith("not a PLY file"):
            message = (f"not a PLY file: the content looks like {describe_content(source.head)} "
                       "(a PLY file starts with 'ply')")
        raise InvalidPointCloud(message) from None


def read_text_points(source: Source, acc: CloudAccumulator) -> None:
    """XYZ/PTS text: rows of 3, 4, 6, 7 or 9 numbers (`columns.TABLE_LAYOUTS`)."""
    rows, refused = 0, None
    for table in text_tables(source.rewind(), source.head):
        rows += len(table)
        if acc.layout is None and refused is None:
            try:
                acc.begin(TableLayout.of(table.shape, "text row"))
            except InvalidPointCloud:
                refused = table.shape[1]  # said once the rows are counted, for the message
        if refused is None:
            acc.add(*TableLayout.of(table.shape, "text row").split(table))
    if refused is not None:
        raise table_shape_error((rows, refused), "text row")


def read_npy_points(source: Source, acc: CloudAccumulator) -> None:
    """An (n, 3|4|6|7|9) numeric array, or a structured array with named fields."""
    npy = read_npy_layout(source.handle, source.size)
    if npy.dtype.names:
        if len(npy.shape) != 1:
            raise InvalidPointCloud(f"the NPY structured array has shape {npy.shape}; expected "
                                    "one record per point (a 1-D array)")
        named = NamedLayout.of(npy.kinds(), "the NPY structured array")
        acc.begin(named, total=npy.rows)
        for block in npy_blocks(source.handle, npy):
            acc.add(*named.split({name: block[name] for name in npy.dtype.names}))
        return
    if npy.dtype.kind not in "iuf":
        raise InvalidPointCloud(f"the NPY array holds {npy.dtype} values, not real numbers")
    table = TableLayout.of(npy.shape, "NPY array row")
    acc.begin(table, total=npy.rows)
    for block in npy_blocks(source.handle, npy):
        acc.add(*table.split(block.astype(np.float64)))


def read_las_points(source: Source, acc: CloudAccumulator) -> None:
    """LAS or LAZ (laspy; LAZ through its lazrs backend): scaled coordinates in float64, so
    survey coordinates keep their precision, and RGB where the point format has it. The header
    is checked first (`las_header`): laspy trusts it."""
    check_las_file(source.rewind(), source.head, source.size)
    try:
        with laspy.open(source.rewind(), closefd=False, read_evlrs=False) as reader:
            declared = int(reader.header.point_count)
            names = set(reader.header.point_format.dimension_names)
            layout = LasLayout({"red", "green", "blue"} <= names)
            acc.begin(layout)
            for chunk in reader.chunk_iterator(LAS_CHUNK_POINTS):
                points = np.stack([np.asarray(chunk.x, dtype=np.float64),
                                   np.asarray(chunk.y, dtype=np.float64),
                                   np.asarray(chunk.z, dtype=np.float64)], axis=1)
                colours = [np.stack([np.asarray(chunk.red), np.asarray(chunk.green),
                                     np.asarray(chunk.blue)], axis=1)] if layout.has_colours \
                    else []
                acc.add(points, colours)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as error:  # laspy raises many types; lazrs panics are BaseExceptions
        raise InvalidPointCloud(f"cannot read the LAS/LAZ file: {type(error).__name__}: "
                                f"{str(error)[:200]}") from None
    if acc.rows < declared:
        raise InvalidPointCloud(f"cannot read the LAS/LAZ file: its header declares {declared} "
                                f"points but the file holds {acc.rows}")


READERS: dict[str, Reader] = {
    "ply": read_ply_points, "xyz": read_text_points, "pts": read_text_points,
    "npy": read_npy_points, "las": read_las_points,
}
