"""Markdown report and CD1-vs-time plot, rebuilt from the results file.

The report states the machine, how busy it was, the medians over seeds of every configuration,
every individual run, the target checks and the speed microbenchmarks.
"""

import time
from pathlib import Path

from bench.data import DEFAULT_SHAPE
from bench.results import RunRow, case_name
from bench.summary import Group, group_rows
from bench.targets import check_targets
from recon.engine.presets import build_config
from recon.engine.training import scaled_to_cloud

PLOT_FILE = "RESULTS_cd1_vs_time.png"
REPORT_FILE = "RESULTS.md"
REFERENCES = (
    "Reference points on this kind of machine (docs/ENGINE.md, bench/data/README.md): the public "
    "Neural-Pull code (8x256, batch 5000) runs 4.7 it/s and after 10 minutes on sparse_noisy "
    "reaches CD1 x100 0.536 (NC 0.958, F@0.01 0.918); screened Poisson with estimated normals "
    "0.93 / 0.83 / 0.27 (sparse / sparse_noisy / dense), with the clean normals 0.52 / 0.53 / 0.27."
)
DENSE_POINTS = 20_000
"""Size of the `dense` regime, whose grown budgets the report quotes."""


def preset_limits() -> str:
    """The CPU presets' own budgets and step caps, read from the engine so the text stays true."""
    parts = []
    for preset in ("fast", "balanced"):
        own = build_config("nap", preset, device="cpu").training
        dense = scaled_to_cloud(own, DENSE_POINTS)
        parts.append(f"{own.time_budget_s:.0f} s or {own.max_iterations:,} steps `{preset}` for "
                     f"up to {own.budget_reference_points:,} points ({dense.time_budget_s:.0f} s "
                     f"on the {DENSE_POINTS:,}-point `dense`)")
    return ", ".join(parts)


SUMMARY_HEADER = (
    "| regime | method | preset | budget s | seeds | CD1 x100 | CD2 x100 | NC | F@0.01 "
    "| watertight | seconds | it/s | FLOP util | stop |"
)


