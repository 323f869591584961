"""The key builder refuses anything that could escape a job's folder."""

import uuid

import pytest

from recon.infra.storage import InvalidObjectKey, job_object_key, job_prefix, validate_key

JOB_ID = uuid.uuid4().hex


def test_builds_the_documented_layout() -> None:
    assert job_object_key("acme", JOB_ID, "input.ply") == f"tenants/acme/jobs/{JOB_ID}/input.ply"
    assert job_prefix("acme", JOB_ID) == f"tenants/acme/jobs/{JOB_ID}/"


@pytest.mark.parametrize(
    ("tenant", "job_id", "name"),
    [
        ("..", JOB_ID, "input.ply"),
        ("acme/../other", JOB_ID, "input.ply"),
        ("acme", "../" + JOB_ID, "input.ply"),
        ("acme", JOB_ID, "../input.ply"),
        ("acme", JOB_ID, "a/b.ply"),
        ("acme", JOB_ID, ".."),
        ("", JOB_ID, "input.ply"),
        ("acme", "", "input.ply"),
        ("acme", JOB_ID, ""),
        ("acme", JOB_ID.upper(), "input.ply"),
        ("acme", "not-a-uuid", "input.ply"),
        ("acme\x00", JOB_ID, "input.ply"),
        ("acme", JOB_ID, "input.ply\n"),
        ("acme", JOB_ID, "..\\..\\x"),
    ],
)
def test_rejects_unsafe_parts(tenant: str, job_id: str, name: str) -> None:
    with pytest.raises(InvalidObjectKey):
        job_object_key(tenant, job_id, name)


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "a//b", "a/../b", "../a", "a/./b", "a/b/", "a/..x/b"]
)
def test_validate_key_rejects_unsafe_full_keys(key: str) -> None:
    with pytest.raises(InvalidObjectKey):
        validate_key(key)


def test_validate_key_accepts_prefixes_only_when_asked() -> None:
    assert validate_key("tenants/acme/", prefix=True) == "tenants/acme/"
    with pytest.raises(InvalidObjectKey):
        validate_key("tenants/acme/")
