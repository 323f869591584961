"""Command line of the benchmark: ``python -m bench [options]`` (``make bench`` runs the default).

Default: every regime x method x preset x seeds 0 1 2, a CD1-vs-time budget sweep on sparse_noisy,
then the speed microbenchmarks; the machine's matmul rate is measured first in every invocation.
Rows go to OUT/results.jsonl as they finish; rerunning skips rows already there (resume).
"""

import argparse
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.data import DEFAULT_DATA_DIR, DEFAULT_SHAPE, REGIMES, REPO_ROOT
from bench.results import HARDWARE_FILE, RESULTS_FILE, SPEED_FILE, read_json, read_rows, write_json
from bench.runner import ALL_METHODS, PRESETS, MatrixPlan, run_matrix
from bench.speed import SPEED_PARTS, run_speed_suite

DEFAULT_OUT = REPO_ROOT / "bench" / "out"
PUBLISHED_REPORT_DIR = REPO_ROOT / "bench"
"""Where a non-quick run writes RESULTS.md and the plot (committed)."""
DEFAULT_SEEDS = (0, 1, 2)
DEFAULT_CURVE_BUDGETS = (15.0, 30.0, 60.0, 120.0)
"""Training-time budgets (s) of the CD1-vs-time sweep in a full run."""
QUICK_ITERATIONS = 100
QUICK_RESOLUTION = 64


@dataclass(frozen=True)
class Options:
    """Parsed command line."""

    plan: MatrixPlan
    data: Path
    out: Path
    report_dir: Path
    speed: bool
    """Run the speed microbenchmarks."""
    matrix: bool
    """Run the quality matrix."""
    resume: bool
    command: str
    speed_parts: tuple[str, ...] = SPEED_PARTS


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--regimes", nargs="+", choices=REGIMES, default=list(REGIMES))
    p.add_argument("--methods", nargs="+", choices=ALL_METHODS, default=list(ALL_METHODS))
    p.add_argument("--presets", nargs="+", choices=PRESETS, default=None,
                   help="default: fast balanced paper (fast with --quick)")
    p.add_argument("--seeds", nargs="+", type=int, default=None,
                   help="default: 0 1 2 (0 with --quick)")
    p.add_argument("--quick", action="store_true",
                   help=f"tiny runs: {QUICK_ITERATIONS} iterations, mesh {QUICK_RESOLUTION}^3, "
                   "no sweep, no speed suite; report in --out only")
    p.add_argument("--time-budget", type=float, default=None, metavar="S",
                   help="training-time cap (s) for every neural run; default: the presets' own, "
                   "and 600 s for the paper preset on CPU")
    p.add_argument("--max-iterations", type=int, default=None)
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--curve-budgets", nargs="*", type=float, default=None, metavar="S",
                   help="CD1-vs-time sweep budgets (default 15 30 60 120; none with --quick)")
    p.add_argument("--curve-preset", choices=PRESETS, default="balanced",
                   help="preset of the sweep (default balanced: the paper network needs a GPU "
                   "to get anywhere in minutes)")
    p.add_argument("--curve-regimes", nargs="+", choices=REGIMES, default=["sparse_noisy"])
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--shape", default=DEFAULT_SHAPE,
                   help=f"shape folder under --data (default {DEFAULT_SHAPE}); build one from any "
                   "mesh with python -m bench.make_data")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--report-dir", type=Path, default=None,
                   help="where RESULTS.md and the plot go (default: bench/ for the default --out "
                   "without --quick, else --out, so a side run never overwrites the published "
                   "report)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--speed", action="store_true",
                      help="run only the speed microbenchmarks (and the matmul rate)")
    mode.add_argument("--skip-speed", action="store_true", help="do not run the speed suite")
    mode.add_argument("--report-only", action="store_true",
                      help="rebuild the report from OUT/results.jsonl, run nothing")
    p.add_argument("--speed-parts", nargs="+", choices=SPEED_PARTS, default=list(SPEED_PARTS),
                   help="which microbenchmarks to run (results merge into OUT/speed.json)")
    p.add_argument("--no-resume", action="store_true", help="rerun rows already in the file")
    return p


def parse_options(argv: list[str]) -> Options:
    from recon.engine.device import resolve_device

    args = build_parser().parse_args(argv)
    quick = args.quick
    curve = args.curve_budgets
    if curve is None:
        curve = [] if quick else list(DEFAULT_CURVE_BUDGETS)
    plan = MatrixPlan(
        regimes=tuple(args.regimes), methods=tuple(args.methods),
        presets=tuple(args.presets or (["fast"] if quick else PRESETS)),
        seeds=tuple(args.seeds if args.seeds is not None else ([0] if quick else DEFAULT_SEEDS)),
        device=resolve_device(args.device), time_budget_s=args.time_budget,
        max_iterations=args.max_iterations or (QUICK_ITERATIONS if quick else None),
        resolution=args.resolution or (QUICK_RESOLUTION if quick else None),
        curve_budgets=tuple(curve), curve_regimes=tuple(args.curve_regimes),
        curve_preset=args.curve_preset, shape=args.shape,
    )
    published = not quick and args.out == DEFAULT_OUT and args.shape == DEFAULT_SHAPE
    report_dir = args.report_dir or (PUBLISHED_REPORT_DIR if published else args.out)
    return Options(
        plan=plan, data=args.data, out=args.out, report_dir=report_dir,
        speed=args.speed or not (quick or args.skip_speed or args.report_only),
        matrix=not (args.speed or args.report_only), resume=not args.no_resume,
        command=" ".join(["python -m bench", *map(shlex.quote, argv)]),
        speed_parts=tuple(args.speed_parts),
    )


def _log(message: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"[bench {stamp}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    from bench.hardware import describe_machine
    from bench.report import write_report

    options = parse_options(sys.argv[1:] if argv is None else argv)
    options.out.mkdir(parents=True, exist_ok=True)
    results_path = options.out / RESULTS_FILE
    hardware = read_json(options.out / HARDWARE_FILE)
    if options.matrix or options.speed:
        _log("measuring the fp32 matmul rate ...")
        hardware = describe_machine(options.plan.device)
        hardware["command"] = options.command
        write_json(options.out / HARDWARE_FILE, hardware)
        _log(f"    best {hardware['matmul_gflops_best']:.0f} GFLOP/s, "
             f"training shapes {hardware['matmul_gflops_training']:.0f} GFLOP/s")
    else:
        hardware = hardware or {}  # --report-only: the machine of the rows' own run, if known
    if options.matrix:
        run_matrix(options.plan, options.data, results_path, _log, resume=options.resume,
                   machine_gflops=hardware["matmul_gflops_best"])
    if options.speed:
        speed = run_speed_suite(options.data, options.plan.device, hardware, _log,
                                options.speed_parts, read_json(options.out / SPEED_FILE))
        write_json(options.out / SPEED_FILE, speed)
    report, plot = write_report(
        read_rows(results_path), hardware, read_json(options.out / SPEED_FILE),
        options.report_dir, command=options.command,
    )
    _log(f"report: {report}" + (f", plot: {plot}" if plot else " (no plot)"))
    return 0
