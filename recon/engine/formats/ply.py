"""PLY reading and writing with numpy: ASCII and binary (either endianness), every scalar type,
list properties (faces), any number of elements, comments and obj_info.

This module parses the header and writes files; the body is decoded a block of rows at a time
by :mod:`recon.engine.formats.ply_body`, so reading never holds more than a block of the file
besides the arrays it returns. Every problem raises :class:`PlyError` (a ``ValueError``).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recon.engine.formats.byte_stream import BLOCK_BYTES, ByteStream
from recon.engine.formats.ply_body import element_blocks
from recon.engine.formats.ply_model import (
    PlyBlock,
    PlyData,
    PlyElement,
    PlyElementHeader,
    PlyError,
    PlyList,
    PlyProperty,
    empty_element,
    plural,
)

__all__ = [
    "PlyData", "PlyElement", "PlyElementHeader", "PlyError", "PlyHeader", "PlyList",
    "PlyProperty", "body_blocks", "parse_header", "plural", "read_header", "read_ply",
    "write_ply", "write_point_cloud_ply",
]

#: Header bytes searched for ``end_header`` before the file is declared malformed.
MAX_HEADER_BYTES = 1 << 20

#: PLY type names (classic and sized aliases) -> numpy type codes without byte order.
PLY_TYPES: dict[str, str] = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}

#: numpy type codes -> the PLY name the writer uses.
_WRITE_NAMES = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int",
                "u4": "uint", "f4": "float", "f8": "double"}

FORMATS: dict[str, str] = {"ascii": "", "binary_little_endian": "<", "binary_big_endian": ">"}


@dataclass
class PlyHeader:
    """What a PLY header declares; `data_start` is the offset of the first body byte."""

    format: str = ""
    elements: list[PlyElementHeader] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    obj_info: list[str] = field(default_factory=list)
    data_start: int = 0

    @property
    def endian(self) -> str | None:
        """``"<"`` or ``">"`` for binary bodies, None for ASCII."""
        return FORMATS[self.format] or None


def _is_count(word: str) -> bool:
    """ASCII digits of at most 18 (larger counts cannot be data and would only overflow)."""
    return word.isascii() and word.isdigit() and len(word) <= 18


def _type(name: str, line: str) -> str:
    if name not in PLY_TYPES:
        raise PlyError(f"PLY header line {line!r} uses unknown type {name!r}; "
                       f"known types: {', '.join(PLY_TYPES)}")
    return PLY_TYPES[name]


def _header_end(data: bytes) -> int:
    """Return the offset of the first data byte, just after the ``end_header`` line.

    `data` is the start of the file: at least `MAX_HEADER_BYTES` plus a line break when the
    file is that long.
    """
    if not data.startswith(b"ply"):
        raise PlyError(f"not a PLY file: it starts with {data[:16]!r} instead of 'ply'")
    pos = data.find(b"\nend_header", 0, MAX_HEADER_BYTES) + 1  # at a line start
    if pos == 0:
        raise PlyError("PLY header has no 'end_header' line within its first "
                       f"{MAX_HEADER_BYTES} bytes; the file is malformed or truncated")
    end = pos + len(b"end_header")
    for newline in (b"\r\n", b"\n", b"\r"):
        if data.startswith(newline, end):
            return end + len(newline)
    if end == len(data):
        return end
    raise PlyError("PLY 'end_header' is not followed by a line break; the header is malformed")


def _parse_header_line(header: PlyHeader, words: list[str], line: str) -> None:
    key = words[0]
    if key == "format":
        if len(words) != 3 or words[1] not in FORMATS:
            raise PlyError(f"unknown PLY format line {line!r}; expected one of "
                           f"{', '.join(FORMATS)} followed by a version")
        header.format = words[1]
    elif key == "comment":
        header.comments.append(line[len("comment"):].strip())
    elif key == "obj_info":
        header.obj_info.append(line[len("obj_info"):].strip())
    elif key == "element":
        if len(words) != 3 or not _is_count(words[2]):
            raise PlyError(f"malformed PLY element line {line!r}; expected 'element NAME COUNT'")
        if any(e.name == words[1] for e in header.elements):
            raise PlyError(f"PLY header declares element {words[1]!r} twice")
        header.elements.append(PlyElementHeader(words[1], int(words[2]), ()))
    elif key == "property":
        if not header.elements:
            raise PlyError(f"PLY property line {line!r} comes before any element line")
        if len(words) == 5 and words[1] == "list":
            prop = PlyProperty(words[4], _type(words[3], line), _type(words[2], line))
            if prop.count_dtype and prop.count_dtype[0] == "f":
                raise PlyError(f"PLY list count type must be an integer type in {line!r}")
        elif len(words) == 3:
            prop = PlyProperty(words[2], _type(words[1], line))
        else:
            raise PlyError(f"malformed PLY property line {line!r}")
        last = header.elements[-1]
        if any(p.name == prop.name for p in last.properties):
            raise PlyError(f"PLY element {last.name!r} declares property {prop.name!r} twice")
        header.elements[-1] = PlyElementHeader(last.name, last.count, (*last.properties, prop))
    else:
        raise PlyError(f"malformed PLY header: unexpected line {line!r}")


def parse_header(data: bytes) -> PlyHeader:
    """Parse the header at the start of `data` (see `_header_end` for how much it needs)."""
    data_start = _header_end(data)
    lines = data[:data_start].decode("latin-1").splitlines()
    if lines[0].strip() != "ply":
        raise PlyError(f"not a PLY file: the first line is {lines[0][:40]!r} instead of 'ply'")
    header = PlyHeader(data_start=data_start)
    for line in lines[1:-1]:
        words = line.split()
        if words:
            _parse_header_line(header, words, line.strip())
    if not header.format:
        raise PlyError("PLY header has no 'format' line")
    return header


def read_header(stream: ByteStream) -> PlyHeader:
    """Parse the header at the stream's position and move the stream to the first body byte."""
    header = parse_header(bytes(stream.peek(MAX_HEADER_BYTES + 2)))
    stream.consume(header.data_start)
    return header


