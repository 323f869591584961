"""Fixtures of the end-to-end tests: a real API process and real worker processes on Redis DB 12.

The stacks are module-scoped (a module's tests share one API and its workers) and torn down
with everything they started. Storage is a local folder in a temporary directory, or S3 on
the SeaweedFS server of the `seaweed_s3` fixture (tests/conftest.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
import redis
from e2e_support import E2E_REDIS_URL, Stack, running_stack, s3_env

if TYPE_CHECKING:
    from tests.conftest import S3Server


def _keys() -> dict[str, str]:
    return {"acme": secrets.token_urlsafe(24), "globex": secrets.token_urlsafe(24)}


@pytest.fixture(scope="session", autouse=True)
def e2e_redis() -> Iterator[None]:
    """Redis DB 12 is this suite's own: emptied once before the first e2e test."""
    client = redis.Redis.from_url(E2E_REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"the e2e tests need Redis at {E2E_REDIS_URL}: {exc}")
    client.flushdb()
    yield
    client.close()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API + one worker, local storage."""
    yield from running_stack(tmp_path_factory.mktemp("e2e-local"), {}, _keys())


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory: pytest.TempPathFactory, seaweed_s3: S3Server) -> Iterator[Stack]:
    """API + one worker, S3 storage on the session's SeaweedFS server."""
    s3 = {**s3_env(seaweed_s3), "RECON_S3_PRESIGN_EXPIRY_S": "120"}
    yield from running_stack(tmp_path_factory.mktemp("e2e-s3"), s3, _keys())
