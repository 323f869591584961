"""Decoding an ASCII PLY element a block of rows at a time.

Elements of scalars written one row per line (nearly every vertex element) are read a block of
whole lines at a time by numpy's C parser. Anything else is split into whitespace-separated
tokens one block of text at a time (a token cut by the block's end waits for the next block),
and each block's rows are converted with one numpy call into arrays of their declared types:
rows that are all alike (scalars only, or lists of one length) as a table, irregular lists by
a per-row scan of the block. Either way memory follows the block, not the file.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping

import numpy as np

from recon.engine.formats.byte_stream import BLOCK_BYTES, ByteStream
from recon.engine.formats.ply_model import (
    MAX_LIST_LENGTH,
    PlyBlock,
    PlyElementHeader,
    PlyError,
    PlyList,
    cast_values,
    list_too_long,
    truncated,
)

#: The bytes that `bytes.split()` splits on.
_WHITESPACE = (b" ", b"\n", b"\t", b"\r", b"\x0b", b"\x0c")

#: Longest token accepted; a number never needs more, and the cap bounds the carried tail.
MAX_TOKEN_BYTES = 1 << 16

#: A block whose table-shaped prefix is shorter than this is scanned row by row instead.
_MIN_FIXED_ROWS = 256


class TokenStream:
    """The whitespace-separated tokens of a text body, read from a `ByteStream` in blocks."""

    def __init__(self, stream: ByteStream, block_bytes: int = BLOCK_BYTES) -> None:
        self.stream = stream
        self._block_bytes = block_bytes
        self._tokens: list[bytes] = []
        self._position = 0
        self._tail = b""
        self._ended = False

    def available(self) -> int:
        """Tokens read but not yet consumed."""
        return len(self._tokens) - self._position

    def untouched(self) -> bool:
        """Whether nothing is buffered: the stream's position is the next token's."""
        return not self.available() and not self._tail and not self._ended

    def window(self, n: int) -> list[bytes]:
        """The next `n` tokens (fewer only at the end of the body), left unconsumed."""
        while self.available() < n and self._fill():
            pass
        return self._tokens[self._position:self._position + n]

    def consume(self, n: int) -> None:
        self._position += n

    def most_left(self) -> int:
        """An upper bound on the tokens left: each unread one takes a byte and a separator."""
        return self.available() + (self.stream.remaining() + len(self._tail) + 1) // 2

    def count_rest(self) -> int:
        """Consume and count every token left."""
        count = 0
        while True:
            count += self.available()
            self._position = len(self._tokens)
            if not self._fill():
                return count

    def _fill(self) -> bool:
        """Read one more block; False once the body is exhausted."""
        if self._ended:
            return False
        chunk = self.stream.read(self._block_bytes)
        if not chunk:
            self._ended = True
            self._append(self._tail.split())
            self._tail = b""
            return True
        data = self._tail + chunk
        cut = max(data.rfind(space) for space in _WHITESPACE)
        if cut < 0:
            if len(data) > MAX_TOKEN_BYTES:
                raise PlyError(f"the PLY data holds a value of more than {MAX_TOKEN_BYTES} "
                               "characters; the file is malformed")
            self._tail = data
            return True
        self._tail = data[cut + 1:]
        self._append(data[:cut].split())
        return True

    def _append(self, tokens: list[bytes]) -> None:
        self._tokens = self._tokens[self._position:] + tokens
        self._position = 0


def ascii_blocks(tokens: TokenStream, element: PlyElementHeader,
                 block_tokens: int = BLOCK_BYTES // 16) -> Iterator[tuple[PlyBlock, int]]:
    """Yield ``(block, rows)`` until `element.count` rows are read; raise on truncation."""
    done, want = 0, block_tokens
    by_lines = not any(p.is_list for p in element.properties)
    while done < element.count:
        left = element.count - done
        if by_lines and tokens.untouched():
            lines = _line_rows(tokens.stream, element, left, block_tokens * 16)
            if lines is not None:
                rows, block = lines
                done += rows
                yield block, rows
                continue
            by_lines = False  # not one row per line: tokens from here on
        window = tokens.window(want)
        rows, used, block = _fixed_rows(window, element, left, done)
        if rows == 0:
            rows, used, block = _scanned_rows(window, element, left, done)
        if rows == 0:
            if len(window) < want:
                raise truncated(element, done)
            want *= 2  # one row longer than a block: bounded by MAX_LIST_LENGTH
            continue
        tokens.consume(used)
        done, want = done + rows, block_tokens
        yield block, rows


def _line_rows(stream: ByteStream, element: PlyElementHeader, left: int,
               block_bytes: int) -> tuple[int, PlyBlock] | None:
    """The next block of whole lines as rows, consumed; None (nothing consumed) when the block
    is not one row of numbers per line, for the token reader to take over and explain."""
    view = stream.peek(block_bytes)
    data = np.frombuffer(view, dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    if len(view) < block_bytes and len(view) and (not len(ends) or ends[-1] != len(view) - 1):
        ends = np.append(ends, len(view) - 1)  # the last line lacks its break
    rows = min(left, len(ends))
    if rows == 0:
        return None
    size = int(ends[rows - 1]) + 1
    if not (data[:size] > ord(" ")).any():
        return None
    try:
        table = np.loadtxt(io.BytesIO(view[:size]), dtype=np.float64, comments=None, ndmin=2)
    except ValueError:
        return None
    if table.shape != (rows, len(element.properties)):
        return None  # blank lines, or rows spread over lines differently
    block: PlyBlock = {prop.name: cast_values(table[:, i], prop.dtype, element, prop)
                       for i, prop in enumerate(element.properties)}
    stream.consume(size)
    return rows, block


def _numbers(tokens: list[bytes], element: PlyElementHeader) -> np.ndarray:
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError as error:
        raise PlyError(f"PLY {element.name} data holds a value that is not a number "
                       f"({error})") from None


def _list_width(token: bytes, element: PlyElementHeader, row: int) -> int:
    if not token.isdigit():
        raise PlyError(f"PLY {element.name} row {row} has list length {token!r}, which is not "
                       "a non-negative integer")
    if len(token) > 18 or int(token) > MAX_LIST_LENGTH:
        raise list_too_long(element, row, token.decode()[:40])
    return int(token)


def _columns(element: PlyElementHeader, widths: Mapping[int, int]) -> list[tuple[int, int]]:
    """Column range ``(start, stop)`` of each property's values in a fixed-width row."""
    columns, col = [], 0
    for i, prop in enumerate(element.properties):
        col += 1 if prop.is_list else 0
        width = widths[i] if prop.is_list else 1
        columns.append((col, col + width))
        col += width
    return columns


