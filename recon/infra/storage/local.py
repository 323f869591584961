"""Local-folder storage: objects are files under one root; writes use a temp file + rename."""

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from recon.infra.storage.base import DEFAULT_CHUNK_BYTES
from recon.infra.storage.errors import ObjectNotFound, StorageFull, StorageUnavailable
from recon.infra.storage.keys import validate_key

TEMP_SUFFIX = ".partial"
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})


class LocalStorage:
    """`ObjectStorage` over a folder. The API streams files from it (no presigned URLs)."""

    backend = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str, *, prefix: bool = False) -> Path:
        validate_key(key, prefix=prefix)
        path = (self.root / key).resolve()
        if path != self.root and self.root not in path.parents:
            raise ValueError(f"key escapes the storage root: {key!r}")
        return path

    def _atomic_write(self, target: Path, write: Callable[[BinaryIO], object]) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=TEMP_SUFFIX)
            try:
                with open(fd, "wb") as handle:
                    write(handle)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp_name, target)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp_name)
                raise
        except OSError as exc:
            if exc.errno in NO_SPACE:
                raise StorageFull(f"no space left to store {target.name}") from exc
            raise

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store `data` under `key` atomically (temp file in the same folder, then rename)."""
        self._atomic_write(self._path(key), lambda handle: handle.write(data))

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        """Copy the file at `path` to `key` atomically."""
        with open(path, "rb") as source:
            self._atomic_write(self._path(key), lambda handle: shutil.copyfileobj(source, handle))

    def get_bytes(self, key: str) -> bytes:
        """Return the object's bytes; raises `ObjectNotFound`."""
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as exc:
            raise ObjectNotFound(key) from exc

    def download_to(self, key: str, path: Path) -> None:
        """Copy the object to `path`; raises `ObjectNotFound`."""
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(key)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)

    def iter_bytes(self, key: str, chunk_size: int = DEFAULT_CHUNK_BYTES) -> Iterator[bytes]:
        """Yield the object in chunks; raises `ObjectNotFound` at the call."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return _read_chunks(path, chunk_size)

    def exists(self, key: str) -> bool:
        """True when a file is stored under `key`."""
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        """The object's size in bytes; raises `ObjectNotFound`."""
        path = self._path(key)
        if not path.is_file():
            raise ObjectNotFound(key)
        return path.stat().st_size

    def delete(self, key: str) -> bool:
        """Remove one object; True when it existed."""
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix` (which must end in '/'); return the count."""
        if not prefix.endswith("/"):
            raise ValueError("a prefix must end with '/'")
        folder = self._path(prefix, prefix=True)
        if not folder.is_dir():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file() and not _is_temp(p))
        try:
            shutil.rmtree(folder)
        except FileNotFoundError:
            pass  # removed by a concurrent delete
        except OSError as exc:  # the caller keeps the deletion pending and tries again
            raise StorageUnavailable(f"could not remove {prefix}: {exc.strerror}") from exc
        return count

    def list_keys(self, prefix: str) -> list[str]:
        """Keys under `prefix` (ending in '/'), sorted; unfinished writes are not listed."""
        folder = self._path(prefix, prefix=True)
        if not folder.is_dir():
            return []
        files = (p for p in folder.rglob("*") if p.is_file() and not _is_temp(p))
        return sorted(p.relative_to(self.root).as_posix() for p in files)

    def presigned_url(
        self,
        key: str,
        *,
        expires_s: int | None = None,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """Always None: the API streams local objects itself."""
        self._path(key)
        return None

    def local_path(self, key: str) -> Path | None:
        """The object's file path (it may not exist yet)."""
        return self._path(key)

    def ping(self) -> None:
        """Raise `StorageUnavailable` unless the root folder is a writable directory."""
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise StorageUnavailable(f"storage folder {self.root} is not a writable directory")


def _is_temp(path: Path) -> bool:
    return path.name.startswith(".") and path.name.endswith(TEMP_SUFFIX)


def _read_chunks(path: Path, chunk_size: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            yield chunk
