"""Opening a point file, given as a path or as bytes, as one seekable binary handle.

Readers parse from the handle a block at a time, so a file on disk is never read into memory
whole; bytes are wrapped in a `BytesIO` and read the same way.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from recon.engine.errors import InvalidPointCloud

#: Bytes from the start of a file that sniffing and error messages look at.
SNIFF_BYTES = 4096


@dataclass(frozen=True)
class Source:
    """An open point file: its handle, its size, its lower-case suffix ('' for bytes) and its
    first `SNIFF_BYTES` bytes."""

    handle: BinaryIO
    size: int
    suffix: str
    head: bytes

    def rewind(self) -> BinaryIO:
        """The handle, back at the start of the file."""
        self.handle.seek(0)
        return self.handle


@contextmanager
def open_source(source: str | os.PathLike | bytes) -> Iterator[Source]:
    """Open `source` for reading; raises `InvalidPointCloud` when a path cannot be read."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        yield Source(io.BytesIO(data), len(data), "", data[:SNIFF_BYTES])
        return
    path = Path(source)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after the caller is done
    except OSError as error:
        raise InvalidPointCloud(f"cannot read {path}: {error.strerror}") from None
    try:
        size, head = os.fstat(handle.fileno()).st_size, handle.read(SNIFF_BYTES)
        yield Source(handle, size, path.suffix.lower().lstrip("."), head)
    finally:
        handle.close()
