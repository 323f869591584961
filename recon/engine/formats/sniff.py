"""Telling formats apart from a file's first bytes, and naming content in error messages.

The API refuses files of another kind (images, archives) from their signature before parsing,
and every reader's "this is not a ..." message says what the content looks like instead.
"""

from __future__ import annotations

from recon.engine.errors import InvalidPointCloud
from recon.engine.formats.source import SNIFF_BYTES

#: Leading bytes of the binary point formats -> the format they name.
_FORMAT_MAGIC = {b"ply": "ply", b"\x93NUMPY": "npy", b"LASF": "las"}

#: Leading bytes of binary files people upload by mistake -> what to call them in messages.
#: The engine reads none of them, so a service may refuse them before parsing.
FOREIGN_MAGIC = {
    b"\xff\xd8\xff": "a JPEG image", b"\x89PNG": "a PNG image", b"GIF8": "a GIF image",
    b"%PDF": "a PDF document", b"PK\x03\x04": "a ZIP archive",
    b"\x1f\x8b": "gzip-compressed data", b"glTF": "a glTF binary (GLB) mesh",
}

#: Every signature `describe_content` names: the foreign ones, text look-alikes, NumPy.
_KNOWN_MAGIC = {
    **FOREIGN_MAGIC,
    b"solid": "an ASCII STL mesh", b"<": "an HTML/XML document", b"{": "a JSON document",
    b"\x93NUMPY": "a NumPy array",
    b"\xff\xfe": "UTF-16 text (save it as ASCII or UTF-8)",
    b"\xfe\xff": "UTF-16 text (save it as ASCII or UTF-8)",
}


def describe_content(data: bytes) -> str:
    """Say in a few words what some bytes look like, for error messages."""
    if not data:
        return "an empty file"
    for magic, what in _KNOWN_MAGIC.items():
        if data.startswith(magic):
            return what
    head = data[:2048]
    if b"\x00" in head:
        return f"binary data starting with {data[:8]!r}"
    return f"text starting with {head[:40].decode('utf-8', 'replace')!r}"


def foreign_content(data: bytes) -> str | None:
    """What some bytes are when they start like a known binary non-point file (an image, an
    archive, a GLB mesh), else None."""
    return next((what for magic, what in FOREIGN_MAGIC.items() if data.startswith(magic)), None)


def magic_format(data: bytes) -> str | None:
    """The binary point format the first bytes name (``ply``, ``npy`` or ``las``), else None."""
    return next((fmt for magic, fmt in _FORMAT_MAGIC.items() if data.startswith(magic)), None)


def sniff_format(data: bytes) -> str:
    """Guess the point format of some bytes: ``ply``, ``npy``, ``las`` or ``xyz``.

    Raises
    ------
    InvalidPointCloud
        When the content is none of the supported formats.
    """
    fmt = magic_format(data)
    if fmt is not None:
        return fmt
    head = data[:SNIFF_BYTES]
    try:
        text = head.decode("ascii")
    except UnicodeDecodeError:
        text = ""
    rows = [ln.split("#", 1)[0].replace(",", " ").split() for ln in text.splitlines()]
    rows = [row for row in rows if row]
    if rows and all(_is_number(tok) for row in rows[:8] for tok in row):
        return "xyz"
    raise InvalidPointCloud(f"unrecognised point cloud: the content looks like "
                            f"{describe_content(data)}; expected a PLY, XYZ/PTS text or NPY file")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True
