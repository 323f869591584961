"""Fixtures of the end-to-end tests: a real API process and real worker processes on Redis DB 12.

The stacks are module-scoped (a module's tests share one API and its workers) and torn down
with everything they started. Storage is a local folder in a temporary directory, or S3 on
the SeaweedFS server of the `seaweed_s3` fixture (tests/conftest.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis
from e2e_support import E2E_REDIS_URL, Stack, free_port, stack_env

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
    yield from _running_stack(tmp_path_factory.mktemp("e2e-local"), {})


@pytest.fixture(scope="module")
def s3_stack(tmp_path_factory: pytest.TempPathFactory, seaweed_s3: S3Server) -> Iterator[Stack]:
    """API + one worker, S3 storage on the session's SeaweedFS server."""
    s3 = {
        "RECON_STORAGE_BACKEND": "s3",
        "RECON_S3_ENDPOINT_URL": seaweed_s3.endpoint_url,
        "RECON_S3_BUCKET": seaweed_s3.bucket,
        "RECON_S3_ACCESS_KEY_ID": seaweed_s3.access_key_id,
        "RECON_S3_SECRET_ACCESS_KEY": seaweed_s3.secret_access_key,
        "RECON_S3_REGION": seaweed_s3.region,
        "RECON_S3_PRESIGN_EXPIRY_S": "120",
    }
    yield from _running_stack(tmp_path_factory.mktemp("e2e-s3"), s3)


def _running_stack(root: Path, extra_env: dict[str, str]) -> Iterator[Stack]:
    """A started API + one worker with their data and logs under `root`; stopped afterwards."""
    (root / "logs").mkdir()
    port = free_port()
    keys = _keys()
    stack = Stack(stack_env(root / "data", port, keys, extra_env), root / "logs",
                  f"http://127.0.0.1:{port}", keys)
    try:
        stack.start_worker()
        stack.start_api()
        yield stack
    finally:
        stack.stop()