def body_blocks(stream: ByteStream, header: PlyHeader, block_bytes: int = BLOCK_BYTES
                ) -> Iterator[tuple[PlyElementHeader, PlyBlock, int]]:
    """The body's rows, element by element and block by block (see `ply_body.element_blocks`)."""
    return element_blocks(stream, header.elements, header.endian, block_bytes)


def read_ply(data: bytes, *, block_bytes: int = BLOCK_BYTES) -> PlyData:
    """Parse a whole PLY file.

    Parameters
    ----------
    data : the file's bytes.
    block_bytes : how much of the body is decoded at a time.

    Returns
    -------
    PlyData with every element; scalar properties are native-endian ``(n,)`` arrays.

    Raises
    ------
    PlyError
        Missing magic, unknown format or type, malformed header, or counts that do not match
        the data (truncated file or trailing bytes).
    """
    stream = ByteStream(io.BytesIO(data), len(data))
    header = read_header(stream)
    parts: dict[str, list[PlyBlock]] = {e.name: [] for e in header.elements}
    for element, block, _ in body_blocks(stream, header, block_bytes):
        parts[element.name].append(block)
    elements = {e.name: _joined(e, parts[e.name]) for e in header.elements}
    return PlyData(header.format, elements, tuple(header.comments), tuple(header.obj_info))


def _joined(element: PlyElementHeader, blocks: list[PlyBlock]) -> PlyElement:
    if not blocks:
        return empty_element(element)
    if len(blocks) == 1:
        return PlyElement(element.name, element.count, blocks[0])
    props: dict[str, np.ndarray | PlyList] = {}
    for prop in element.properties:
        columns = [block[prop.name] for block in blocks]
        if prop.is_list:
            lists = [c for c in columns if isinstance(c, PlyList)]
            props[prop.name] = PlyList(np.concatenate([c.counts for c in lists]),
                                       np.concatenate([c.values for c in lists]))
        else:
            props[prop.name] = np.concatenate([c for c in columns if isinstance(c, np.ndarray)])
    return PlyElement(element.name, element.count, props)


# --- writing ------------------------------------------------------------------------------


def _write_type(dtype: np.dtype) -> tuple[str, str]:
    code = dtype.kind + str(dtype.itemsize)
    if code == "i8" or code == "u8":
        code = code[0] + "4"
    if code not in _WRITE_NAMES:
        raise ValueError(f"cannot write numpy type {dtype} to PLY")
    return _WRITE_NAMES[code], code


