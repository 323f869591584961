"""Forward reads over a file in blocks: the readers look at the next bytes, then consume them.

Every reader of `recon.engine.formats` parses its input through one of these instead of reading
the whole file into memory, so an upload near the size limit costs a few blocks of buffer plus
the arrays it decodes into, whatever the format.
"""

from __future__ import annotations

from typing import BinaryIO

#: Bytes read (and decoded) at a time; big enough for numpy to amortise per-block overheads.
BLOCK_BYTES = 4 << 20


class ByteStream:
    """A buffered, forward-only view of `handle` from `start` to `size` (its length in bytes).

    `peek(n)` returns up to the next `n` bytes without consuming them (fewer only at the end
    of the data); `consume(n)` moves past them. Only the peeked window is held in memory.
    """

    def __init__(self, handle: BinaryIO, size: int, start: int = 0) -> None:
        handle.seek(start)
        self.handle = handle
        self.size = size
        self.position = start
        self._buffer = b""
        self._offset = 0

    def remaining(self) -> int:
        """Bytes between the current position and the end of the data."""
        return self.size - self.position

    def peek(self, n: int) -> memoryview:
        """The next `n` bytes (fewer at the end of the data), left unconsumed."""
        available = len(self._buffer) - self._offset
        if available < n:
            more = self.handle.read(n - available)
            self._buffer = self._buffer[self._offset:] + more
            self._offset = 0
        return memoryview(self._buffer)[self._offset:self._offset + n]

    def consume(self, n: int) -> None:
        """Move `n` bytes forward (at most what the last `peek` returned)."""
        self._offset += n
        self.position += n

    def read(self, n: int) -> bytes:
        """The next `n` bytes (fewer at the end of the data), consumed."""
        data = bytes(self.peek(n))
        self.consume(len(data))
        return data
