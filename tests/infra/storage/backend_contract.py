"""Behaviour every `ObjectStorage` backend must show; run against local and S3 backends."""

import uuid
from pathlib import Path

import pytest

from recon.infra.storage import (
    InvalidObjectKey,
    ObjectNotFound,
    ObjectStorage,
    job_object_key,
    job_prefix,
    run_prefix,
)


def check_round_trip(storage: ObjectStorage, tmp_path: Path) -> None:
    """put/get/exists/size/iter/download behave and agree with each other."""
    job_id = uuid.uuid4().hex
    key = job_object_key("acme", job_id, "input.ply")
    payload = bytes(range(256)) * 4099  # ~1 MiB, not a multiple of the chunk size
    assert not storage.exists(key)
    storage.put_bytes(key, payload, content_type="application/x-ply")
    assert storage.exists(key)
    assert storage.size(key) == len(payload)
    assert storage.get_bytes(key) == payload
    assert b"".join(storage.iter_bytes(key, chunk_size=65536)) == payload
    target = tmp_path / "nested" / "copy.ply"
    storage.download_to(key, target)
    assert target.read_bytes() == payload
    source = tmp_path / "source.bin"
    source.write_bytes(b"second version")
    storage.put_file(key, source)
    assert storage.get_bytes(key) == b"second version"


def check_missing_objects(storage: ObjectStorage, tmp_path: Path) -> None:
    """Reading an absent key raises ObjectNotFound, never returns empty bytes."""
    key = job_object_key("acme", uuid.uuid4().hex, "mesh.glb")
    with pytest.raises(ObjectNotFound):
        storage.get_bytes(key)
    with pytest.raises(ObjectNotFound):
        storage.size(key)
    with pytest.raises(ObjectNotFound):
        storage.download_to(key, tmp_path / "x")
    with pytest.raises(ObjectNotFound):
        list(storage.iter_bytes(key))
    assert storage.delete(key) is False


def check_delete_prefix(storage: ObjectStorage) -> None:
    """delete_prefix removes one job's objects and leaves its neighbours alone."""
    doomed, kept = uuid.uuid4().hex, uuid.uuid4().hex
    for name in ("input.ply", "mesh.glb", "metrics.json"):
        storage.put_bytes(job_object_key("acme", doomed, name), b"x")
    storage.put_bytes(job_object_key("acme", kept, "input.ply"), b"y")
    assert len(storage.list_keys(job_prefix("acme", doomed))) == 3
    assert storage.delete_prefix(job_prefix("acme", doomed)) == 3
    assert storage.list_keys(job_prefix("acme", doomed)) == []
    assert storage.get_bytes(job_object_key("acme", kept, "input.ply")) == b"y"
    assert storage.delete_prefix(job_prefix("acme", doomed)) == 0


def check_delete_missing_prefix(storage: ObjectStorage) -> None:
    """delete_prefix of a prefix that holds nothing (never written, or already removed)
    returns 0 and raises nothing: a retried deletion is harmless."""
    job_id = uuid.uuid4().hex
    assert storage.delete_prefix(job_prefix("acme", job_id)) == 0
    assert storage.delete_prefix(run_prefix("acme", job_id, uuid.uuid4().hex)) == 0
    assert storage.delete_prefix("tenants/nobody/") == 0
    storage.put_bytes(job_object_key("acme", job_id, "input.ply"), b"x")
    assert storage.delete_prefix(run_prefix("acme", job_id, uuid.uuid4().hex)) == 0
    assert storage.get_bytes(job_object_key("acme", job_id, "input.ply")) == b"x"


def check_delete_prefix_of_a_run(storage: ObjectStorage) -> None:
    """A run's prefix is removed alone; the job prefix removes the job's runs with it."""
    job_id, kept_run, doomed_run = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    storage.put_bytes(job_object_key("acme", job_id, "input.ply"), b"in")
    for run_id in (kept_run, doomed_run):
        storage.put_bytes(run_prefix("acme", job_id, run_id) + "mesh.glb", b"glb")
    assert storage.delete_prefix(run_prefix("acme", job_id, doomed_run)) == 1
    assert storage.list_keys(job_prefix("acme", job_id)) == [
        job_object_key("acme", job_id, "input.ply"),
        run_prefix("acme", job_id, kept_run) + "mesh.glb",
    ]
    assert storage.delete_prefix(job_prefix("acme", job_id)) == 2
    assert storage.list_keys(job_prefix("acme", job_id)) == []


def check_rejects_unsafe_keys(storage: ObjectStorage) -> None:
    """Keys that did not come from the builder cannot escape the storage root."""
    for key in ("../outside", "tenants/../../etc/passwd", "/abs/path", ""):
        with pytest.raises(InvalidObjectKey):
            storage.put_bytes(key, b"x")
        with pytest.raises(InvalidObjectKey):
            storage.get_bytes(key)
