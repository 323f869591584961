"""Result rows: one JSON object per run, appended to a JSONL file as soon as the run ends.

A row's identity (`row_key`) is the run's configuration, so an interrupted benchmark resumes by
skipping the rows already present. The report is always rebuilt from the file.
"""

import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.data import DEFAULT_SHAPE

RESULTS_FILE = "results.jsonl"
"""Name of the rows file inside the output folder."""
SPEED_FILE = "speed.json"
"""Name of the microbenchmark results file inside the output folder."""
HARDWARE_FILE = "hardware.json"
"""Name of the machine description file inside the output folder."""


@dataclass(frozen=True)
class RunSpec:
    """What one benchmark run is: the row's identity."""

    regime: str
    method: str
    preset: str
    seed: int
    time_budget_s: float | None = None
    max_iterations: int | None = None
    resolution: int | None = None
    shape: str = DEFAULT_SHAPE
    """The shape folder under the data folder (rows written before shapes existed are the
    bunny's)."""

    def key(self) -> tuple[Any, ...]:
        """Hashable identity used to skip runs that already have a row."""
        return tuple(asdict(self).values())

    def label(self) -> str:
        """Short human-readable name for progress lines."""
        extras = [f"budget={self.time_budget_s:g}s"] if self.time_budget_s else []
        extras += [f"iters={self.max_iterations}"] if self.max_iterations else []
        extras += [f"res={self.resolution}"] if self.resolution else []
        tail = f" ({', '.join(extras)})" if extras else ""
        return f"{self.case}/{self.method}/{self.preset}/seed{self.seed}{tail}"

    @property
    def case(self) -> str:
        """The regime, prefixed by the shape unless it is the bunny."""
        return case_name(self.shape, self.regime)


def case_name(shape: str, regime: str) -> str:
    """``regime`` for the bunny, ``shape/regime`` for any other shape."""
    return regime if shape == DEFAULT_SHAPE else f"{shape}/{regime}"


@dataclass
class RunRow:
    """A finished run: its spec, headline numbers and the full metrics dictionaries."""

    spec: RunSpec
    status: str
    """"ok" or "error"."""
    error: str | None = None
    wall_s: float | None = None
    """Seconds of the reconstruction itself, ground-truth evaluation excluded."""
    iterations: int | None = None
    iterations_per_second: float | None = None
    stop_reason: str | None = None
    ground_truth: dict[str, Any] = field(default_factory=dict)
    mesh: dict[str, Any] = field(default_factory=dict)
    run: dict[str, Any] = field(default_factory=dict)
    loss_curve: list[list[float]] = field(default_factory=list)
    """[[elapsed_s, loss], ...] from the training progress callback (thinned)."""
    load_average: list[float] = field(default_factory=list)
    """os.getloadavg() when the run ended: how busy the shared cores were."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict (the spec flattened into the top level)."""
        data = asdict(self)
        data.update(data.pop("spec"))
        return data


def row_from_json(data: dict[str, Any]) -> RunRow:
    """Inverse of `RunRow.to_json`."""
    spec_fields = RunSpec.__dataclass_fields__
    spec = RunSpec(**{name: data[name] for name in spec_fields if name in data})
    rest = {k: v for k, v in data.items() if k not in spec_fields}
    return RunRow(spec=spec, **rest)


def append_row(path: Path, row: RunRow) -> None:
    """Append one row and flush it to disk, so a crash never loses a finished run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row.to_json(), sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_rows(path: Path) -> list[RunRow]:
    """All rows of a results file; a truncated last line (a killed run) is ignored."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rows.append(row_from_json(json.loads(line)))
        except (json.JSONDecodeError, TypeError, KeyError):
            continue
    return rows


def completed_keys(rows: Iterable[RunRow]) -> set[tuple[Any, ...]]:
    """Keys of the runs that succeeded (failed runs are retried on resume)."""
    return {row.spec.key() for row in rows if row.status == "ok"}


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write a JSON document atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON document, or None when the file does not exist."""
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))
