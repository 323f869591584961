"""LocalStorage: the shared backend contract plus atomic writes, root confinement and the
real failures of a folder: one that cannot be removed and a full filesystem.

The failures are real, not mocked: without root, a read-only folder; as root (where
permissions do not stop anything), a mount point inside the folder (rmdir answers EBUSY) and a
1 MiB tmpfs (ENOSPC). When mounting is not allowed, those tests skip and say why.
"""

import contextlib
import os
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from recon.infra.storage import (
    LocalStorage,
    StorageFull,
    StorageUnavailable,
    job_object_key,
    job_prefix,
)
from tests.infra.storage import backend_contract

IS_ROOT = os.geteuid() == 0


def mount_tmpfs(folder: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` on `folder`; None when done, else why it could not be."""
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"mount is not available: {exc}"
    return None if done.returncode == 0 else f"mount refused: {done.stderr.strip()}"


def unmount(folder: Path) -> None:
    """Unmount `folder`, lazily when something still holds it open."""
    done = subprocess.run(["umount", str(folder)], capture_output=True, timeout=10, check=False)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=10, check=False)


@contextlib.contextmanager
def undeletable(folder: Path) -> Iterator[None]:
    """Make `folder` (an existing directory) impossible to remove until the block ends.

    Without root its permissions are dropped to r-x, so its files cannot be unlinked. Root
    ignores permissions, so a tmpfs is mounted on a new subfolder instead (removing a mount
    point fails with EBUSY); the test skips when mounting is not allowed.
    """
    if not IS_ROOT:
        mode = folder.stat().st_mode
        folder.chmod(0o500)
        try:
            yield
        finally:
            folder.chmod(mode)
        return
    mount_point = folder / "mounted"
    mount_point.mkdir()
    why = mount_tmpfs(mount_point, "1m")
    if why is not None:
        mount_point.rmdir()
        pytest.skip(f"running as root, where permissions do not stop a removal, and {why}")
    try:
        (mount_point / "held").write_bytes(b"x")
        yield
    finally:
        unmount(mount_point)


@contextlib.contextmanager
def full_filesystem(folder: Path) -> Iterator[None]:
    """A real 1 MiB filesystem mounted on `folder` (root only; skips otherwise)."""
    if not IS_ROOT:
        pytest.skip("a full filesystem needs a tmpfs mount, which needs root")
    folder.mkdir(parents=True, exist_ok=True)
    why = mount_tmpfs(folder, "1m")
    if why is not None:
        pytest.skip(f"cannot make a full filesystem: {why}")
    try:
        yield
    finally:
        unmount(folder)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


def test_round_trip(storage: LocalStorage, tmp_path: Path) -> None:
    backend_contract.check_round_trip(storage, tmp_path)


def test_missing_objects(storage: LocalStorage, tmp_path: Path) -> None:
    backend_contract.check_missing_objects(storage, tmp_path)


def test_delete_prefix(storage: LocalStorage) -> None:
    backend_contract.check_delete_prefix(storage)


def test_delete_missing_prefix(storage: LocalStorage) -> None:
    backend_contract.check_delete_missing_prefix(storage)


def test_delete_prefix_of_a_run(storage: LocalStorage) -> None:
    backend_contract.check_delete_prefix_of_a_run(storage)


def test_delete_prefix_raises_when_the_folder_cannot_be_removed(storage: LocalStorage) -> None:
    """A folder that cannot be removed is reported (the caller keeps the deletion pending and
    tries again), never taken for done."""
    job_id = uuid.uuid4().hex
    key = job_object_key("acme", job_id, "mesh.glb")
    storage.put_bytes(key, b"glb")
    folder = storage.root / job_prefix("acme", job_id)
    with undeletable(folder), pytest.raises(StorageUnavailable, match="could not remove"):
        storage.delete_prefix(job_prefix("acme", job_id))
    assert folder.is_dir()  # still there, so the next try has something to remove
    assert storage.delete_prefix(job_prefix("acme", job_id)) >= 0
    assert not folder.exists() and not storage.exists(key)


def test_a_write_on_a_full_filesystem_raises_storage_full(tmp_path: Path) -> None:
    root = tmp_path / "tiny"
    with full_filesystem(root):
        storage = LocalStorage(root)
        key = job_object_key("acme", uuid.uuid4().hex, "mesh.glb")
        with pytest.raises(StorageFull):
            storage.put_bytes(key, b"x" * (2 * 1024 * 1024))
        big = tmp_path / "big.bin"
        big.write_bytes(b"y" * (2 * 1024 * 1024))
        with pytest.raises(StorageFull):
            storage.put_file(key, big)
        assert not storage.exists(key)
        assert [p for p in root.rglob("*") if p.is_file()] == []  # no partial file left
        storage.put_bytes(key, b"small")  # the failure left the filesystem usable
        assert storage.get_bytes(key) == b"small"
    assert issubclass(StorageFull, StorageUnavailable)


def test_rejects_unsafe_keys(storage: LocalStorage, tmp_path: Path) -> None:
    backend_contract.check_rejects_unsafe_keys(storage)
    assert not (tmp_path / "outside").exists()


def test_local_path_and_no_presigned_url(storage: LocalStorage) -> None:
    key = job_object_key("acme", uuid.uuid4().hex, "mesh.glb")
    storage.put_bytes(key, b"glb")
    assert storage.presigned_url(key) is None
    path = storage.local_path(key)
    assert path is not None and path.read_bytes() == b"glb"
    assert storage.root in path.parents


def test_readers_never_see_a_partial_object(storage: LocalStorage) -> None:
    """While a large object is rewritten, readers get the old or the new bytes, whole."""
    key = job_object_key("acme", uuid.uuid4().hex, "mesh.glb")
    old, new = b"a" * 4_000_000, b"b" * 4_000_000
    storage.put_bytes(key, old)
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = storage.get_bytes(key)
            seen.add(data[:1] + bytes([len(data) == len(old)]))

    reader = threading.Thread(target=read)
    reader.start()
    for payload in (new, old, new):
        storage.put_bytes(key, payload)
    stop.set()
    reader.join()
    assert seen <= {b"a\x01", b"b\x01"}
    leftovers = [p for p in storage.root.rglob("*") if p.name.endswith(".partial")]
    assert leftovers == []


def test_ping_fails_on_an_unwritable_root(storage: LocalStorage) -> None:
    storage.ping()
    if os.geteuid() == 0:  # root ignores permissions; remove the folder instead
        storage.root.rmdir()
    else:
        storage.root.chmod(0o500)
    with pytest.raises(StorageUnavailable):
        storage.ping()