def _fixed_rows(window: list[bytes], element: PlyElementHeader, left: int,
                done: int) -> tuple[int, int, PlyBlock]:
    """The window's leading rows shaped like its first row, converted as one table."""
    widths: dict[int, int] = {}
    stride = 0
    for i, prop in enumerate(element.properties):
        if prop.is_list:
            if stride >= len(window) or not window[stride].isdigit():
                return 0, 0, {}  # cut off, or an error the scan reports with its row
            widths[i] = _list_width(window[stride], element, done)
            stride += widths[i]
        stride += 1
    rows = min(left, len(window) // stride)
    if rows == 0:
        return 0, 0, {}
    columns = _columns(element, widths)
    if widths:
        same = np.ones(rows, dtype=bool)
        for i, width in widths.items():
            counts = np.array(window[columns[i][0] - 1:rows * stride:stride], dtype=bytes)
            same &= counts == str(width).encode()
        if not same.all():
            if int(np.argmin(same)) < _MIN_FIXED_ROWS:
                return 0, 0, {}
            rows = int(np.argmin(same))
    table = _numbers(window[:rows * stride], element).reshape(rows, stride)
    block: PlyBlock = {}
    for i, prop in enumerate(element.properties):
        start, stop = columns[i]
        values = cast_values(table[:, start:stop], prop.dtype, element, prop)
        if prop.is_list:
            counts = np.full(rows, widths[i], dtype=np.int64)
            block[prop.name] = PlyList(counts, values.reshape(-1))
        else:
            block[prop.name] = np.ascontiguousarray(values[:, 0])
    return rows, rows * stride, block


def _scanned_rows(window: list[bytes], element: PlyElementHeader, left: int,
                  done: int) -> tuple[int, int, PlyBlock]:
    """Complete rows of the window read one by one (irregular list lengths)."""
    values: list[list[bytes]] = [[] for _ in element.properties]
    counts: list[list[int]] = [[] for _ in element.properties]
    position = rows = 0
    while rows < left:
        row_values, row_counts, at = [], [], position
        for prop in element.properties:
            width = 1
            if prop.is_list:
                if at >= len(window):
                    break
                width = _list_width(window[at], element, done + rows)
                at += 1
            if at + width > len(window):
                break
            row_values.append(window[at:at + width])
            row_counts.append(width)
            at += width
        if len(row_values) < len(element.properties):
            break  # the row is cut off by the end of the window
        for i, prop_values in enumerate(row_values):
            values[i].extend(prop_values)
            counts[i].append(row_counts[i])
        position, rows = at, rows + 1
    if rows == 0:
        return 0, 0, {}
    block: PlyBlock = {}
    for i, prop in enumerate(element.properties):
        column = cast_values(_numbers(values[i], element), prop.dtype, element, prop)
        block[prop.name] = PlyList(np.array(counts[i], dtype=np.int64), column) \
            if prop.is_list else column
    return rows, position, block
