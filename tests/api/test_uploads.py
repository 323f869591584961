"""The body limit holds while streaming: a live server answers 413 before the body is read."""

import socket
import tempfile
import time
from pathlib import Path

from tests.api.conftest import LiveServer
from tests.conftest import API_KEY

BOUNDARY = "recon-test-boundary"
DECLARED_BYTES = 2 * 1024**3
ANSWER_TIMEOUT_S = 10.0


def _request_head(server: LiveServer, length_header: str) -> bytes:
    return (
        f"POST /reconstructions HTTP/1.1\r\n"
        f"Host: {server.host}:{server.port}\r\n"
        f"Authorization: Bearer {API_KEY}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"{length_header}\r\n"
        "\r\n"
    ).encode()


def _part_head() -> bytes:
    return (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="huge.ply"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
        "ply\nformat binary_little_endian 1.0\nelement vertex 100000000\n"
    ).encode()


def _read_answer(sock: socket.socket) -> bytes:
    sock.settimeout(ANSWER_TIMEOUT_S)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def test_declared_2gb_body_is_refused_before_reading(live_server: LiveServer) -> None:
    with socket.create_connection((live_server.host, live_server.port)) as sock:
        sock.sendall(_request_head(live_server, f"Content-Length: {DECLARED_BYTES}"))
        sock.sendall(_part_head())  # a few bytes of the 2 GB, then nothing more
        started = time.monotonic()
        answer = _read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"payload_too_large"' in answer and str(DECLARED_BYTES).encode() in answer
    assert time.monotonic() - started < ANSWER_TIMEOUT_S


def test_chunked_body_is_cut_off_once_past_the_limit(live_server: LiveServer) -> None:
    """No Content-Length: the server counts bytes and answers 413 mid-stream."""
    limit = live_server.settings.max_upload_bytes
    chunk = b"\x00" * 16384
    with socket.create_connection((live_server.host, live_server.port)) as sock:
        sock.sendall(_request_head(live_server, "Transfer-Encoding: chunked"))
        head = _part_head()
        sock.sendall(b"%x\r\n%s\r\n" % (len(head), head))
        sent = len(head)
        while sent <= limit + len(chunk):  # just past the limit; the body never ends
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        answer = _read_answer(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"payload_too_large"' in answer


def _upload_folders(*folders: Path) -> set[Path]:
    return {path for folder in folders for path in folder.glob("recon-upload-*")}


def test_nothing_is_kept_after_a_refused_upload(live_server: LiveServer) -> None:
    folders = (Path(tempfile.gettempdir()), live_server.settings.data_dir / "tmp")
    before = _upload_folders(*folders)
    test_chunked_body_is_cut_off_once_past_the_limit(live_server)
    test_declared_2gb_body_is_refused_before_reading(live_server)
    time.sleep(0.2)  # the server finishes its cleanup after answering
    assert _upload_folders(*folders) <= before
    objects = live_server.settings.objects_dir
    assert not objects.exists() or not any(p.is_file() for p in objects.rglob("*"))
