"""Fixtures of the browser tests: the system's Chromium driven by Playwright, and a real stack.

No browser is downloaded: Playwright launches the `chromium` on PATH (Debian's package), whose
WebGL runs in software (SwiftShader), so no GPU is needed. Without Chromium, or without the
three.js files that `make setup` installs with npm, the tests skip and say why; where
RECON_REQUIRE_BROWSER=1 (CI sets it) they fail instead. The stack is the end-to-end suite's:
real `recon api` and `recon worker` processes on RECON_E2E_REDIS_URL, with local storage or
S3 on the session's SeaweedFS server.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis

from recon.api.routes.web import THREE_DIR, VENDOR_FILES
from tests.e2e.e2e_support import E2E_REDIS_URL, Stack, running_stack, s3_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser

    from tests.conftest import S3Server

REQUIRED = os.environ.get("RECON_REQUIRE_BROWSER") == "1"
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--ignore-gpu-blocklist"]
"""WebGL through ANGLE on SwiftShader: a software renderer, so headless Chromium draws the 3D
view on a machine without a GPU."""


def unavailable(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (RECON_REQUIRE_BROWSER=1: the browser tests must run here)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system's Chromium, with the three.js files the page imports installed."""
    found = next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)
    if found is None:
        unavailable("no chromium on PATH (Debian: apt-get install chromium)")
    missing = [name for name in VENDOR_FILES if not (THREE_DIR / name).is_file()]
    if missing:
        unavailable(f"three.js is not installed ({missing[0]} missing): make setup, or "
                    "npm ci --prefix recon/api/web")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        unavailable("the playwright package is missing: pip install -e '.[test]'")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def browser(chromium_path: str) -> Iterator[Browser]:
    """Headless Chromium for one module. Not for the session: Playwright's sync API keeps an
    event loop running in this thread while it is open, which breaks later tests' asyncio.run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                              args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def browser_stack(root: Path, extra_env: dict[str, str]) -> Iterator[Stack]:
    """API + one CPU worker on the e2e Redis DB (own key prefix and queue), data and logs under
    `root`; stopped afterwards."""
    try:
        redis.Redis.from_url(E2E_REDIS_URL).ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"the browser tests need Redis at {E2E_REDIS_URL}: {exc}")
    yield from running_stack(root, extra_env, {"acme": secrets.token_urlsafe(24)})


@pytest.fixture(scope="module")
def web_stack(tmp_path_factory: pytest.TempPathFactory, chromium_path: str) -> Iterator[Stack]:
    """The stack with local storage."""
    yield from browser_stack(tmp_path_factory.mktemp("browser"), {})


@pytest.fixture(scope="module")
def s3_web_stack(tmp_path_factory: pytest.TempPathFactory, chromium_path: str,
                 seaweed_s3: S3Server) -> Iterator[Stack]:
    """The stack with S3 storage on the session's SeaweedFS server (no CORS configured)."""
    yield from browser_stack(tmp_path_factory.mktemp("browser-s3"), s3_env(seaweed_s3))
