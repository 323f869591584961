"""Checking a LAS/LAZ file's header, and a LAZ file's chunk table, before laspy reads it.

laspy and its LAZ decoder (lazrs) trust these fields: a garbage record count, VLR count or
offset makes laspy loop and allocate gigabytes, and a garbage LAZ chunk table makes lazrs ask
for tens of gigabytes at once, which aborts the whole process (a Rust allocation failure is
not an exception). Every field that sizes what they read is checked here against the file's
own length first, so a hostile file costs nothing. Layout: ASPRS LAS 1.0-1.4 public header
block; LASzip's VLR and chunk table.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

from recon.engine.errors import InvalidPointCloud

#: Bytes of the smallest (LAS 1.0-1.2) public header block.
MIN_HEADER_BYTES = 227

#: Smallest record of each point data format (0-10); larger records carry extra bytes.
_MIN_RECORD_BYTES = (20, 28, 26, 34, 57, 63, 30, 36, 38, 59, 67)

_VLR_HEADER_BYTES = 54
_EVLR_HEADER_BYTES = 60
_COMPRESSED = 0x80  # LAZ sets the top bit of the point data format id
_LASZIP_VLR = (b"laszip encoded", 22204)
_LASZIP_FIXED_BYTES = 34  # the LASzip VLR before its item list
_VARIABLE_CHUNKS = 0xFFFFFFFF

#: Largest fixed LAZ chunk accepted (writers use 50,000 points): lazrs allocates a whole chunk.
MAX_LAZ_CHUNK_POINTS = 1 << 20


def check_las_file(handle: BinaryIO, head: bytes, size: int) -> None:
    """Refuse a LAS/LAZ file whose header (or LAZ chunk table) cannot describe `size` bytes.

    `head` is the start of the file (at least the public header block when the file is that
    long). Raises `InvalidPointCloud` saying which field is impossible.
    """
    if len(head) < MIN_HEADER_BYTES or not head.startswith(b"LASF"):
        raise _refused(f"the file is {size} bytes, too short for a LAS header")
    major, minor = head[24], head[25]
    header_size, offset, vlrs = struct.unpack_from("<HII", head, 94)
    format_id, record_bytes, count = struct.unpack_from("<BHI", head, 104)
    if major != 1 or minor > 4:
        raise _refused(f"unknown LAS version {major}.{minor}")
    if not MIN_HEADER_BYTES <= header_size <= offset <= size:
        raise _refused(f"header size {header_size} and point data offset {offset} do not fit "
                       f"a file of {size} bytes")
    if vlrs * _VLR_HEADER_BYTES > offset - header_size:
        raise _refused(f"the header declares {vlrs} variable-length records, more than fit "
                       f"before the point data at byte {offset}")
    point_format = format_id & 0x3F
    if point_format >= len(_MIN_RECORD_BYTES) or record_bytes < _MIN_RECORD_BYTES[point_format]:
        raise _refused(f"point data format {point_format} with {record_bytes}-byte records is "
                       "not a LAS point format")
    if minor >= 4 and header_size >= 255 and len(head) >= 255:
        count = max(count, struct.unpack_from("<Q", head, 247)[0])
        evlr_start, evlrs = struct.unpack_from("<QI", head, 235)
        if evlrs and (evlr_start > size or evlrs * _EVLR_HEADER_BYTES > size - evlr_start):
            raise _refused(f"the header declares {evlrs} extended records that the file cannot "
                           "hold")
    if not format_id & _COMPRESSED:
        if count * record_bytes > size - offset:
            raise _refused(f"the header declares {count} points of {record_bytes} bytes but "
                           f"only {size - offset} bytes of point data follow; the file looks "
                           "truncated")
        return
    chunk_size = _check_laszip_vlr(handle, header_size, vlrs, offset, record_bytes)
    _check_chunk_table(handle, offset, size, count, chunk_size)


def _read_at(handle: BinaryIO, position: int, length: int) -> bytes:
    handle.seek(position)
    data = handle.read(length)
    if len(data) < length:
        raise _refused(f"the file ends inside a record at byte {position}")
    return data


def _check_laszip_vlr(handle: BinaryIO, position: int, vlrs: int, offset: int,
                      record_bytes: int) -> int:
    """The LASzip VLR's chunk size, after checking its items against the point record."""
    for _ in range(vlrs):
        header = _read_at(handle, position, _VLR_HEADER_BYTES)
        user_id, record_id, length = header[2:18].rstrip(b"\0"), *struct.unpack_from(
            "<HH", header, 18)
        if position + _VLR_HEADER_BYTES + length > offset:
            raise _refused("a variable-length record runs into the point data")
        if (user_id, record_id) == _LASZIP_VLR:
            payload = _read_at(handle, position + _VLR_HEADER_BYTES, length)
            if length < _LASZIP_FIXED_BYTES:
                raise _refused("the LASzip record is too short")
            chunk_size = struct.unpack_from("<I", payload, 12)[0]
            items = struct.unpack_from("<H", payload, 32)[0]
            if length != _LASZIP_FIXED_BYTES + 6 * items or chunk_size == 0:
                raise _refused("the LASzip record is malformed")
            if MAX_LAZ_CHUNK_POINTS < chunk_size != _VARIABLE_CHUNKS:
                raise _refused(f"LAZ chunks of {chunk_size} points; at most "
                               f"{MAX_LAZ_CHUNK_POINTS} are read")
            sizes = sum(struct.unpack_from("<H", payload, 36 + 6 * i)[0] for i in range(items))
            if sizes != record_bytes:
                raise _refused(f"the LASzip items hold {sizes} bytes per point but the header "
                               f"says {record_bytes}")
            return int(chunk_size)
        position += _VLR_HEADER_BYTES + length
    raise _refused("the file is compressed (LAZ) but has no LASzip record")


def _check_chunk_table(handle: BinaryIO, offset: int, size: int, count: int,
                       chunk_size: int) -> None:
    """The chunk table's place and length must fit between the point data and the file end."""
    start = struct.unpack("<q", _read_at(handle, offset, 8))[0]
    if start == -1:  # written by a streaming compressor: the offset is at the end of the file
        start = struct.unpack("<q", _read_at(handle, size - 8, 8))[0]
    if not offset + 8 <= start <= size - 8:
        raise _refused(f"the LAZ chunk table offset {start} is outside the file")
    chunks = struct.unpack_from("<I", _read_at(handle, start, 8), 4)[0]
    if chunks > start - offset - 8:  # every chunk takes at least a byte
        raise _refused(f"the LAZ chunk table lists {chunks} chunks, more than the data holds")
    if chunk_size != _VARIABLE_CHUNKS and count > chunks * chunk_size:
        raise _refused(f"the header declares {count} points but the LAZ chunks hold at most "
                       f"{chunks * chunk_size}")


def _refused(reason: str) -> InvalidPointCloud:
    return InvalidPointCloud(f"cannot read the LAS/LAZ file: {reason}")
