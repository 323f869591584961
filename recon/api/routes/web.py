"""The web page at `/`: static files shipped in `recon/api/web`, three.js from its npm install.

The page and its assets need no API key: the key is pasted into the page, kept in the browser's
sessionStorage and sent as a header with each API request, never in a URL. Files are served
from fixed lists (the page's own folders and the few three.js modules the viewer imports), so
no request path reaches the file system beyond them. When `npm ci` has not installed three.js,
the vendor paths answer 404 and the page runs without its 3D view, saying how to enable it.

Every response carries a strict Content-Security-Policy: scripts, styles and connections only
from this origin; the one inline element, the import map that names the three.js modules, is
allowed by its hash.
"""

import base64
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from recon.api.errors import NotFound

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
"""The page's folder: index.html, static/ (scripts, styles), examples/ (bundled point clouds)."""
THREE_DIR = WEB_DIR / "node_modules" / "three"
"""Where `npm ci --prefix recon/api/web` installs the pinned three.js."""
WEB_PATH = "/web"
"""URL prefix of the page's assets; the page itself is `/`."""
VENDOR_FILES = (
    "LICENSE",
    "build/three.module.js",
    "build/three.core.js",
    "examples/jsm/controls/OrbitControls.js",
    "examples/jsm/loaders/GLTFLoader.js",
    "examples/jsm/utils/BufferGeometryUtils.js",
    "examples/jsm/utils/SkeletonUtils.js",
)
"""The three.js files the viewer imports (and the licence), relative to the package folder;
pyproject's package-data lists the same files so that a wheel ships them when installed."""
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".ply": "application/octet-stream",
    ".xyz": "text/plain; charset=utf-8",
    "": "text/plain; charset=utf-8",
}
"""What the page's files are served as, by suffix; a file of another kind is not served."""
IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)


@dataclass(frozen=True)
class WebFiles:
    """Where the page's files are: its own folder and the three.js package folder."""

    web_dir: Path = WEB_DIR
    three_dir: Path = THREE_DIR

    def listed(self, folder: str) -> dict[str, Path]:
        """The servable files directly in `web_dir/folder`, by name."""
        root = self.web_dir / folder
        if not root.is_dir():
            return {}
        return {p.name: p for p in sorted(root.iterdir())
                if p.is_file() and p.suffix in MEDIA_TYPES and not p.name.startswith(".")}

    def vendor(self) -> dict[str, Path]:
        """The three.js files that are installed, by their path in the package."""
        paths = {name: self.three_dir / name for name in VENDOR_FILES}
        return {name: path for name, path in paths.items() if path.is_file()}


def content_security_policy(page: str) -> str:
    """The page's policy: this origin only, plus the import map by its SHA-256."""
    sources = ["'self'"]
    found = IMPORT_MAP.search(page)
    if found:
        digest = hashlib.sha256(found.group(1).encode()).digest()
        sources.append(f"'sha256-{base64.b64encode(digest).decode()}'")
    return "; ".join([
        "default-src 'self'",
        f"script-src {' '.join(sources)}",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ])


def build_router(files: WebFiles | None = None) -> APIRouter:
    """Routes for the page at `/` and its assets under `/web`, from `files` (the shipped ones)."""
    files = files or WebFiles()
    page = (files.web_dir / "index.html").read_text(encoding="utf-8")
    headers = {
        "Content-Security-Policy": content_security_policy(page),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    folders = {folder: files.listed(folder) for folder in ("static", "examples")}
    vendor = files.vendor()
    router = APIRouter(include_in_schema=False)

    def serve(path: Path | None) -> Response:
        if path is None:
            raise NotFound("no such file", code="not_found")
        return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=headers)

    @router.get("/")
    def web_page() -> HTMLResponse:
        """The page."""
        return HTMLResponse(page, headers=headers)

    @router.get(WEB_PATH + "/{folder}/{name}")
    def web_asset(folder: str, name: str) -> Response:
        """One of the page's own scripts, styles or example point clouds."""
        return serve(folders.get(folder, {}).get(name))

    @router.get(WEB_PATH + "/vendor/three/{path:path}")
    def vendor_file(path: str) -> Response:
        """One of the installed three.js modules, or its licence."""
        return serve(vendor.get(path))

    return router
