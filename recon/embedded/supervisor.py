"""A small process supervisor for the embedded default (`recon serve`).

Each child runs in its own session (so a terminal's Ctrl-C reaches only the supervisor, which
then stops the children in order) and, on Linux, is asked by the kernel to terminate if the
supervisor itself dies. A child that exits unexpectedly is restarted with exponential backoff.
Stopping sends each child its own polite signal, waits, and finally kills the child's whole
process group, so grandchildren (a Celery worker's pool processes) never outlive it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
"""prctl(2) option: signal delivered to a child when its parent thread exits."""


@dataclass(frozen=True)
class RestartPolicy:
    """How a crashed child is restarted."""

    initial_backoff_s: float = 1.0
    """Delay before the first restart."""
    max_backoff_s: float = 30.0
    """Longest delay between restarts."""
    stable_after_s: float = 60.0
    """A child that ran this long is healthy again: its backoff starts over."""

    def delay(self, failures: int) -> float:
        """Seconds to wait before restart number `failures` (1-based)."""
        return min(self.initial_backoff_s * 2 ** max(failures - 1, 0), self.max_backoff_s)


@dataclass
class Child:
    """One supervised command line."""

    name: str
    argv: list[str]
    env: dict[str, str]
    stop_signal: int = signal.SIGTERM
    """Signal asking the child to stop (its own clean-shutdown signal)."""
    stop_timeout_s: float = 10.0
    """How long to wait after `stop_signal` before killing the process group."""
    restart: bool = True
    process: subprocess.Popen[bytes] | None = None
    failures: int = 0
    started_at: float = 0.0
    restart_at: float | None = None
    history: list[int] = field(default_factory=list)
    """Pids of every process started for this child (for tests and logs)."""


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: terminate when the supervisor dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    """Start, watch, restart and stop a fixed list of children."""

    def __init__(self, children: list[Child], policy: RestartPolicy | None = None) -> None:
        self.children = children
        self.policy = policy or RestartPolicy()

    def start(self, child: Child) -> None:
        """Start `child` now in a new session."""
        child.process = subprocess.Popen(  # noqa: S603 - argv is built by this program
            child.argv, env=child.env, start_new_session=True, preexec_fn=_die_with_parent
        )
        child.started_at = time.monotonic()
        child.restart_at = None
        child.history.append(child.process.pid)
        logger.info("started %s (pid %d)", child.name, child.process.pid)

    def poll(self) -> None:
        """Notice exited children and restart them when their backoff has passed."""
        now = time.monotonic()
        for child in self.children:
            if child.process is None or child.restart_at is not None:
                if child.restart_at is not None and now >= child.restart_at:
                    self.start(child)
                continue
            code = child.process.poll()
            if code is None:
                continue
            self._kill_group(child)
            if not child.restart:
                continue
            ran = now - child.started_at
            child.failures = 1 if ran >= self.policy.stable_after_s else child.failures + 1
            delay = self.policy.delay(child.failures)
            child.restart_at = now + delay
            logger.warning(
                "%s (pid %d) exited with %s after %.1f s; restarting in %.1f s",
                child.name, child.process.pid, code, ran, delay,
            )

    def stop_all(self) -> None:
        """Stop every child, last started first; kill what does not stop in time."""
        for child in reversed(self.children):
            self.stop(child)

    def stop(self, child: Child) -> None:
        """Stop one child and everything in its process group."""
        child.restart = False
        child.restart_at = None
        process = child.process
        if process is None:
            return
        if process.poll() is None:
            logger.info("stopping %s (pid %d)", child.name, process.pid)
            self._signal(process.pid, child.stop_signal)
            try:
                process.wait(timeout=child.stop_timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning("%s did not stop in %.0f s; killing it", child.name,
                               child.stop_timeout_s)
        self._kill_group(child)
        process.wait()

    @staticmethod
    def _signal(pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    @staticmethod
    def _kill_group(child: Child) -> None:
        """SIGKILL whatever is left in the child's process group (its pgid is its pid)."""
        if child.process is None:
            return
        try:
            os.killpg(child.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
