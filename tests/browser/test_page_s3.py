"""The page with S3 storage: everything it shows (mesh, input points, thumbnail, downloads) comes
through the API with the key header, so the bucket needs no CORS and no presigned URL, let alone
the key, ever reaches the browser."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trimesh

from tests.browser.test_page import BUNNY, VIEWPORT, text
from tests.e2e.e2e_support import FINAL, RUN_TIMEOUT_S, Stack, submit, watch

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Request

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SMALL = {"preset": "fast", "max_iterations": 120, "resolution": 48}


def test_a_job_stored_on_s3_shows_and_downloads(browser: Browser, s3_web_stack: Stack) -> None:
    stack = s3_web_stack
    with stack.client() as client:
        job = submit(client, BUNNY, SMALL)
        done = watch(client, job["id"], lambda view: view["status"] in FINAL, RUN_TIMEOUT_S, stack)
    assert done["status"] == "succeeded", done
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    requests: list[Request] = []
    try:
        page = context.new_page()
        page.on("request", lambda request: requests.append(request))
        page.goto(f"{stack.base_url}/")
        page.fill("#api-key", stack.keys["acme"])
        row = page.locator(f"#jobs li[data-job-id='{job['id']}']")
        row.locator(".thumb img").wait_for()
        row.locator("button.link").click()
        page.wait_for_selector("#viewer[data-state=ready]")
        page.wait_for_function("() => !document.getElementById('toggle-points').disabled")
        assert text(page, "#viewer-note") == ""
        with page.expect_download() as download:
            page.click("#downloads button[data-format=glb]")
        mesh = trimesh.load(Path(download.value.path()), file_type="glb", force="mesh")
        assert isinstance(mesh, trimesh.Trimesh) and len(mesh.faces) > 100
        time.sleep(0.2)  # let the last request events arrive
    finally:
        context.close()
    origins = {request.url.split("/")[2] for request in requests
               if request.url.startswith("http")}
    assert origins == {stack.base_url.split("/")[2]}, origins
