"""The shared progress display: a few plain lines in a log, a redrawn bar on a terminal."""

from __future__ import annotations

import io
import os
import select
from collections.abc import Iterator

import pytest

from recon.progress import (
    LogProgress,
    ProgressState,
    TerminalProgress,
    format_seconds,
    open_progress,
)


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def a_long_run(clock: FakeClock, steps: int = 2000, seconds: float = 120.0) -> Iterator[
        ProgressState]:
    """Training updates spread over `seconds`, then one meshing update."""
    for step in range(1, steps + 1):
        clock.now = seconds * step / steps
        yield ProgressState("train", step / steps, step, steps, loss=1.0 / step, eta_s=120 - step)
    yield ProgressState("mesh", 1.0)


def test_a_log_gets_a_line_per_stage_and_every_interval_never_a_carriage_return() -> None:
    clock, out = FakeClock(), io.StringIO()
    with LogProgress(out, interval_s=5.0, clock=clock) as display:
        for state in a_long_run(clock):
            display.update(state)
    text = out.getvalue()
    lines = text.splitlines()
    assert "\r" not in text
    assert 120 / 5 <= len(lines) <= 120 / 5 + 3  # one per 5 s of training, plus mesh
    assert lines[0].startswith("train") and "step 1/2000" in lines[0]
    assert lines[-1].startswith("mesh") and "100.0%" in lines[-1]
    assert "[2 min 00 s]" in lines[-1]


def test_the_last_state_is_written_when_the_display_closes() -> None:
    clock, out = FakeClock(), io.StringIO()
    display = LogProgress(out, interval_s=5.0, clock=clock)
    display.update(ProgressState("train", 0.1, 1, 10))
    clock.now = 1.0
    display.update(ProgressState("train", 1.0, 10, 10))
    display.close()
    assert out.getvalue().splitlines()[-1].startswith("train    100.0%  step 10/10")


def test_a_pipe_gets_plain_lines_a_terminal_a_bar() -> None:
    assert isinstance(open_progress(io.StringIO()), LogProgress)
    leader, follower = os.openpty()
    with os.fdopen(follower, "w") as terminal:
        display = open_progress(terminal)
        assert isinstance(display, TerminalProgress)
        with display:
            for step in range(1, 11):
                display.update(ProgressState("train", step / 10, step, 10, loss=0.5))
            display.update(ProgressState("mesh", 1.0))
    drawn = b""
    while select.select([leader], [], [], 0.2)[0]:
        try:
            drawn += os.read(leader, 65536)
        except OSError:
            break
    os.close(leader)
    text = drawn.decode()
    assert "\r" in text and "train" in text and "mesh" in text and "step 10/10" in text


@pytest.mark.parametrize(("seconds", "text"), [
    (0.4, "0 s"), (42, "42 s"), (185, "3 min 05 s"), (3720, "1 h 02 min"), (-3, "0 s")])
def test_durations_are_short(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
