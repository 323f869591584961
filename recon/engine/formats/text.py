"""XYZ/PTS (and comma-separated) text read a block of lines at a time into float64 tables.

Each block of whole lines is decoded and handed to numpy's C parser (`np.loadtxt`), so memory
follows the block, not the file. Rows are whitespace- or comma-separated numbers; ``#`` starts
a comment; the first data line may be a lone point count, which must match the rows. Errors
name the line (counted from 1 over the whole file) and what is wrong with it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from recon.engine.errors import InvalidPointCloud
from recon.engine.formats.byte_stream import BLOCK_BYTES
from recon.engine.formats.sniff import describe_content

#: Longest line accepted: a point row holds at most nine numbers.
MAX_LINE_BYTES = 1 << 16


def text_tables(handle: BinaryIO, head: bytes,
                block_bytes: int = BLOCK_BYTES) -> Iterator[np.ndarray]:
    """Yield ``(rows, columns)`` float64 tables, block by block, from the start of `handle`.

    `head` (the file's first bytes) names the content in the message for non-UTF-8 data.
    After the last block, raises `InvalidPointCloud` when the text holds no rows or a declared
    count that does not match them.
    """
    declared: int | None = None
    first_seen = False
    rows, width, line = 0, 0, 1
    for chunk in _line_chunks(handle, block_bytes):
        lines = _decode(chunk, head, line == 1).replace(",", " ").splitlines()
        if not first_seen:
            first = next((i for i, raw in enumerate(lines) if _words(raw)), None)
            if first is not None:
                first_seen = True
                words = _words(lines[first])
                if len(words) == 1 and words[0].isascii() and words[0].isdigit() \
                        and len(words[0]) <= 18:
                    declared, lines[first] = int(words[0]), ""
        table = _table(lines, line, width)
        line += len(lines)
        if table is not None:
            rows, width = rows + len(table), table.shape[1]
            yield table
    if rows == 0 and declared is None:
        raise InvalidPointCloud("the point cloud file is empty (only comments or blank lines)")
    if declared is not None and declared != rows:
        raise InvalidPointCloud(f"the file declares {declared} points on its first line but "
                                f"holds {rows} rows")
    if rows == 0:
        raise InvalidPointCloud("the point cloud contains no points")


def _line_chunks(handle: BinaryIO, block_bytes: int) -> Iterator[bytes]:
    """Blocks of whole lines (the last one may lack its line break)."""
    tail = b""
    while True:
        block = handle.read(block_bytes)
        if not block:
            if tail:
                yield tail
            return
        data = tail + block
        cut = data.rfind(b"\n")
        if cut < 0:
            cut = data.rfind(b"\r")
        tail = data[cut + 1:]
        if len(tail) > MAX_LINE_BYTES:
            raise InvalidPointCloud(f"the text has a line longer than {MAX_LINE_BYTES} bytes; "
                                    "a point row holds at most nine numbers")
        if cut >= 0:
            yield data[:cut + 1]


def _decode(chunk: bytes, head: bytes, first: bool) -> str:
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPointCloud(f"not an XYZ/PTS text file: the content looks like "
                                f"{describe_content(head)}") from None
    return text.removeprefix("\ufeff") if first else text


def _words(line: str) -> list[str]:
    return line.split("#", 1)[0].split()


def _table(lines: list[str], first_line: int, width: int) -> np.ndarray | None:
    """The block's rows as a table (None when it holds none); `width` is the rows' so far."""
    if not any(_words(raw) for raw in lines):
        return None
    try:
        table = np.loadtxt(lines, dtype=np.float64, comments="#", ndmin=2)
    except ValueError as error:
        raise _explained(lines, first_line, width, str(error)) from None
    if width and table.shape[1] != width:
        raise _explained(lines, first_line, width, "the number of columns changed")
    return table


def _explained(lines: list[str], first_line: int, width: int, fallback: str) -> InvalidPointCloud:
    """Find the first line numpy could not read and say what is wrong with it."""
    for offset, raw in enumerate(lines):
        words = _words(raw)
        if not words:
            continue
        where = f"line {first_line + offset}"
        for word in words:
            try:
                float(word)
            except ValueError:
                return InvalidPointCloud(f"cannot read the text point cloud: {where} holds "
                                         f"{word[:40]!r}, which is not a number")
        if width and len(words) != width:
            return InvalidPointCloud(f"cannot read the text point cloud: {where} has "
                                     f"{len(words)} values where the lines before have {width}")
        width = width or len(words)
    return InvalidPointCloud(f"cannot read the text point cloud: {fallback}")
