"""LocalStorage: the shared backend contract plus atomic writes and root confinement."""

import os
import threading
import uuid
from pathlib import Path

import pytest

from recon.infra.storage import LocalStorage, StorageUnavailable, job_object_key
from tests.infra.storage import backend_contract


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "objects")


def test_round_trip(storage: LocalStorage, tmp_path: Path) -> None:
    backend_contract.check_round_trip(storage, tmp_path)


def test_missing_objects(storage: LocalStorage, tmp_path: Path) -> None:
    backend_contract.check_missing_objects(storage, tmp_path)


def test_delete_prefix(storage: LocalStorage) -> None:
    backend_contract.check_delete_prefix(storage)


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
