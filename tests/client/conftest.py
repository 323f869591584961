"""Fixtures of the client tests: one real service for the whole package, and clients of it.

The service is a real `recon api` and `recon worker` (tests/e2e/e2e_support.py) on the
session's SeaweedFS S3, so downloads follow the service's redirect to a presigned URL as they
do in production. Limits are small (`QUICK`) so that rate limits and reconnects happen within
seconds; every test leaves no active job behind.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recon.client import Client
from tests.conftest import binary_ply, sphere_points
from tests.e2e.e2e_support import Stack, running_stack, s3_env

if TYPE_CHECKING:
    from tests.conftest import S3Server

QUICK = {
    "RECON_MAX_CONCURRENT_JOBS_PER_TENANT": "1",
    "RECON_RETRY_AFTER_S": "1",
    "RECON_EVENTS_POLL_INTERVAL_S": "0.2",
    "RECON_EVENTS_MAX_DURATION_S": "1",
}
"""One active job per tenant, `Retry-After: 1`, event streams that close after a second (the
client reopens them where they stopped)."""


@pytest.fixture(scope="package")
def service(tmp_path_factory: pytest.TempPathFactory, seaweed_s3: S3Server) -> Iterator[Stack]:
    """API + one worker on S3 storage, shared by the package's tests."""
    keys = {"acme": secrets.token_urlsafe(24), "globex": secrets.token_urlsafe(24)}
    yield from running_stack(tmp_path_factory.mktemp("client-service"),
                             {**s3_env(seaweed_s3), **QUICK}, keys)


@pytest.fixture
def acme(service: Stack) -> Iterator[Client]:
    """The Python client of tenant acme."""
    with Client(service.base_url, service.keys["acme"]) as client:
        yield client


@pytest.fixture
def globex(service: Stack) -> Iterator[Client]:
    """The Python client of tenant globex."""
    with Client(service.base_url, service.keys["globex"]) as client:
        yield client


@pytest.fixture
def sphere_ply(tmp_path: Path) -> Path:
    """A small point cloud file: 512 points on the unit sphere."""
    path = tmp_path / "sphere.ply"
    path.write_bytes(binary_ply(sphere_points()))
    return path