def _f(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _budget(group_or_row) -> str:
    budget = group_or_row.time_budget_s
    text = "-" if budget is None else f"{budget:g}"
    if group_or_row.max_iterations:
        text += f" ({group_or_row.max_iterations} it)"
    return text


def utilisation(row: RunRow, gflops: float | None) -> float | None:
    """Training FLOP rate of a row over the measured matmul rate (None when not applicable)."""
    flops = row.run.get("flops_per_step_analytic")
    gflops = row.run.get("machine_gflops") or gflops
    if not flops or not gflops or not row.iterations_per_second:
        return None
    return flops * row.iterations_per_second / (gflops * 1e9)


def _group_utilisation(group: Group, gflops: float | None) -> str:
    values = sorted(u for r in group.rows if (u := utilisation(r, gflops)) is not None)
    return "-" if not values else f"{values[len(values) // 2]:.0%}"


GLANCE_COLUMNS = (
    ("nap", "fast", "nap `fast`"),
    ("nap", "balanced", "nap `balanced`"),
    ("neural-pull", "balanced", "neural-pull `balanced`"),
    ("poisson", "default", "Poisson, estimated normals"),
    ("poisson-normals", "default", "Poisson, true normals"),
)
"""(method, preset, heading) of the at-a-glance table: the presets' own budgets, Poisson beside."""


def glance_table(groups: list[Group]) -> list[str]:
    """CD1 x100 (F@0.01) medians per shape and regime, the presets with Poisson beside them.

    Only runs at a preset's own budget and step cap count; a blank cell was not measured.
    """
    cases: dict[tuple[str, str], dict[tuple[str, str], Group]] = {}
    for g in groups:
        if g.time_budget_s is None and g.max_iterations is None and g.resolution is None:
            cases.setdefault((g.shape, g.regime), {})[(g.method, g.preset)] = g
    lines = ["| shape / regime | " + " | ".join(h for _, _, h in GLANCE_COLUMNS)
             + " | `fast` / Poisson |", "|" + "---|" * (len(GLANCE_COLUMNS) + 2)]
    for (shape, regime), found in cases.items():
        cells = []
        for method, preset, _ in GLANCE_COLUMNS:
            cell = found.get((method, preset))
            cells.append("" if cell is None else f"{_f(cell.median('cd1_x100'))} "
                         f"({_f(cell.median('fscore_0.01'))})")
        fast, poisson = found.get(("nap", "fast")), found.get(("poisson", "default"))
        a = None if fast is None else fast.median("cd1_x100")
        b = None if poisson is None else poisson.median("cd1_x100")
        ratio = "" if a is None or not b else f"{a / b:.2f}"
        lines.append(f"| {case_name(shape, regime)} | " + " | ".join(cells) + f" | {ratio} |")
    return lines


def summary_table(groups: list[Group], gflops: float | None) -> list[str]:
    """One line per configuration: medians over its seeds."""
    lines = [SUMMARY_HEADER, "|" + "---|" * 14]
    for g in groups:
        tight, total = g.watertight()
        preset = g.preset + (f" r{g.resolution}" if g.resolution else "")
        lines.append(
            f"| {g.case} | {g.method} | {preset} | {_budget(g)} | {g.seeds} "
            f"| {_f(g.median('cd1_x100'))} | {_f(g.median('cd2_x100'), 4)} | {_f(g.median('nc'))} "
            f"| {_f(g.median('fscore_0.01'))} | {tight}/{total} | {_f(g.median('wall_s'), 1)} "
            f"| {_f(g.median('iterations_per_second'), 1)} | {_group_utilisation(g, gflops)} "
            f"| {g.stop_reasons()} |"
        )
    return lines


def runs_table(rows: list[RunRow]) -> list[str]:
    """Every run, including failures."""
    lines = [
        "| regime | method | preset | budget s | seed | CD1 x100 | NC | F@0.01 | watertight "
        "| seconds | iterations | it/s | stop | load avg |",
        "|" + "---|" * 14,
    ]
    for row in rows:
        s, gt = row.spec, row.ground_truth
        if row.status != "ok":
            lines.append(f"| {s.case} | {s.method} | {s.preset} | {_budget(s)} | {s.seed} "
                         f"| error: {row.error} |||||||||")
            continue
        load = "/".join(f"{x:.1f}" for x in row.load_average[:1])
        lines.append(
            f"| {s.case} | {s.method} | {s.preset} | {_budget(s)} | {s.seed} "
            f"| {_f(gt.get('cd1_x100'))} | {_f(gt.get('nc'))} | {_f(gt.get('fscore_0.01'))} "
            f"| {row.mesh.get('watertight')} | {_f(row.wall_s, 1)} | {row.iterations or '-'} "
            f"| {_f(row.iterations_per_second, 1)} | {row.stop_reason} | {load} |"
        )
    return lines


def _load_line(loads: list[float], cores: int) -> str:
    """The load seen at the end of the runs, and whether it means the cores were shared.

    A benchmark keeps `cores` threads busy itself, so a load up to about the core count is a quiet
    machine; only clearly above it did other work compete for the cores.
    """
    if not loads:
        return "- Load not recorded: other processes may have shared these cores."
    text = (f"- 1-minute load average at the end of each run: min {loads[0]:.1f}, median "
            f"{loads[len(loads) // 2]:.1f}, max {loads[-1]:.1f} ({cores} cores, which the "
            "benchmark's own threads fill).")
    if loads[len(loads) // 2] > cores + 0.5:
        return text + " Other processes shared these cores, so timings are pessimistic."
    return text + " No other work competed for the cores."


def _cpu_detail(cpu: dict | None) -> str:
    """The machine line's " (family 23, model 1, 2.0 GHz; avx2 fma)": it tells apart CPUs that
    share a model name."""
    if not cpu:
        return ""
    parts = [f"{key} {cpu[key]}" for key in ("family", "model") if cpu.get(key) is not None]
    if cpu.get("mhz"):
        parts.append(f"{cpu['mhz'] / 1000:.1f} GHz")
    text = "; ".join(part for part in (", ".join(parts), " ".join(cpu.get("vector_flags") or []))
                     if part)
    return f" ({text})" if text else ""


def machine_lines(hardware: dict | None, rows: list[RunRow]) -> list[str]:
    """Where and under what load the numbers were taken."""
    if not hardware:
        return ["Machine: not recorded (run `python -m bench` to measure it)."]
    rates = ", ".join(f"{m['m']}x{m['k']}x{m['n']}: {m['gflops']:.0f}" for m in hardware["matmul"])
    loads = sorted(r.load_average[0] for r in rows if r.load_average)
    return [
        f"- Machine: {hardware['cpu_model']}{_cpu_detail(hardware.get('cpu'))}, "
        f"{hardware['usable_cpus']} usable cores "
        f"({hardware['logical_cpus']} logical), torch {hardware['torch_version']} "
        f"({hardware['torch_threads']} threads), Python {hardware['python']}, "
        f"device {hardware['device']}.",
        f"- Measured fp32 matmul rate (GFLOP/s) in this run: {rates}; FLOP utilisation below "
        f"uses the best, {hardware['matmul_gflops_best']:.0f} GFLOP/s. bf16 at the training "
        f"shape: {hardware.get('matmul_gflops_bf16_training', float('nan')):.0f} GFLOP/s. The "
        "presets autocast to bf16 on CPUs with bf16 instructions (AMX, AVX-512 BF16), so "
        "there a row's utilisation against the fp32 rate can exceed what fp32 allows.",
        _load_line(loads, hardware["usable_cpus"]),
    ]


def speed_lines(speed: dict | None) -> list[str]:
    """The microbenchmarks of `bench.speed`, as a short list."""
    if not speed:
        return ["Not run in this report (`python -m bench --speed`)."]
    lines = []
    for section, values in speed.items():
        if isinstance(values, dict) and section != "hardware":
            items = ", ".join(f"{k} {_fmt_any(v)}" for k, v in values.items()
                              if not isinstance(v, dict | list))
            lines.append(f"- **{section}**: {items}")
    return lines


def _fmt_any(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def build_report(rows: list[RunRow], hardware: dict | None, speed: dict | None,
                 *, command: str = "", plot_name: str | None = PLOT_FILE) -> str:
    """The whole RESULTS.md text."""
    groups = group_rows(rows)
    gflops = hardware.get("matmul_gflops_best") if hardware else None
    checks = check_targets(groups, speed)
    lines = ["# Benchmark results", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
             + (f" by `{command}`" if command else "") + ".", ""]
    lines += machine_lines(hardware, rows) + ["", REFERENCES, ""]
    lines += ["## At a glance", "",
              "CD1 x100 (F@0.01 in brackets), medians over seeds, each preset at its own budget "
              "and step cap; lower CD1 and higher F are better. Earlier presets and single "
              "changes: bench/reports/README.md.", "", *glance_table(groups), ""]
    lines += ["## Medians over seeds", "",
              "CD1/CD2 x100 in the unit-cube frame (docs/ENGINE.md; 100k samples per side); "
              "seconds = the reconstruction's wall time, ground-truth evaluation excluded; "
              "budget = training-time cap asked for; the step cap still applies (- = the preset's "
              f"own: {preset_limits()}, grown by the cube root of the point count up to 3x; the "
              "paper preset on CPU is capped, stop reason `time_budget`); FLOP util = analytic "
              "training FLOPs x it/s / fp32 matmul rate measured in the same invocation (the "
              "latest one for rows that predate that field).",
              "", *summary_table(groups, gflops), ""]
    if plot_name:
        lines += [f"![CD1 x100 against wall time]({plot_name})", ""]
    others = sorted({g.shape for g in groups} - {DEFAULT_SHAPE})
    if others:
        lines += [f"Rows of {', '.join(others)} are a held-out check (`bench.make_data`): the "
                  "targets below are the bunny's and read only its rows; compare a held-out "
                  "shape's rows with its own Poisson rows.", ""]
    lines += ["## Targets (the engine's, docs/ENGINE.md)", "", "| target | verdict | measured |",
              "|---|---|---|", *(f"| {c.target} | {c.verdict} | {c.measured} |" for c in checks),
              "", "## Speed microbenchmarks", "", *speed_lines(speed), "",
              "## Every run", "", *runs_table(rows), ""]
    return "\n".join(lines)


def write_report(rows: list[RunRow], hardware: dict | None, speed: dict | None,
                 report_dir: Path, *, command: str = "") -> tuple[Path, Path | None]:
    """Write RESULTS.md and (with matplotlib and at least one good row) the PNG next to it."""
    from bench.plot import plot_cd1_vs_time

    report_dir.mkdir(parents=True, exist_ok=True)
    plot_path = report_dir / PLOT_FILE
    made = plot_cd1_vs_time(group_rows(rows), plot_path)
    report_path = report_dir / REPORT_FILE
    text = build_report(rows, hardware, speed, command=command,
                        plot_name=PLOT_FILE if made else None)
    report_path.write_text(text, encoding="utf-8")
    return report_path, plot_path if made else None
