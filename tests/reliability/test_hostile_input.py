"""Hostile and malformed uploads through the real app: each is refused with the status its
kind calls for, a body that says what is wrong, and no trace (no job, no queued message, no
stored object, no upload folder left behind).

Statuses: 400 for a malformed request (multipart, params that are not JSON, headers), 413 for
too large, 415 for content of an unsupported type, 422 for an unreadable or invalid cloud or
invalid parameter values. Never 5xx. Every case is recorded for docs/RELIABILITY.md.
"""

import gzip
import io
import json
import socket
import struct
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient

from recon.api.app import create_app
from recon.api.uploads import upload_temp_root
from recon.infra.settings import Settings
from tests.api.conftest import SERVER_START_TIMEOUT_S, LiveServer
from tests.conftest import API_KEY, binary_ply, free_port, sphere_points, wait_until
from tests.reliability.record import record_scenario

pytestmark = pytest.mark.reliability

GROUP = "hostile input"
BOUNDARY = "hostile-boundary"
SMALL_LIMIT = 64 * 1024
Part = tuple[str, str | None, bytes]  # form field, file name (None: a text field), content


# --- payloads ----------------------------------------------------------------------------


def points() -> np.ndarray:
    return sphere_points().astype(np.float64)


def ascii_ply(rows: np.ndarray, count: int | None = None, props: str = "xyz") -> bytes:
    header = (
        "ply\nformat ascii 1.0\n"
        f"element vertex {len(rows) if count is None else count}\n"
        + "".join(f"property float {name}\n" for name in props)
        + "end_header\n"
    )
    body = "".join(" ".join(repr(float(v)) for v in row) + "\n" for row in rows)
    return (header + body).encode()


def binary_with(value: float, row: int = 7) -> bytes:
    rows = points()
    rows[row, 1] = value
    return binary_ply(rows)


def ascii_with(token: str) -> bytes:
    text = ascii_ply(points()).decode().splitlines()
    start = text.index("end_header") + 1
    x, _, z = text[start + 7].split()
    text[start + 7] = f"{x} {token} {z}"
    return ("\n".join(text) + "\n").encode()


def header_then(header: str, body: bytes) -> bytes:
    return header.encode() + body


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def text_rows(rows: np.ndarray) -> bytes:
    return "".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in rows).encode()


def png_bytes() -> bytes:
    chunk = b"IHDR" + struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + b"\x00" * 4


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("scan.ply", binary_ply(sphere_points()))
    return buffer.getvalue()


def garbage(size: int = 8192) -> bytes:
    return np.random.default_rng(11).integers(0, 256, size, dtype=np.uint8).tobytes()


def list_bomb() -> bytes:
    """A valid vertex element, then a face whose uint list count claims 4 G entries."""
    rows = np.ascontiguousarray(points(), dtype="<f4")
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(rows)}\nproperty float x\nproperty float y\nproperty float z\n"
        "element face 1\nproperty list uint int vertex_indices\nend_header\n"
    )
    return header.encode() + rows.tobytes() + struct.pack("<I", 0xFFFFFFFF) + bytes(64)


def face_count_bomb() -> bytes:
    rows = np.ascontiguousarray(points(), dtype="<f4")
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(rows)}\nproperty float x\nproperty float y\nproperty float z\n"
        "element face 1000000000\nproperty list uchar int vertex_indices\nend_header\n"
    )
    return header.encode() + rows.tobytes() + (b"\xff" + bytes(1020)) * 4


def huge_header() -> bytes:
    comments = "".join(f"comment {'x' * 1000}\n" for _ in range(1100))  # about 1.1 MiB
    return (
        "ply\nformat ascii 1.0\n" + comments + "element vertex 3\nproperty float x\n"
        "property float y\nproperty float z\nend_header\n0 0 0\n1 0 0\n0 1 0\n"
    ).encode()


def las_garbage() -> bytes:
    return b"LASF" + garbage(2000)


