"""One progress display for the command line: a bar on a terminal, plain lines in a log.

A terminal gets a tqdm bar on stderr that redraws in place. Anything else (a pipeline's log, a
CI job, a pipe) gets plain lines: where each stage starts and ends, and at most one every
`interval_s` seconds in between, so a log of a long run stays a few readable lines and never
holds carriage returns. `recon reconstruct` and `recon submit --wait` both draw through
`open_progress`.
"""

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TextIO

DEFAULT_INTERVAL_S = 5.0
"""Shortest time between two plain lines of the same stage."""
STAGE_WIDTH = 8
"""Characters the stage name is padded to, so lines and bars line up."""
FALLBACK_SIZE = (80, 24)
"""Columns and rows assumed on a terminal that reports no size (some pseudo-terminals report
0 x 0, which tqdm would take literally and draw nothing)."""


@dataclass(frozen=True)
class ProgressState:
    """What a display shows: the stage, the share of it done, and the facts known about it.

    `fraction` is what the bar fills (0-1); `step`/`total` are shown when `total` is set.
    """

    stage: str
    fraction: float
    step: int = 0
    total: int = 0
    loss: float | None = None
    eta_s: float | None = None


def format_seconds(seconds: float) -> str:
    """`42 s`, `3 min 05 s` or `1 h 02 min`: short enough for a log line."""
    whole = max(0, int(round(seconds)))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def describe(state: ProgressState) -> str:
    """The facts of `state` beyond its stage and percentage: step, loss, ETA."""
    parts = []
    if state.total:
        parts.append(f"step {state.step}/{state.total}")
    if state.loss is not None:
        parts.append(f"loss {state.loss:.5g}")
    if state.eta_s is not None:
        parts.append(f"eta {format_seconds(state.eta_s)}")
    return "  ".join(parts)


def _percent(fraction: float) -> float:
    return 100.0 * min(max(fraction, 0.0), 1.0)


class ProgressDisplay(Protocol):
    """Shows a sequence of states, then closes (also as a context manager)."""

    def update(self, state: ProgressState) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> "ProgressDisplay": ...

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None: ...


class _Closing:
    """Context-manager behaviour shared by the displays: close on leaving the block."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class LogProgress(_Closing):
    """Plain lines for a log: each stage's first and last state, and at most one line every
    `interval_s` in between.

    `clock` is injectable so the throttling can be shown without sleeping.
    """

    def __init__(self, stream: TextIO, *, interval_s: float = DEFAULT_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.interval_s = interval_s
        self.clock = clock
        self.started = clock()
        self.last_written_at: float | None = None
        self.last_written: ProgressState | None = None
        self.latest: ProgressState | None = None

    def update(self, state: ProgressState) -> None:
        now, previous = self.clock(), self.latest
        self.latest = state
        if previous is not None and previous.stage != state.stage:
            if previous != self.last_written:  # how far the stage got before it ended
                self._write(previous, now)
            self._write(state, now)
        elif self.last_written_at is None or now - self.last_written_at >= self.interval_s:
            self._write(state, now)

    def close(self) -> None:
        if self.latest is not None and self.latest != self.last_written:
            self._write(self.latest, self.clock())
        self.stream.flush()

    def _write(self, state: ProgressState, now: float) -> None:
        facts = describe(state)
        line = f"{state.stage:<{STAGE_WIDTH}} {_percent(state.fraction):5.1f}%"
        line += f"  {facts}" if facts else ""
        line += f"  [{format_seconds(now - self.started)}]"
        self.stream.write(line + "\n")
        self.stream.flush()
        self.last_written, self.last_written_at = state, now


class TerminalProgress(_Closing):
    """A tqdm bar per stage, redrawn in place: percent done, then step, loss and ETA.

    A finished stage's bar stays on screen as one line. tqdm limits how often it redraws, so a
    caller may update on every training step.
    """

    BAR_FORMAT = "{desc} {percentage:5.1f}%|{bar}| [{elapsed}]{postfix}"

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar: Any = None
        self.stage: str | None = None

    def update(self, state: ProgressState) -> None:
        if self.bar is None or state.stage != self.stage:
            self.close()
            self.bar = self._new_bar(state.stage)
            self.stage = state.stage
        self.bar.set_postfix_str(describe(state), refresh=False)
        self.bar.update(_percent(state.fraction) - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _new_bar(self, stage: str) -> Any:
        from tqdm import tqdm

        sized = terminal_columns(self.stream) > 0
        columns, rows = (None, None) if sized else FALLBACK_SIZE
        return tqdm(total=100.0, file=self.stream, leave=True, dynamic_ncols=sized,
                    ncols=columns, nrows=rows, desc=f"{stage:<{STAGE_WIDTH}}",
                    bar_format=self.BAR_FORMAT)


def terminal_columns(stream: TextIO) -> int:
    """The width the terminal reports for `stream`; 0 when it reports none."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is an open terminal (a closed or detached stream is not)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def open_progress(stream: TextIO | None = None, *,
                  interval_s: float = DEFAULT_INTERVAL_S) -> ProgressDisplay:
    """The display for `stream` (stderr by default): a bar on a terminal, else plain lines."""
    target = sys.stderr if stream is None else stream
    if is_terminal(target):
        return TerminalProgress(target)
    return LogProgress(target, interval_s=interval_s)
