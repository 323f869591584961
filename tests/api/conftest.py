"""Service-test fixtures: a real uvicorn server in a thread, for tests that need raw sockets."""

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from recon.api.app import create_app
from recon.infra.settings import Settings
from tests.conftest import free_port, wait_until

SERVER_START_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class LiveServer:
    """A running API on loopback."""

    host: str
    port: int
    settings: Settings

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@pytest.fixture
def small_upload_settings(settings: Settings) -> Settings:
    """Settings with a 64 KiB body limit."""
    return Settings(**{**settings.model_dump(), "max_upload_bytes": 64 * 1024})


@pytest.fixture
def live_server(small_upload_settings: Settings) -> Iterator[LiveServer]:
    """uvicorn serving `create_app(small_upload_settings)` in a background thread."""
    port = free_port()
    config = uvicorn.Config(
        create_app(small_upload_settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, SERVER_START_TIMEOUT_S, "uvicorn", alive=thread.is_alive)
    try:
        yield LiveServer("127.0.0.1", port, small_upload_settings)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
