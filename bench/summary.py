"""Group result rows by configuration and take medians over seeds.

A group is every successful row with the same (regime, method, preset, budget, iterations,
resolution, shape): the seeds of one configuration. The report, the plot and the target checks all
read these groups, so they agree with each other.
"""

import statistics
from dataclasses import dataclass
from typing import Any

from bench.data import DEFAULT_SHAPE
from bench.results import RunRow, case_name

REGIME_ORDER = ("sparse", "sparse_noisy", "dense")
METHOD_ORDER = ("nap", "neural-pull", "igr", "poisson", "poisson-normals")
PRESET_ORDER = ("fast", "balanced", "paper", "default")
METRIC_KEYS = ("cd1_x100", "cd2_x100", "nc", "fscore_0.01")
"""Ground-truth metrics summarised per group."""


@dataclass
class Group:
    """The seeds of one configuration and their medians."""

    regime: str
    method: str
    preset: str
    time_budget_s: float | None
    max_iterations: int | None
    resolution: int | None
    shape: str
    rows: list[RunRow]

    @property
    def case(self) -> str:
        """The regime, prefixed by the shape unless it is the bunny."""
        return case_name(self.shape, self.regime)

    @property
    def seeds(self) -> int:
        return len(self.rows)

    def median(self, key: str) -> float | None:
        """Median of a ground-truth metric (``cd1_x100``...) or of a row field (``wall_s``...)."""
        values = [_value(row, key) for row in self.rows]
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    def watertight(self) -> tuple[int, int]:
        """(watertight meshes, meshes)."""
        return sum(bool(row.mesh.get("watertight")) for row in self.rows), len(self.rows)

    def stop_reasons(self) -> str:
        return ", ".join(sorted({str(row.stop_reason) for row in self.rows}))


def _value(row: RunRow, key: str) -> Any:
    if key in METRIC_KEYS or key in row.ground_truth:
        return row.ground_truth.get(key)
    if key in row.run and not hasattr(row, key):
        return row.run.get(key)
    return getattr(row, key, None)


def _order(value: str, order: tuple[str, ...]) -> int:
    return order.index(value) if value in order else len(order)


def group_rows(rows: list[RunRow]) -> list[Group]:
    """Successful rows grouped by configuration, sorted regime, method, preset, budget."""
    groups: dict[tuple, Group] = {}
    for row in rows:
        if row.status != "ok":
            continue
        s = row.spec
        key = (s.regime, s.method, s.preset, s.time_budget_s, s.max_iterations, s.resolution,
               s.shape)
        groups.setdefault(key, Group(*key, rows=[])).rows.append(row)
    return sorted(
        groups.values(),
        key=lambda g: (
            g.shape != DEFAULT_SHAPE, g.shape,
            _order(g.regime, REGIME_ORDER), _order(g.method, METHOD_ORDER),
            _order(g.preset, PRESET_ORDER), g.time_budget_s or 0.0, g.max_iterations or 0,
            g.resolution or 0,
        ),
    )


def find_group(groups: list[Group], regime: str, method: str, preset: str,
               **fields: Any) -> Group | None:
    """The first group matching regime, method, preset and any extra spec fields given."""
    for group in groups:
        if (group.regime, group.method, group.preset) != (regime, method, preset):
            continue
        if all(getattr(group, name) == value for name, value in fields.items()):
            return group
    return None
