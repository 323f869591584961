"""The web page in a real browser against the real stack: upload the bunny, watch the progress,
see the mesh in the 3D view with the input points, download the GLB, read the API's messages for
a bad file and a wrong key, compare two jobs side by side.

The tests of this module share one page and run in order: the bunny job uploaded through the
page (and a second job on the same input, submitted through the API, for the compare view).
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import trimesh
from PIL import Image, ImageChops

from tests.e2e.e2e_support import FINAL, RUN_TIMEOUT_S, Stack, submit, watch

if TYPE_CHECKING:
    from playwright.sync_api import Browser, FilePayload, Page, Request, ViewportSize

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
BUNNY = REPO / "tests" / "data" / "bunny" / "sparse" / "points.ply"
PARAMS = {"preset": "fast", "max_iterations": "120", "resolution": "48"}
"""What the page submits: a small job (well under a minute on two cores)."""
VIEWPORT: ViewportSize = {"width": 1280, "height": 1000}
PAGE_TIMEOUT_MS = 30_000
PIXEL_CHANGE = 24
"""A pixel counts as changed when a channel moved by more than this (0-255): software
rasterisation and antialiasing jitter stay below it."""
BACKGROUND = (0xF4, 0xF5, 0xF7)
"""The viewer's clear colour (viewer.js BACKGROUND)."""


@dataclass
class PageSession:
    """The one page these tests drive, and what it did."""

    page: Page
    stack: Stack
    key: str
    requests: list[Request] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class BunnyRun:
    """The bunny job submitted through the page and followed there to its end."""

    job_id: str
    other_id: str
    progress: list[tuple[float, str, str]]
    empty_view: Image.Image


def screenshot(page: Page, selector: str) -> Image.Image:
    return Image.open(io.BytesIO(page.locator(selector).screenshot())).convert("RGB")


def changed_box(before: Image.Image, after: Image.Image) -> tuple[int, int, int, int] | None:
    """The bounding box of the pixels that differ between two screenshots of one element."""
    difference = ImageChops.difference(before, after).convert("L")
    return difference.point(lambda value: 255 if value > PIXEL_CHANGE else 0).getbbox()


def non_background_share(image: Image.Image) -> float:
    """The share of an element's pixels that differ from the viewer's background."""
    plain = Image.new("RGB", image.size, BACKGROUND)
    mask = ImageChops.difference(plain, image).convert("L").point(
        lambda value: 255 if value > PIXEL_CHANGE else 0)
    return mask.histogram()[255] / (image.width * image.height)


def text(page: Page, selector: str) -> str:
    return page.locator(selector).inner_text().strip()


@pytest.fixture(scope="module")
def session(browser: Browser, web_stack: Stack) -> Iterator[PageSession]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    found = PageSession(page, web_stack, web_stack.keys["acme"])
    page.on("request", lambda request: found.requests.append(request))
    page.on("pageerror", lambda error: found.errors.append(str(error)))
    page.goto(f"{web_stack.base_url}/")
    page.fill("#api-key", found.key)
    try:
        yield found
    finally:
        context.close()


def read_progress(page: Page) -> tuple[float, str, str]:
    value, progress, status = page.evaluate("""() => [
        document.getElementById('job-progress').value,
        document.getElementById('progress-text').textContent,
        document.getElementById('job-status').textContent]""")
    return float(value), str(progress), str(status)


@pytest.fixture(scope="module")
def bunny(session: PageSession) -> BunnyRun:
    """Upload the bunny through the page's file input; follow it there until the mesh shows."""
    page = session.page
    page.set_input_files("#file-input", str(BUNNY))
    page.select_option("select[name=preset]", PARAMS["preset"])
    page.fill("input[name=max_iterations]", PARAMS["max_iterations"])
    page.fill("input[name=resolution]", PARAMS["resolution"])
    page.click("#submit-button")
    page.wait_for_selector("#viewer[data-state=empty] canvas")
    empty_view = screenshot(page, "#viewer")
    job_id = text(page, "#job-id")
    with session.stack.client() as client:  # the compare view's second job, queued behind it
        other = submit(client, BUNNY, {"method": "neural-pull", "preset": "fast",
                                       "max_iterations": 120, "resolution": 48})
    progress: list[tuple[float, str, str]] = []
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        progress.append(read_progress(page))
        if progress[-1][2] in FINAL:
            break
        time.sleep(0.2)
    assert progress[-1][2] == "succeeded", (progress[-5:], session.stack.logs())
    page.wait_for_selector("#viewer[data-state=ready]")
    page.wait_for_function("""() => !document.getElementById('toggle-points').disabled
        || document.getElementById('viewer-note').textContent !== ''""")
    return BunnyRun(job_id, other["id"], progress, empty_view)


