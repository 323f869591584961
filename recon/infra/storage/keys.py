"""Object keys: the only place a tenant name, job id or file name becomes part of a storage key.

Every part is validated against a strict pattern, so no user-controlled text (``..``, slashes,
empty parts, control characters) can reach a filesystem path or an S3 key.
"""

import re

from recon.infra.storage.errors import InvalidObjectKey

TENANT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
JOB_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}(\.[A-Za-z0-9]{1,16}){0,2}$")
KEY_SEGMENT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def _check(kind: str, value: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidObjectKey(f"invalid {kind}: {value!r}")
    return value


def is_valid_tenant(tenant: str) -> bool:
    """True when `tenant` may be used as a tenant name (letters, digits, '_' and '-')."""
    return bool(TENANT_PATTERN.fullmatch(tenant))


def is_valid_job_id(job_id: str) -> bool:
    """True when `job_id` is a uuid4 hex string (32 lowercase hex digits)."""
    return bool(JOB_ID_PATTERN.fullmatch(job_id))


def job_prefix(tenant: str, job_id: str) -> str:
    """The key prefix holding every object of one job: ``tenants/{tenant}/jobs/{id}/``."""
    _check("tenant", tenant, TENANT_PATTERN)
    _check("job id", job_id, JOB_ID_PATTERN)
    return f"tenants/{tenant}/jobs/{job_id}/"


def run_prefix(tenant: str, job_id: str, run_id: str) -> str:
    """The prefix of one run's outputs: ``tenants/{tenant}/jobs/{id}/runs/{run_id}/``.

    Each run writes under its own prefix, and the job record names the prefix of the run that
    succeeded, in the same atomic step as the status: a run that fails, is canceled or lost
    the job leaves nothing a client can be served.
    """
    _check("run id", run_id, JOB_ID_PATTERN)
    return f"{job_prefix(tenant, job_id)}runs/{run_id}/"


def job_object_key(tenant: str, job_id: str, name: str) -> str:
    """The key of one job object, e.g. ``tenants/acme/jobs/{id}/mesh.glb``.

    Raises `InvalidObjectKey` when any part is empty, contains a slash, ``..`` or anything
    outside its pattern.
    """
    _check("object name", name, NAME_PATTERN)
    return job_prefix(tenant, job_id) + name


def validate_key(key: str, *, prefix: bool = False) -> str:
    """Check a full key (or a prefix ending in '/') built from safe segments; return it.

    Backends call this on every key they receive, so a key that did not come from the
    builders above is still refused when it could escape the storage root.
    """
    body = key[:-1] if prefix and key.endswith("/") else key
    segments = body.split("/")
    if not body or any(not KEY_SEGMENT_PATTERN.fullmatch(s) or ".." in s for s in segments):
        raise InvalidObjectKey(f"invalid object key: {key!r}")
    return key


METRICS_OBJECT_NAME = "metrics.json"
PREVIEW_OBJECT_NAME = "preview.png"
"""A succeeded run's picture of its mesh (recon.engine.preview), beside its meshes."""
INPUT_DISPLAY_OBJECT_NAME = "input_display.npz"
"""The job's uploaded points, parsed and subsampled once for display by the API (its cache,
kept with the input under the job's prefix, so it goes when the job does)."""


def input_object_name(fmt: str) -> str:
    """Name of a job's uploaded point cloud, e.g. ``input.ply``."""
    return f"input.{fmt}"


def ground_truth_object_name(fmt: str) -> str:
    """Name of a job's uploaded ground truth, e.g. ``ground_truth.obj``."""
    return f"ground_truth.{fmt}"


def mesh_object_name(fmt: str) -> str:
    """Name of a job's reconstructed mesh in one format, e.g. ``mesh.glb``."""
    return f"mesh.{fmt}"
