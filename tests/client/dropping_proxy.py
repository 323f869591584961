"""A TCP proxy that loses the service's answer to the first request it carries.

It forwards that request whole, waits until the service starts answering (so the request was
handled), then closes the client's connection without passing the answer on: what a client sees
when a network or a load balancer drops a response. Later connections pass through untouched.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType

CHUNK = 65536


def _pump(source: socket.socket, target: socket.socket) -> None:
    """Copy bytes until `source` closes, then close the sending side of `target`."""
    try:
        while data := source.recv(CHUNK):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def _close(connection: socket.socket) -> None:
    try:
        connection.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed
    connection.close()


class DroppingProxy:
    """Listens on a free loopback port in front of `upstream_port`."""

    def __init__(self, upstream_port: int, drops: int = 1) -> None:
        self.upstream_port = upstream_port
        self.drops_left = drops
        self.dropped = 0
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def __enter__(self) -> DroppingProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.listener.close()
        with self.lock:
            for connection in self.sockets:
                _close(connection)

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._carry, args=(client,), daemon=True).start()

    def _carry(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        with self.lock:
            self.sockets += [client, upstream]
            drop = self.drops_left > 0
            self.drops_left -= int(drop)
        threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
        if not drop:
            _pump(upstream, client)
            return
        upstream.recv(1)  # the service has handled the request and started its answer
        with self.lock:
            self.dropped += 1
        _close(client)
        _close(upstream)
