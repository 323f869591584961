"""Collecting a cloud from blocks of rows: validation facts over every row, storage for the kept.

A reader hands each block of rows to a `CloudAccumulator`, which counts NaN coordinates and
folds the columns' statistics over all rows, but stores only the rows it keeps: all of them up
to `max_points`, else a seeded uniform subset chosen from the total count before the first row
arrives. Memory therefore follows the kept points, whatever the size of the file.

When a reader cannot tell the total in advance (text, LAS), the accumulator keeps rows until
`max_points` is passed, then only counts (`overflowed`); the caller reads the file a second
time with the count now known, so the subset is the same one a single pass would have chosen.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recon.engine.formats.columns import Layout, Resolved, TripleStats

#: Rows per step of the subsample plan (the plan is the same whatever the readers' blocks).
PLAN_ROWS = 1 << 20

_INITIAL_CAPACITY = 1 << 16


def subsample_rows(total: int, keep: int, seed: int) -> np.ndarray:
    """A uniform random subset of `keep` of `total` row indices, sorted, for a seed.

    Drawn plan-block by plan-block (how many from each block, hypergeometric, then which), so
    memory follows `keep`, not `total`.
    """
    rng = np.random.default_rng(seed)
    chosen, rows_left, keep_left = [], total, keep
    for start in range(0, total, PLAN_ROWS):
        size = min(PLAN_ROWS, total - start)
        rest = rows_left - size
        take = int(rng.hypergeometric(size, rest, keep_left)) if rest and keep_left else keep_left
        chosen.append(start + np.sort(rng.choice(size, take, replace=False)))
        rows_left, keep_left = rest, keep_left - take
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class Gathered:
    """Everything a reader saw: the kept rows and the facts about all rows."""

    rows: int
    points: np.ndarray
    resolved: Resolved
    bad_points: int
    first_bad_point: int


class CloudAccumulator:
    """Validation facts over every row and storage for the kept ones (see the module docstring).

    Call `begin` once the layout is known (with the total when the format declares it), then
    `add` for each block in order, then `gather`.
    """

    def __init__(self, *, max_points: int, seed: int, total: int | None = None) -> None:
        self.max_points = max_points
        self.seed = seed
        self.total = total
        self.rows = 0
        self.overflowed = False
        self.layout: Layout | None = None
        self._stats: list[TripleStats] = []
        self._plan: np.ndarray | None = None
        self._points = np.zeros((0, 3))
        self._triples: list[np.ndarray] = []
        self._stored = 0
        self._bad_points = 0
        self._first_bad_point = -1

    def begin(self, layout: Layout, total: int | None = None) -> None:
        """Start with this layout; `total` rows when the file declares them (trusted: the reader
        checks the count against the data before the first block)."""
        self.layout = layout
        self._stats = [TripleStats(role) for role in layout.roles]
        if self.total is None:
            self.total = total
        if self.total is not None and self.total > self.max_points:
            self._plan = subsample_rows(self.total, self.max_points, self.seed)

    def add(self, points: np.ndarray, triples: list[np.ndarray]) -> None:
        """Fold in the next block: (rows, 3) float64 points and the layout's raw triples."""
        start, count = self.rows, len(points)
        bad = ~np.isfinite(points).all(axis=1)
        if bad.any():
            if not self._bad_points:
                self._first_bad_point = start + int(np.argmax(bad))
            self._bad_points += int(bad.sum())
        for stats, values in zip(self._stats, triples, strict=True):
            stats.update(values, start)
        self.rows += count
        if self._plan is not None:
            low, high = np.searchsorted(self._plan, [start, start + count])
            keep = self._plan[low:high] - start
            self._store(points[keep], [values[keep] for values in triples])
        elif self.total is None and self.rows > self.max_points:
            self.overflowed = True  # counted from now on; the caller reads the file again
            self._points, self._triples = np.zeros((0, 3)), []
        elif not self.overflowed:
            self._store(points, triples)

    def _store(self, points: np.ndarray, triples: list[np.ndarray]) -> None:
        end = self._stored + len(points)
        if end > len(self._points):
            capacity = self._capacity(end)
            self._points = _grown(self._points, capacity, points.dtype)
            if not self._triples:
                self._triples = [np.zeros((0, 3), dtype=t.dtype) for t in triples]
            self._triples = [_grown(t, capacity, t.dtype) for t in self._triples]
        self._points[self._stored:end] = points
        for stored, values in zip(self._triples, triples, strict=True):
            stored[self._stored:end] = values
        self._stored = end

    def _capacity(self, needed: int) -> int:
        if self._plan is not None:
            return len(self._plan)
        if self.total is not None:
            return max(needed, self.total)
        return min(max(needed, 2 * len(self._points), _INITIAL_CAPACITY), self.max_points)

    def gather(self) -> Gathered:
        """The kept rows with their normals and colours resolved; raises what the layout refuses."""
        if self.layout is None:
            raise ValueError("begin() was never called")
        kept = self._stored
        triples = [t[:kept] for t in self._triples] or \
            [np.zeros((0, 3)) for _ in self._stats]
        resolved = self.layout.resolve(triples, self._stats)
        return Gathered(self.rows, self._points[:kept], resolved, self._bad_points,
                        self._first_bad_point)


def _grown(array: np.ndarray, capacity: int, dtype: np.dtype) -> np.ndarray:
    grown = np.empty((capacity, 3), dtype=np.result_type(array.dtype, dtype))
    grown[:len(array)] = array
    return grown