def test_progress_advances_while_the_job_runs(bunny: BunnyRun) -> None:
    running = [(value, progress) for value, progress, status in bunny.progress
               if status == "running"]
    assert len({progress for _, progress in running}) >= 2, bunny.progress
    values = [value for value, _ in running]
    assert values == sorted(values), "the progress bar went backwards"
    assert any(0 < value < 1 for value in values), bunny.progress
    assert any("step" in progress for _, progress in running), running
    assert bunny.progress[-1][0] == 1.0


def test_the_3d_view_shows_the_mesh(session: PageSession, bunny: BunnyRun) -> None:
    page = session.page
    if page.is_enabled("#toggle-points"):
        page.uncheck("#toggle-points")  # the mesh alone
    mesh_view = screenshot(page, "#viewer")
    box = changed_box(bunny.empty_view, mesh_view)
    assert box is not None, "the view did not change when the mesh loaded"
    left, top, right, bottom = box
    width, height = mesh_view.size
    assert right - left >= width / 4 and bottom - top >= height / 4, (box, mesh_view.size)


def test_the_points_toggle_shows_and_hides_the_input(session: PageSession, bunny: BunnyRun) -> None:
    page = session.page
    assert text(page, "#viewer-note") == "", text(page, "#viewer-note")
    assert page.is_enabled("#toggle-points")
    page.uncheck("#toggle-points")
    without = screenshot(page, "#viewer")
    page.check("#toggle-points")
    with_points = screenshot(page, "#viewer")
    assert changed_box(without, with_points) is not None, "the points did not show"


def test_the_support_toggle_recolours_the_surface(session: PageSession, bunny: BunnyRun) -> None:
    page = session.page
    assert page.is_enabled("#toggle-support"), "the mesh GLB carries no _SUPPORT attribute"
    page.uncheck("#toggle-points")
    plain = screenshot(page, "#viewer")
    page.check("#toggle-support")
    assert page.is_visible("#support-legend")
    coloured = screenshot(page, "#viewer")
    page.uncheck("#toggle-support")
    assert changed_box(plain, coloured) is not None
    assert changed_box(plain, screenshot(page, "#viewer")) is None, "the colours did not go back"


def test_the_metrics_table_lists_the_jobs_metrics(session: PageSession, bunny: BunnyRun) -> None:
    rows = session.page.locator("#metrics tr")
    assert rows.count() > 5
    assert "watertight" in session.page.inner_text("#metrics")


def test_the_glb_download_loads_with_trimesh(session: PageSession, bunny: BunnyRun) -> None:
    page = session.page
    with page.expect_download() as download:
        page.click("#downloads button[data-format=glb]")
    assert download.value.suggested_filename == f"reconstruction-{bunny.job_id}.glb"
    path = download.value.path()
    mesh = trimesh.load(path, file_type="glb", force="mesh")
    assert isinstance(mesh, trimesh.Trimesh) and len(mesh.faces) > 100


def api_error(stack: Stack, key: str, name: str, content: bytes) -> dict[str, Any]:
    """What the API answers to the same upload, for comparison with what the page shows."""
    answer = httpx.post(f"{stack.base_url}/v1/reconstructions",
                        headers={"Authorization": f"Bearer {key}"},
                        files={"file": (name, content, "application/octet-stream")})
    assert answer.status_code >= 400, answer.text
    return dict(answer.json()["error"])


def test_a_bad_file_shows_the_apis_message(session: PageSession, bunny: BunnyRun) -> None:
    page = session.page
    content = b"ply\nformat ascii 1.0\nthis is not a point cloud\n"
    expected = api_error(session.stack, session.key, "broken.ply", content)
    broken: FilePayload = {"name": "broken.ply", "mimeType": "application/octet-stream",
                           "buffer": content}
    page.set_input_files("#file-input", files=[broken])
    page.click("#submit-button")
    page.wait_for_selector("#submit-error:not([hidden])")
    shown = text(page, "#submit-error")
    assert shown.startswith(expected["message"]) and f"({expected['code']})" in shown, shown
    assert "Traceback" not in shown


