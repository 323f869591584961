"""The `ObjectStorage` protocol both backends implement (local folder and S3).

Writes are atomic: a reader sees either no object or the complete object, never a partial
one, so a result becomes visible only once it is whole.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol, runtime_checkable

DEFAULT_CHUNK_BYTES = 1024 * 1024


@runtime_checkable
class ObjectStorage(Protocol):
    """Keyed blob storage. Keys look like ``tenants/{tenant}/jobs/{id}/{name}``."""

    backend: str

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store `data` under `key` atomically, replacing any previous object."""
        ...

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        """Store the file at `path` under `key` atomically (streamed, not read into memory)."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """Return the object's bytes; raises `ObjectNotFound`."""
        ...

    def download_to(self, key: str, path: Path) -> None:
        """Write the object to `path` (parents created); raises `ObjectNotFound`."""
        ...

    def iter_bytes(self, key: str, chunk_size: int = DEFAULT_CHUNK_BYTES) -> Iterator[bytes]:
        """Yield the object in chunks; raises `ObjectNotFound` before the first chunk."""
        ...

    def exists(self, key: str) -> bool:
        """True when an object is stored under `key`."""
        ...

    def size(self, key: str) -> int:
        """The object's size in bytes; raises `ObjectNotFound`."""
        ...

    def delete(self, key: str) -> bool:
        """Remove one object; True when it existed."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with `prefix` (ending in '/'); return the count."""
        ...

    def list_keys(self, prefix: str) -> list[str]:
        """Keys under `prefix` (ending in '/'), sorted."""
        ...

    def presigned_url(
        self,
        key: str,
        *,
        expires_s: int | None = None,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A short-lived download URL, or None when the backend serves bytes itself (local)."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The object's file path when the backend is a local folder, else None."""
        ...

    def ping(self) -> None:
        """Raise `StorageUnavailable` when the backend cannot serve requests."""
        ...
