"""The web page at `/`: served without a key under a strict Content-Security-Policy, its own
files and the installed three.js modules served from fixed lists, and a page that still loads
(and says how to enable the 3D view) when three.js is not installed."""

import base64
import hashlib
import re
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recon.api.app import create_app
from recon.api.routes.web import IMPORT_MAP, THREE_DIR, VENDOR_FILES, WEB_DIR, WebFiles
from recon.api.validation import validate_point_cloud
from recon.infra.settings import Settings

REPO = Path(__file__).resolve().parents[3]
UNAVAILABLE = "3D view unavailable: install Node.js and npm, then run <code>make setup</code>"


def policy(response_headers: dict[str, str]) -> dict[str, list[str]]:
    directives = [part.split() for part in response_headers["content-security-policy"].split(";")]
    return {words[0]: words[1:] for words in directives if words}


@pytest.fixture
def fake_three(tmp_path: Path) -> Path:
    """A three.js package folder holding every vendor file, and one file not on the list."""
    root = tmp_path / "three"
    for name in (*VENDOR_FILES, "package.json", "src/Three.js"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"// {name}\n")
    return root


def client_for(settings: Settings, files: WebFiles) -> Iterator[TestClient]:
    with TestClient(create_app(settings, web_files=files)) as test_client:
        yield test_client


@pytest.fixture
def with_three(settings: Settings, fake_three: Path) -> Iterator[TestClient]:
    yield from client_for(settings, WebFiles(three_dir=fake_three))


@pytest.fixture
def without_three(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    yield from client_for(settings, WebFiles(three_dir=tmp_path / "missing"))


def test_the_page_needs_no_key_and_carries_a_strict_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    found = policy(dict(page.headers))
    assert found["default-src"] == ["'self'"]
    assert found["connect-src"] == ["'self'"]
    assert found["img-src"] == ["'self'", "blob:", "data:"]
    assert found["object-src"] == ["'none'"]
    assert not any("unsafe" in source for sources in found.values() for source in sources)
    import_map = IMPORT_MAP.search(page.text)
    assert import_map is not None
    digest = base64.b64encode(hashlib.sha256(import_map.group(1).encode()).digest()).decode()
    assert found["script-src"] == ["'self'", f"'sha256-{digest}'"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get("/v1/reconstructions").status_code == 401  # the API still needs the key


def test_every_script_style_and_module_the_page_names_is_served(client: TestClient) -> None:
    page = client.get("/").text
    names = re.findall(r'(?:src|href)="web/static/([\w.-]+)"', page)
    assert {"app.js", "style.css"} <= set(names)
    modules = set()
    for path in (WEB_DIR / "static").glob("*.js"):
        modules |= set(re.findall(r"from '\./([\w.-]+\.js)'", path.read_text()))
        modules |= set(re.findall(r"import\('\./([\w.-]+\.js)'\)", path.read_text()))
    assert "viewer.js" in modules
    for name in set(names) | modules:
        answer = client.get(f"/web/static/{name}")
        assert answer.status_code == 200, name
        kind = "text/css" if name.endswith(".css") else "text/javascript"
        assert answer.headers["content-type"].startswith(kind), name
        assert "content-security-policy" in answer.headers


def test_the_page_keeps_the_key_out_of_urls_and_storage_other_than_the_session() -> None:
    scripts = "\n".join(path.read_text() for path in (WEB_DIR / "static").glob("*.js"))
    assert "localStorage" not in scripts and "new EventSource" not in scripts
    assert "sessionStorage" in scripts and "Authorization: `Bearer" in scripts
    assert not re.search(r"[?&](key|api_key|token)=", scripts)


def test_the_examples_are_valid_point_clouds(client: TestClient, tmp_path: Path) -> None:
    for name, count in (("bunny.ply", 3000), ("torus.ply", 3000)):
        answer = client.get(f"/web/examples/{name}")
        assert answer.status_code == 200, name
        upload = tmp_path / name
        upload.write_bytes(answer.content)
        fmt, cloud = validate_point_cloud(upload, name, max_points=10_000, seed=0)
        assert fmt == "ply" and len(cloud.points) == count
    assert client.get("/web/examples/README.md").status_code == 200


def test_the_installed_vendor_files_are_served_and_nothing_else(with_three: TestClient) -> None:
    for name in VENDOR_FILES:
        answer = with_three.get(f"/web/vendor/three/{name}")
        assert answer.status_code == 200, name
        assert answer.text == f"// {name}\n"
    assert "3D view unavailable" in with_three.get("/").text  # hidden until an import fails
    for path in ("package.json", "src/Three.js", "build/../package.json"):
        answer = with_three.get(f"/web/vendor/three/{path}")
        assert answer.status_code == 404, path
        assert answer.json()["error"]["code"] == "not_found"


@pytest.mark.skipif(not (THREE_DIR / VENDOR_FILES[1]).is_file(),
                    reason="three.js is not installed (npm ci --prefix recon/api/web)")
def test_the_real_three_install_is_served(client: TestClient) -> None:
    module = client.get("/web/vendor/three/build/three.module.js")
    assert module.status_code == 200
    assert module.headers["content-type"].startswith("text/javascript")
    assert "three.core.js" in module.text
    assert "MIT" in client.get("/web/vendor/three/LICENSE").text


def test_without_three_the_page_loads_and_says_how_to_enable_the_view(
    without_three: TestClient,
) -> None:
    page = without_three.get("/")
    assert page.status_code == 200
    assert UNAVAILABLE in page.text
    assert without_three.get("/web/static/app.js").status_code == 200
    missing = without_three.get("/web/vendor/three/build/three.module.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", [
    "/web/static/..%2F..%2Fapp.py", "/web/static/web.py", "/web/examples/..%2Findex.html",
    "/web/node_modules/three", "/web/static/", "/web/index.html",
])
def test_paths_outside_the_lists_are_not_served(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 404


def test_the_wheel_ships_every_page_and_vendor_file() -> None:
    """pyproject's package-data covers the page's files and the vendor list (when installed)."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["recon.api"]
    shipped = [path.relative_to(WEB_DIR.parent).as_posix()
               for folder in ("static", "examples") for path in (WEB_DIR / folder).iterdir()]
    shipped += ["web/index.html", *(f"web/node_modules/three/{name}" for name in VENDOR_FILES)]
    for name in shipped:
        assert any(fnmatch(name, pattern) for pattern in patterns), name


def test_the_docker_image_installs_every_vendor_file() -> None:
    """The Dockerfile's node stage keeps exactly the files the page serves."""
    dockerfile = (REPO / "Dockerfile").read_text()
    stage = dockerfile.split("AS web-vendor", 1)[1].split("\nFROM ", 1)[0]
    copied = set(re.findall(r"LICENSE|[\w/.]+\.js", stage.split("cp --parents", 1)[1]))
    assert copied == set(VENDOR_FILES)
    assert "COPY --from=web-vendor /vendor/three ./recon/api/web/node_modules/three" in dockerfile
