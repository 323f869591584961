"""Streaming multipart uploads with the body limit enforced while the bytes arrive.

A declared ``Content-Length`` above the limit is refused before anything is read; otherwise
every received chunk is counted and the upload stops (413) the moment the count passes the
limit, so a client cannot make the API buffer more than it allows, chunked or not. File parts
go straight to files in a private folder under the upload temp folder (`upload_temp_root`, in
the data dir by default, so the system temp folder never fills up); small text fields stay in
memory. Every part is hashed as it streams by, so the request's fingerprint (what an
Idempotency-Key is bound to) costs no second read.
"""

import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from recon.api.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from recon.infra.settings import Settings

FILE_FIELDS = frozenset({"file", "ground_truth"})
TEXT_FIELDS = frozenset({"params"})
MAX_TEXT_FIELD_BYTES = 64 * 1024
MAX_FILENAME_CHARS = 255

#: The parts a request fingerprint covers, in a fixed order. An absent `params` counts as an
#: empty one (both mean the defaults); an absent file part counts as absent.
FINGERPRINT_PARTS = ("params", "file", "ground_truth")
_EMPTY_DIGEST = hashlib.sha256(b"").hexdigest()


def upload_temp_root(settings: Settings) -> Path:
    """The folder uploads are received into: `upload_temp_dir`, else ``data_dir/tmp``."""
    return settings.upload_temp_dir or settings.data_dir / "tmp"


def request_fingerprint(part_digests: Mapping[str, str]) -> str:
    """sha256 over the sha256 of each part in `FINGERPRINT_PARTS` (hex digests by part name)."""
    combined = hashlib.sha256()
    for name in FINGERPRINT_PARTS:
        default = _EMPTY_DIGEST if name == "params" else "-"
        combined.update(f"{name}={part_digests.get(name, default)}\n".encode())
    return combined.hexdigest()


@dataclass(frozen=True)
class UploadedFile:
    """One file part saved to disk: its form field, client file name, path and size (bytes)."""

    field: str
    filename: str | None
    path: Path
    size: int


@dataclass
class MultipartUpload:
    """The parsed form: file parts by field name and text fields by name.

    Owns its temporary folder; call `cleanup()` (or use it as a context manager) when done.
    `digests` holds each part's sha256 (hex), computed while it streamed in.
    """

    folder: Path
    files: dict[str, UploadedFile] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """What this request is, for comparing it with an earlier one under the same key."""
        return request_fingerprint(self.digests)

    def cleanup(self) -> None:
        """Delete the temporary folder and every file in it."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "MultipartUpload":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def check_declared_length(request: Request, max_bytes: int) -> None:
    """Refuse (413) a body whose declared Content-Length exceeds `max_bytes`, before reading it."""
    declared = request.headers.get("content-length")
    if declared is None:
        return
    if not declared.isdigit():
        raise BadRequest("Content-Length is not a number", code="bad_content_length")
    if int(declared) > max_bytes:
        raise PayloadTooLarge(
            f"the request body ({int(declared)} bytes) exceeds the limit of {max_bytes} bytes",
            detail={"limit_bytes": max_bytes, "declared_bytes": int(declared)},
        )


async def limited_stream(request: Request, max_bytes: int) -> AsyncIterator[bytes]:
    """The request body, chunk by chunk, raising `PayloadTooLarge` once past `max_bytes`."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise PayloadTooLarge(
                f"the request body exceeds the limit of {max_bytes} bytes",
                detail={"limit_bytes": max_bytes},
            )
        yield chunk


class _PartWriter:
    """python-multipart callbacks that route each part to a file or an in-memory field."""

    def __init__(self, upload: MultipartUpload) -> None:
        self.upload = upload
        self.header_name = b""
        self.header_value = b""
        self.disposition = b""
        self.name = ""
        self.filename: str | None = None
        self.handle: BinaryIO | None = None
        self.text = bytearray()
        self.size = 0
        self.hasher = hashlib.sha256()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self.disposition, self.name, self.filename = b"", "", None
        self.handle, self.text, self.size = None, bytearray(), 0
        self.hasher = hashlib.sha256()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        if self.name in self.upload.files or self.name in self.upload.fields:
            raise BadRequest(f"form part {self.name!r} appears twice", code="duplicate_part")
        if self.name in FILE_FIELDS:
            raw_filename = options.get(b"filename")
            if raw_filename is not None:
                self.filename = raw_filename.decode("utf-8", "replace")[-MAX_FILENAME_CHARS:]
            # Page-cache writes of one network chunk are short; no thread hop needed.
            self.handle = open(self.upload.folder / self.name, "wb")  # noqa: SIM115
        elif self.name not in TEXT_FIELDS:
            allowed = sorted(FILE_FIELDS | TEXT_FIELDS)
            raise BadRequest(
                f"unexpected form part {self.name!r}; expected {allowed}", code="unexpected_part"
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.size += end - start
        chunk = data[start:end]
        self.hasher.update(chunk)
        if self.handle is not None:
            self.handle.write(chunk)
            return
        if self.size > MAX_TEXT_FIELD_BYTES:
            raise PayloadTooLarge(f"form field {self.name!r} exceeds {MAX_TEXT_FIELD_BYTES} bytes")
        self.text.extend(chunk)

    def on_part_end(self) -> None:
        self.upload.digests[self.name] = self.hasher.hexdigest()
        if self.handle is None:
            self.upload.fields[self.name] = self.text.decode("utf-8", "replace")
            return
        self.handle.close()
        path = self.upload.folder / self.name
        self.upload.files[self.name] = UploadedFile(self.name, self.filename, path, self.size)
        self.handle = None

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _boundary(request: Request) -> bytes:
    content_type, options = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise UnsupportedMediaType(
            "send the point cloud as multipart/form-data with a 'file' part",
            code="not_multipart",
        )
    boundary = options.get(b"boundary")
    if not boundary:
        raise BadRequest("multipart body without a boundary", code="malformed_multipart")
    return boundary


async def read_multipart(
    request: Request, *, max_bytes: int, temp_dir: Path | None = None
) -> MultipartUpload:
    """Stream a multipart body to a private folder in `temp_dir` (created when missing; None
    means the system temp folder), enforcing `max_bytes` as bytes arrive.

    Raises `UnsupportedMediaType` (not multipart), `PayloadTooLarge` (declared or counted body
    over the limit) or `BadRequest` (malformed multipart, unknown or repeated parts).
    """
    check_declared_length(request, max_bytes)
    boundary = _boundary(request)
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
    upload = MultipartUpload(Path(tempfile.mkdtemp(prefix="recon-upload-", dir=temp_dir)))
    writer = _PartWriter(upload)
    parser = MultipartParser(boundary, writer.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in limited_stream(request, max_bytes):
            parser.write(chunk)
        parser.finalize()
    except BaseException as exc:
        writer.close()
        upload.cleanup()
        if isinstance(exc, FormParserError):
            raise BadRequest("the multipart body is malformed", code="malformed_multipart") from exc
        raise
    writer.close()  # a part cut off by a missing final boundary is dropped, not kept
    return upload
