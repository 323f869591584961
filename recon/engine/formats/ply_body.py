"""Walking a PLY body element by element, a block of rows at a time, in bounded memory.

`element_blocks` checks each declared count against the bytes left before reading it (an
absurd count fails at once, and nothing is sized by a count the data cannot hold), yields the
rows of every element in file order, and finally refuses data left after the last element.
Binary and ASCII decoding live in `ply_binary` and `ply_ascii`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from recon.engine.formats.byte_stream import BLOCK_BYTES, ByteStream
from recon.engine.formats.ply_ascii import TokenStream, ascii_blocks
from recon.engine.formats.ply_binary import binary_blocks, check_room
from recon.engine.formats.ply_model import PlyBlock, PlyElementHeader, PlyError, plural


def element_blocks(stream: ByteStream, elements: Sequence[PlyElementHeader], endian: str | None,
                   block_bytes: int = BLOCK_BYTES
                   ) -> Iterator[tuple[PlyElementHeader, PlyBlock, int]]:
    """Yield ``(element, block, rows)`` over the body that starts at the stream's position.

    `endian` is ``"<"`` or ``">"`` for binary bodies and None for ASCII. Elements without rows
    or without properties yield nothing. Raises `PlyError` for truncated data, values that are
    not numbers, and data after the last element.
    """
    if endian is None:
        yield from _ascii(stream, elements, block_bytes)
    else:
        yield from _binary(stream, elements, endian, block_bytes)


def _has_data(element: PlyElementHeader) -> bool:
    return element.count > 0 and bool(element.properties)


def _declared(elements: Sequence[PlyElementHeader]) -> str:
    last = elements[-1] if elements else None
    return f"{last.count} {plural(last.name)}" if last else "no elements"


def _binary(stream: ByteStream, elements: Sequence[PlyElementHeader], endian: str,
            block_bytes: int) -> Iterator[tuple[PlyElementHeader, PlyBlock, int]]:
    for element in filter(_has_data, elements):
        check_room(element, stream.remaining())
        for block, rows in binary_blocks(stream, element, endian, block_bytes):
            yield element, block, rows
    extra = stream.remaining()
    while True:
        chunk = stream.read(block_bytes)
        if not chunk:
            return
        if chunk.strip():
            raise PlyError(f"PLY header declares {_declared(elements)} but {extra} more bytes "
                           "follow the last element; the declared counts do not match the data")


def _ascii(stream: ByteStream, elements: Sequence[PlyElementHeader],
           block_bytes: int) -> Iterator[tuple[PlyElementHeader, PlyBlock, int]]:
    tokens = TokenStream(stream, block_bytes)
    block_tokens = max(1, block_bytes // 16)
    for element in filter(_has_data, elements):
        blocks = ascii_blocks(tokens, element, block_tokens)
        if element.count * len(element.properties) > tokens.most_left():
            for _ in blocks:  # the count cannot fit: find how many rows there are, keep none
                pass
            raise PlyError(f"PLY header declares more {plural(element.name)} than the data holds")
        for block, rows in blocks:
            yield element, block, rows
    extra = tokens.count_rest()
    if extra:
        raise PlyError(f"PLY header declares {_declared(elements)} but {extra} more values "
                       "follow the last element; the declared counts do not match the data")