def write_ply(elements: Mapping[str, Mapping[str, np.ndarray | PlyList | Sequence]], *,
              format: str = "binary_little_endian", comments: Sequence[str] = ()) -> bytes:
    """Write elements (name -> property name -> values) as a PLY file.

    Scalar properties are ``(n,)`` arrays (their dtype picks the PLY type; 64-bit integers are
    written as 32-bit). List properties are :class:`PlyList` or ``(n, k)`` 2-D arrays and are
    written with a ``uchar`` count.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown PLY format {format!r}; valid: {', '.join(FORMATS)}")
    lines = ["ply", f"format {format} 1.0", *(f"comment {c}" for c in comments)]
    bodies = []
    for name, props in elements.items():
        columns = {k: v if isinstance(v, PlyList) else np.asarray(v) for k, v in props.items()}
        count = len(next(iter(columns.values()))) if columns else 0
        lines.append(f"element {name} {count}")
        for key, column in columns.items():
            values = column.values if isinstance(column, PlyList) else column
            ply_type, _ = _write_type(values.dtype)
            is_list = isinstance(column, PlyList) or values.ndim == 2
            lines.append(f"property list uchar {ply_type} {key}" if is_list
                         else f"property {ply_type} {key}")
        bodies.append(_write_body(columns, count, FORMATS[format], format == "ascii"))
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode("ascii") + b"".join(bodies)


def _write_body(columns: Mapping[str, np.ndarray | PlyList], count: int, endian: str,
                ascii: bool) -> bytes:
    arrays = [c for c in columns.values() if isinstance(c, np.ndarray)]
    if not ascii and len(arrays) == len(columns):
        return _fixed_table(arrays, count, endian).tobytes()
    per_column = [_row_parts(column, endian) for column in columns.values()]
    rows = [[part for column in per_column for part in column[row]] for row in range(count)]
    if ascii:
        text = "".join(" ".join(repr(v) for part in row for v in part.tolist()) + "\n"
                       for row in rows)
        return text.encode("ascii")
    return b"".join(part.tobytes() for row in rows for part in row)


def _fixed_table(columns: list[np.ndarray], count: int, endian: str) -> np.ndarray:
    fields: list[tuple[Any, ...]] = []
    arrays: list[np.ndarray] = []
    for i, column in enumerate(columns):
        _, code = _write_type(column.dtype)
        if column.ndim == 2:
            fields.append((f"c{i}", "u1"))
            arrays.append(np.full(count, column.shape[1], dtype=np.uint8))
        fields.append((f"p{i}", endian + code, column.shape[1:]))
        arrays.append(column.astype(code))
    table = np.empty(count, dtype=fields)
    for (key, *_), array in zip(fields, arrays, strict=True):
        table[key] = array
    return table


def _row_parts(column: np.ndarray | PlyList, endian: str) -> list[list[np.ndarray]]:
    """Each row's pieces (list count, then values) in the file's byte order."""
    is_list = isinstance(column, PlyList) or column.ndim == 2
    values = column.values if isinstance(column, PlyList) else column
    _, code = _write_type(values.dtype)
    rows = column.rows() if isinstance(column, PlyList) else list(column)
    out = []
    for value in rows:
        value = np.atleast_1d(np.asarray(value)).astype((endian or "<") + code)
        out.append([np.array([len(value)], dtype="u1"), value] if is_list else [value])
    return out


def write_point_cloud_ply(points: np.ndarray, normals: np.ndarray | None = None) -> bytes:
    """Write points (and normals) as binary little-endian float32 PLY.

    Parameters
    ----------
    points : (n, 3) float
    normals : (n, 3) float or None
    """
    points = np.asarray(points, dtype=np.float32).reshape(-1, 3)
    names = ["x", "y", "z"]
    columns = [points]
    if normals is not None:
        normals = np.asarray(normals, dtype=np.float32).reshape(-1, 3)
        if len(normals) != len(points):
            raise ValueError(f"{len(normals)} normals for {len(points)} points")
        names += ["nx", "ny", "nz"]
        columns.append(normals)
    table = np.ascontiguousarray(np.concatenate(columns, axis=1), dtype="<f4")
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(points)}",
              *(f"property float {n}" for n in names), "end_header"]
    return ("\n".join(header) + "\n").encode("ascii") + table.tobytes()
