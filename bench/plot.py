"""Plot of CD1 x100 against wall time, one panel per regime (and shape), one colour per method, plus
a panel of the training loss against time for NAP and Neural-Pull on sparse_noisy.

Each configuration's median over seeds is a marker (shape by preset); configurations of one method
and preset that differ only by time budget are joined by a line, so the budget sweep reads as a
CD1-vs-time curve. Individual seeds are faint dots. Uses matplotlib's Agg backend (no display).
"""

from pathlib import Path

from bench.results import RunRow
from bench.summary import Group

METHOD_COLOURS = {
    "nap": "tab:red", "neural-pull": "tab:blue", "igr": "tab:green",
    "poisson": "tab:gray", "poisson-normals": "black",
}
PRESET_MARKERS = {"fast": "o", "balanced": "s", "paper": "^", "default": "x"}
PANEL_SIZE_IN = (5.0, 4.0)
DPI = 120
MINOR_TICKS = (2.0, 5.0)
LOSS_REGIME = "sparse_noisy"
"""Regime of the loss-curve panel (the equal-wall-time comparison)."""
LOSS_METHODS = ("nap", "neural-pull")
"""Methods whose first loss term is the same pull distance, so their curves compare."""
PRESET_LINES = {"fast": ":", "balanced": "--", "paper": "-"}
"""Labelled minor ticks per decade on the log time axis."""


def _series(groups: list[Group]) -> dict[tuple[str, str], list[Group]]:
    series: dict[tuple[str, str], list[Group]] = {}
    for g in groups:
        series.setdefault((g.method, g.preset), []).append(g)
    return series


def _panel(axis, ticker, case: str, groups: list[Group]) -> None:
    for (method, preset), members in _series(groups).items():
        colour = METHOD_COLOURS.get(method, "tab:purple")
        marker = PRESET_MARKERS.get(preset, "D")
        points = sorted((g.median("wall_s"), g.median("cd1_x100")) for g in members)
        xs, ys = zip(*points, strict=True)
        style = "-" if len(points) > 1 else "none"
        axis.plot(xs, ys, linestyle=style, marker=marker, color=colour,
                  label=f"{method} {preset}")
        for g in members:
            axis.scatter([r.wall_s for r in g.rows],
                         [r.ground_truth["cd1_x100"] for r in g.rows],
                         s=8, color=colour, alpha=0.3)
    axis.set_xscale("log")
    label = ticker.FuncFormatter(lambda value, _: f"{value:g}")
    axis.xaxis.set_major_formatter(label)
    axis.xaxis.set_minor_locator(ticker.LogLocator(subs=MINOR_TICKS))
    axis.xaxis.set_minor_formatter(label)
    axis.set_title(case)
    axis.set_xlabel("wall time, s (log)")
    axis.set_ylabel("CD1 x100 (lower is better)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=7)


def _loss_rows(groups: list[Group]) -> list[tuple[Group, RunRow]]:
    """First-seed rows of NAP and Neural-Pull on `LOSS_REGIME` of the first shape that recorded a
    loss curve."""
    picked = []
    for g in groups:
        if g.regime == LOSS_REGIME and g.shape == groups[0].shape and g.method in LOSS_METHODS:
            row = min(g.rows, key=lambda r: r.spec.seed)
            if row.loss_curve:
                picked.append((g, row))
    return picked


def _loss_panel(axis, picked: list[tuple[Group, RunRow]]) -> None:
    """Pull-loss curves against training time."""
    for g, row in picked:
        times, losses = zip(*row.loss_curve, strict=True)
        budget = f" {g.time_budget_s:g}s" if g.time_budget_s else ""
        axis.plot(times, losses, color=METHOD_COLOURS[g.method], linewidth=0.8, alpha=0.8,
                  linestyle=PRESET_LINES.get(g.preset, "-"), label=f"{g.method} {g.preset}{budget}")
    axis.set_yscale("log")
    axis.set_title(f"{picked[0][0].case}: training pull loss")
    axis.set_xlabel("training time, s")
    axis.set_ylabel("Neural-Pull loss (log)")
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize=6)


def plot_cd1_vs_time(groups: list[Group], path: Path) -> bool:
    """Write the PNG; False (and no file) when matplotlib is missing or nothing succeeded."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib import ticker
    except ImportError:
        return False
    cases = list(dict.fromkeys(g.case for g in groups))  # groups come sorted by shape and regime
    if not cases:
        return False
    picked = _loss_rows(groups)
    panels = len(cases) + bool(picked)
    figure, axes = plt.subplots(
        1, panels, figsize=(PANEL_SIZE_IN[0] * panels, PANEL_SIZE_IN[1]), squeeze=False
    )
    for axis, case in zip(axes[0], cases, strict=False):
        _panel(axis, ticker, case, [g for g in groups if g.case == case])
    if picked:
        _loss_panel(axes[0][-1], picked)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    plt.close(figure)
    return True