def truncated_npy() -> bytes:
    blob = npy(points())
    return blob[: len(blob) // 2]


def collinear() -> np.ndarray:
    t = np.linspace(-1.0, 1.0, 500)[:, None]
    return np.array([0.5, -2.0, 3.0]) + t * np.array([1.0, 2.0, 3.0])


# --- multipart -----------------------------------------------------------------------------


def form(*parts: Part, boundary: str = BOUNDARY, close: bool = True) -> bytes:
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += (
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + content + b"\r\n"
    return body + (f"--{boundary}--\r\n".encode() if close else b"")


def cloud(content: bytes, filename: str = "scan.ply") -> Part:
    return ("file", filename, content)


def params(text: str) -> Part:
    return ("params", None, text.encode())


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"


@dataclass(frozen=True)
class Case:
    """One hostile request and the answer it must get."""

    name: str
    body: Callable[[], bytes]
    status: int
    code: str
    words: str
    content_type: str = MULTIPART
    headers: dict[str, str | bytes] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


def upload(content: Callable[[], bytes], filename: str = "scan.ply") -> Callable[[], bytes]:
    return lambda: form(cloud(content(), filename))


def with_params(text: str) -> Callable[[], bytes]:
    return lambda: form(cloud(binary_ply(sphere_points())), params(text))


CASES = [
    # --- PLY structure
    Case("truncated binary PLY", upload(lambda: binary_ply(sphere_points())[:3000]),
         422, "invalid_point_cloud", "truncated"),
    Case("header vertex count larger than the body (ASCII)",
         upload(lambda: ascii_ply(points(), count=600)),
         422, "invalid_point_cloud", "declares 600 vertices but the data holds only 512"),
    Case("header vertex count smaller than the body (binary)",
         upload(lambda: binary_ply(sphere_points()).replace(b"vertex 512", b"vertex 500")),
         422, "invalid_point_cloud", "more bytes follow the last element"),
    Case("header vertex count smaller than the body (ASCII)",
         upload(lambda: ascii_ply(points(), count=500)),
         422, "invalid_point_cloud", "more values follow the last element"),
    Case("x declared as a list (property list uchar int x)",
         upload(lambda: ascii_ply(points()).replace(b"property float x",
                                                     b"property list uchar int x")),
         422, "invalid_point_cloud", "x/y/z as lists"),
    Case("property of type string",
         upload(lambda: ascii_ply(points()).replace(b"property float x", b"property string x")),
         422, "invalid_point_cloud", "unknown type 'string'"),
    Case("absurd vertex count 10^15 (binary)",
         upload(lambda: binary_ply(sphere_points()).replace(b"vertex 512",
                                                            b"vertex 1000000000000000")),
         422, "invalid_point_cloud", "declares 1000000000000000 vertices"),
    Case("absurd vertex count 10^15 (ASCII)",
         upload(lambda: ascii_ply(points(), count=10**15)),
         422, "invalid_point_cloud", "declares 1000000000000000 vertices but the data holds"),
    Case("unknown PLY format", upload(lambda: binary_ply(sphere_points()).replace(
        b"binary_little_endian", b"binary_middle_endian")),
         422, "invalid_point_cloud", "unknown PLY format"),
    Case("property declared twice", upload(lambda: ascii_ply(points(), props="xyzx")),
         422, "invalid_point_cloud", "declares property 'x' twice"),
    Case("header of 1.1 MiB of comments", upload(huge_header),
         422, "invalid_point_cloud", "no 'end_header' line"),
    Case("header without end_header",
         upload(lambda: b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n0\n1\n2\n"),
         422, "invalid_point_cloud", "no 'end_header' line"),
    Case("list bomb: a face list of 4 G entries", upload(list_bomb),
         422, "invalid_point_cloud", "list of 4294967295 values"),
    Case("list bomb: 10^9 faces declared", upload(face_count_bomb),
         422, "invalid_point_cloud", "declares 1000000000 faces"),
    Case("ASCII value that is not a number", upload(lambda: ascii_with("1.2.3")),
         422, "invalid_point_cloud", "not a number"),
    # --- values
    Case("NaN coordinate (ASCII)", upload(lambda: ascii_with("nan")),
         422, "invalid_point_cloud", "NaN or infinite coordinates (first at index 7)"),
    Case("infinite coordinate (ASCII)", upload(lambda: ascii_with("inf")),
         422, "invalid_point_cloud", "NaN or infinite coordinates (first at index 7)"),
    Case("NaN coordinate (binary)", upload(lambda: binary_with(np.nan)),
         422, "invalid_point_cloud", "NaN or infinite coordinates (first at index 7)"),
    Case("infinite coordinate (binary)", upload(lambda: binary_with(-np.inf)),
         422, "invalid_point_cloud", "NaN or infinite coordinates (first at index 7)"),
    Case("1000 copies of one point",
         upload(lambda: binary_ply(np.tile([[0.5, 0.25, 1.0]], (1000, 1)))),
         422, "invalid_point_cloud", "only 1 distinct points"),
    Case("duplicates of 10 points only",
         upload(lambda: binary_ply(np.repeat(sphere_points()[:10], 50, axis=0))),
         422, "invalid_point_cloud", "only 10 distinct points"),
    Case("collinear points", upload(lambda: binary_ply(collinear())),
         422, "invalid_point_cloud", "all points lie on one line"),
    # --- other content
    Case("binary garbage named .ply", upload(garbage),
         422, "invalid_point_cloud", "not a PLY file"),
    Case("binary garbage with no name", upload(garbage, filename="upload"),
         415, "unsupported_file_type", "this content cannot be read"),
    Case("PNG named .ply", upload(png_bytes), 415, "unsupported_file_type", "PNG image"),
    Case("ZIP named .ply", upload(zip_bytes), 415, "unsupported_file_type", "ZIP archive"),
    Case("PDF named .ply", upload(lambda: b"%PDF-1.7\n" + garbage(500)),
         415, "unsupported_file_type", "PDF document"),
    Case("gzip named .ply", upload(lambda: gzip.compress(binary_ply(sphere_points()))),
         415, "unsupported_file_type", "gzip-compressed"),
    Case("unknown suffix with binary content", upload(garbage, filename="model.fbx"),
         415, "unsupported_file_type", "'.fbx' files"),
    Case("NPY with object dtype (pickle)",
         upload(lambda: npy(np.array([{"x": 1}, [2], "three"], dtype=object)), "scan.npy"),
         422, "invalid_point_cloud", "Python objects"),
    Case("NPY of shape (N, 2)", upload(lambda: npy(points()[:, :2]), "scan.npy"),
         422, "invalid_point_cloud", "shape 512x2"),
    Case("NPY of complex numbers", upload(lambda: npy(points().astype(complex)), "scan.npy"),
         422, "invalid_point_cloud", "not real numbers"),
    Case("NPY cut in half", upload(truncated_npy, "scan.npy"),
         422, "invalid_point_cloud", "the file looks truncated"),
    Case("text with 2 columns", upload(lambda: text_rows(points()[:, :2]), "scan.xyz"),
         422, "invalid_point_cloud", "shape 512x2"),
    Case("text with a word among numbers",
         upload(lambda: text_rows(points()) + b"1.0 two 3.0\n", "scan.xyz"),
         422, "invalid_point_cloud", "line 513 holds 'two'"),
    Case("text with a wrong declared count",
         upload(lambda: b"9999\n" + text_rows(points()), "scan.pts"),
         422, "invalid_point_cloud", "declares 9999 points"),
    Case("text with a 100 KiB line",
         upload(lambda: text_rows(points()) + b"1 " * 51200 + b"\n", "scan.xyz"),
         422, "invalid_point_cloud", "line 513 has 51200 values where the lines before have 3"),
    Case("text of one 200 KiB line without a line break",
         upload(lambda: b"1 " * 102400, "scan.xyz"),
         422, "invalid_point_cloud", "a line longer than"),
    Case("UTF-16 text", upload(lambda: "\ufeff1 2 3\n4 5 6\n".encode("utf-16"), "scan.xyz"),
         422, "invalid_point_cloud", "UTF-16"),
    Case("LAS header followed by garbage", upload(las_garbage, "scan.las"),
         422, "invalid_point_cloud", "cannot read the LAS/LAZ file"),
    Case("empty file", upload(lambda: b""), 422, "invalid_point_cloud", "empty"),
    Case("whitespace only", upload(lambda: b" \n\t\n" * 10, "scan.xyz"),
         422, "invalid_point_cloud", "empty"),
    Case("ground truth that is garbage",
         lambda: form(cloud(binary_ply(sphere_points())), ("ground_truth", "gt.ply", b"ply\nx")),
         422, "invalid_ground_truth", "ground truth"),
    # --- params
    Case("params that are not JSON", with_params("{preset: fast"),
         400, "malformed_params", "not valid JSON"),
    Case("params that are a JSON array", with_params("[1, 2, 3]"),
         422, "invalid_params", "invalid values"),
    Case("params with an unknown field", with_params('{"preset": "fast", "colour": "red"}'),
         422, "invalid_params", "invalid values"),
    Case("params with a huge number", with_params('{"seed": 1e400}'),
         422, "invalid_params", "invalid values"),
    Case("params with a huge integer", with_params('{"resolution": ' + "9" * 400 + "}"),
         422, "invalid_params", "invalid values"),
    Case("params with a negative seed", with_params('{"seed": -5}'),
         422, "invalid_params", "invalid values"),
    Case("params with wrong types", with_params('{"preset": 5, "formats": "glb"}'),
         422, "invalid_params", "invalid values"),
    Case("params of 70 KiB", with_params('{"preset": "' + "f" * 70 * 1024 + '"}'),
         413, "payload_too_large", "params"),
    Case("params nested 30000 deep", with_params("[" * 30000 + "]" * 30000),
         400, "malformed_params", "nested too deeply"),
    Case("params nested deep inside an object",
         with_params('{"preset": "fast", "seed": ' + "[" * 20000 + "]" * 20000 + "}"),
         400, "malformed_params", "nested too deeply"),
    # --- the request itself
    Case("body over max_upload_bytes", upload(lambda: garbage(SMALL_LIMIT + 1024)),
         413, "payload_too_large", "exceeds the limit", settings={"max_upload_bytes": SMALL_LIMIT}),
    Case("missing file part", lambda: form(params("{}")), 400, "missing_file", "'file' part"),
    Case("no parts at all", lambda: form(), 400, "missing_file", "'file' part"),
    Case("two file parts",
         lambda: form(cloud(binary_ply(sphere_points())), cloud(binary_ply(sphere_points()))),
         400, "duplicate_part", "appears twice"),
    Case("unexpected part name",
         lambda: form(cloud(binary_ply(sphere_points())), ("script", "run.sh", b"rm -rf /")),
         400, "unexpected_part", "unexpected form part 'script'"),
    Case("non-multipart content type", lambda: json.dumps({"file": "x"}).encode(),
         415, "not_multipart", "multipart/form-data", content_type="application/json"),
    Case("multipart without a boundary", upload(lambda: binary_ply(sphere_points())),
         400, "malformed_multipart", "without a boundary", content_type="multipart/form-data"),
    Case("malformed multipart", lambda: b"this is not a multipart body at all\r\n" * 20,
         400, "malformed_multipart", "malformed"),
    Case("multipart cut off before its last boundary",
         lambda: form(cloud(binary_ply(sphere_points())), close=False)[:-200],
         400, "missing_file", "'file' part"),
    Case("Idempotency-Key of 300 characters", upload(lambda: binary_ply(sphere_points())),
         400, "bad_idempotency_key", "Idempotency-Key", headers={"Idempotency-Key": "k" * 300}),
    Case("non-ASCII Idempotency-Key", upload(lambda: binary_ply(sphere_points())),
         400, "bad_idempotency_key", "Idempotency-Key",
         headers={"Idempotency-Key": "cl\u00e9 \u2713".encode()}),
]


# --- the checks ------------------------------------------------------------------------------


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[[dict[str, Any]], TestClient]]:
    clients: list[TestClient] = []

    def make(overrides: dict[str, Any]) -> TestClient:
        client = TestClient(create_app(Settings(**{**settings.model_dump(), **overrides})))
        clients.append(client.__enter__())
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def traces(client: TestClient, settings: Settings, redis_client: redis.Redis) -> list[str]:
    """What a refused request left behind (nothing, when all is well)."""
    left = []
    listed = client.get("/reconstructions", headers={"Authorization": f"Bearer {API_KEY}"})
    if listed.json()["items"]:
        left.append(f"jobs listed: {[job['id'] for job in listed.json()['items']]}")
    if redis_client.llen(settings.celery_queue):
        left.append(f"{redis_client.llen(settings.celery_queue)} messages queued")
    objects = settings.objects_dir
    if objects.exists() and any(objects.rglob("*")):
        left.append(f"storage holds {sorted(str(p) for p in objects.rglob('*'))[:5]}")
    temp = upload_temp_root(settings)
    if temp.exists() and any(temp.iterdir()):
        left.append(f"upload folder holds {sorted(p.name for p in temp.iterdir())}")
    return left


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_upload_is_refused_cleanly(
    case: Case,
    make_client: Callable[[dict[str, Any]], TestClient],
    settings: Settings,
    redis_client: redis.Redis,
    request: pytest.FixtureRequest,
) -> None:
    client = make_client(case.settings)
    used = client.app.state.context.settings  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": case.content_type,
               **case.headers}
    answer = client.post("/reconstructions", content=case.body(), headers=headers)
    problems = []
    try:
        error = answer.json().get("error") or {}
    except ValueError:
        error = {}
    if answer.status_code != case.status:
        problems.append(f"status {answer.status_code}, expected {case.status}: {answer.text[:300]}")
    if set(error) != {"code", "message", "detail"}:
        problems.append(f"error body {answer.text[:300]}")
    elif error["code"] != case.code:
        problems.append(f"code {error['code']!r}, expected {case.code!r}")
    elif case.words not in error["message"]:
        problems.append(f"message {error['message']!r} does not say {case.words!r}")
    problems += traces(client, used, redis_client)
    record_scenario(
        GROUP,
        case.name,
        {"status": answer.status_code, "code": error.get("code"), "expected": case.status},
        passed=not problems and answer.status_code < 500,
        test=request.node.nodeid,
    )
    assert not problems, problems


def test_there_are_at_least_40_hostile_cases() -> None:
    assert len(CASES) >= 40


def test_a_path_traversal_filename_is_never_used_as_a_path(
    client: TestClient, settings: Settings, auth_headers: dict[str, str], tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    name = "../../etc/passwd.ply"
    body = form(cloud(binary_ply(sphere_points()), name))
    headers = {**auth_headers, "Content-Type": MULTIPART}
    answer = client.post("/reconstructions", content=body, headers=headers)
    temp = upload_temp_root(settings)
    escaped = [path for path in (temp.parent.parent / "etc" / "passwd.ply",
                                 tmp_path / "etc" / "passwd.ply") if path.exists()]
    job = answer.json()
    record = client.app.state.context.job_store.get(job["id"])  # type: ignore[attr-defined]
    passed = (answer.status_code == 202 and not escaped and record is not None
              and record.input_key.endswith(f"/{job['id']}/input.ply")
              and record.input_filename == name)
    stored = record.input_key if record else None
    record_scenario(GROUP, "file name with path traversal (../../etc/passwd.ply)",
                    {"status": answer.status_code, "stored_as": stored},
                    passed=passed, test=request.node.nodeid)
    assert passed, (answer.text, escaped)
    assert not temp.exists() or not any(temp.iterdir())


@pytest.fixture
def http_server(settings: Settings) -> Iterator[LiveServer]:
    """uvicorn serving the app on loopback: headers go through a real HTTP parser."""
    served = Settings(**{**settings.model_dump(), "max_upload_bytes": SMALL_LIMIT})
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(served), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, SERVER_START_TIMEOUT_S, "uvicorn", alive=thread.is_alive)
    try:
        yield LiveServer("127.0.0.1", port, served)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def _raw_answer(server: LiveServer, head: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    return answer


@pytest.mark.parametrize("where", ["a custom header", "the Authorization header"])
def test_a_64_kib_http_header_is_not_a_server_error(
    http_server: LiveServer, where: str, request: pytest.FixtureRequest
) -> None:
    value = "a" * 64 * 1024
    line = f"X-Padding: {value}\r\nAuthorization: Bearer {API_KEY}" \
        if where == "a custom header" else f"Authorization: Bearer {value}"
    head = (
        f"POST /reconstructions HTTP/1.1\r\nHost: {http_server.host}:{http_server.port}\r\n"
        f"{line}\r\nContent-Type: {MULTIPART}\r\nContent-Length: 0\r\n\r\n"
    ).encode()
    answer = _raw_answer(http_server, head)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else None
    passed = status is None or status < 500  # refused, answered or connection closed: not 5xx
    record_scenario(GROUP, f"64 KiB HTTP header ({where})",
                    {"status": status, "closed_without_answer": status is None},
                    passed=passed, test=request.node.nodeid)
    assert passed, answer[:300]