def test_a_wrong_key_shows_the_apis_message(session: PageSession, bunny: BunnyRun) -> None:
    page = session.page
    expected = api_error(session.stack, "not-a-key", BUNNY.name, BUNNY.read_bytes())
    page.fill("#api-key", "not-a-key")
    page.set_input_files("#file-input", str(BUNNY))
    page.click("#submit-button")
    page.wait_for_selector("#submit-error:not([hidden])")
    assert text(page, "#submit-error") == f"{expected['message']} ({expected['code']})"
    page.wait_for_selector("#jobs-error:not([hidden])")
    assert text(page, "#jobs-error") == f"{expected['message']} ({expected['code']})"
    assert page.locator("#jobs li").count() == 0
    page.fill("#api-key", session.key)
    page.wait_for_selector("#jobs-error", state="hidden")


def test_the_job_list_shows_status_and_thumbnails(session: PageSession, bunny: BunnyRun) -> None:
    page = session.page
    page.click("#refresh-jobs")
    row = page.locator(f"#jobs li[data-job-id='{bunny.job_id}']")
    row.wait_for()
    assert row.get_attribute("data-status") == "succeeded"
    thumbnail = row.locator(".thumb img")
    thumbnail.wait_for()
    assert (thumbnail.get_attribute("src") or "").startswith("blob:")
    assert page.evaluate("(img) => img.naturalWidth", thumbnail.element_handle()) > 0


def test_the_compare_view_shows_two_meshes_with_linked_cameras(
    session: PageSession, bunny: BunnyRun
) -> None:
    page, stack = session.page, session.stack
    with stack.client() as client:
        other = watch(client, bunny.other_id, lambda view: view["status"] in FINAL,
                      RUN_TIMEOUT_S, stack)
    assert other["status"] == "succeeded", other
    page.click("#refresh-jobs")
    for job_id in (bunny.job_id, bunny.other_id):
        page.check(f"#jobs li[data-job-id='{job_id}'] input[type=checkbox]")
    page.click("#compare-button")
    page.wait_for_selector("#compare-a[data-state=ready]")
    page.wait_for_selector("#compare-b[data-state=ready]")
    assert "nap" in text(page, "#compare-a-label")
    assert "neural-pull" in text(page, "#compare-b-label")
    before_b = screenshot(page, "#compare-b")
    for view in (screenshot(page, "#compare-a"), before_b):
        assert non_background_share(view) > 0.05
    box = page.locator("#compare-a").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + box["width"] / 4, y, steps=5)
    page.mouse.up()
    assert changed_box(before_b, screenshot(page, "#compare-b")) is not None, (
        "turning the left camera did not turn the right one")


def test_without_three_js_the_page_works_and_says_how_to_enable_the_view(
    browser: Browser, web_stack: Stack, bunny: BunnyRun
) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.route("**/web/vendor/**", lambda route: route.fulfill(status=404, body="missing"))
        page.goto(f"{web_stack.base_url}/")
        page.wait_for_selector("#viewer-unavailable:not([hidden])")
        assert "npm ci --prefix recon/api/web" in text(page, "#viewer-unavailable")
        page.fill("#api-key", web_stack.keys["acme"])
        page.locator(f"#jobs li[data-job-id='{bunny.job_id}']").wait_for()
        page.click(f"#jobs li[data-job-id='{bunny.job_id}'] button.link")
        page.locator("#downloads button[data-format=glb]").wait_for()
        assert page.is_hidden("#viewer-block")
    finally:
        context.close()


def test_the_key_never_appears_in_a_url_and_goes_in_the_header(session: PageSession) -> None:
    urls = [request.url for request in session.requests]
    assert not [url for url in urls if session.key in url or "not-a-key" in url]
    api_calls = [r for r in session.requests if "/v1/" in r.url]
    assert api_calls and all("authorization" in r.headers for r in api_calls)
    assert session.errors == []
