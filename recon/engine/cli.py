"""`recon reconstruct` and `recon example`: the engine from the command line, no servers.

Progress goes to stderr through `recon.progress`: a bar on a terminal, a plain line every few
seconds in a log. Bad input ends with exit status 2 and a one-line reason.
"""

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from recon.engine.errors import EngineError
from recon.engine.runtime import configure_process
from recon.progress import ProgressDisplay, ProgressState, open_progress

if TYPE_CHECKING:  # the pipeline loads torch; the CLI imports it only to run
    from recon.engine.pipeline import Progress

EXIT_BAD_INPUT = 2
"""Exit status for unusable input (bad file, unknown option value)."""
EXIT_ENGINE_ERROR = 3
"""Exit status when the reconstruction itself fails (diverged, empty surface)."""


def _reconstruct_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recon reconstruct",
                                     description="Fit a mesh to a point cloud.")
    parser.add_argument("input", type=Path, help="point cloud (.ply, .xyz, .pts, .npy, .las, .laz)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="mesh file; the suffix picks the format (.glb, .ply, .obj, .stl)")
    parser.add_argument("--method", default="nap", help="nap | neural-pull | igr")
    parser.add_argument("--preset", default="auto", help="fast | balanced | paper | auto")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resolution", type=int, default=None, help="marching-cubes grid size")
    parser.add_argument("--max-iterations", type=int, default=None)
    parser.add_argument("--time-budget", type=float, default=None,
                        help="most training seconds (the preset's step cap still applies)")
    parser.add_argument("--surface", default="closed",
                        help="closed (watertight) | trimmed (only what the points support)")
    parser.add_argument("--trim-distance", type=float, default=None,
                        help="with --surface trimmed: local point spacings kept (default 1.5)")
    parser.add_argument("--target-faces", type=int, default=None,
                        help="decimate the mesh to about this many faces")
    parser.add_argument("--up-axis", default="y", help="the input's up axis: y | z (the GLB "
                        "is written Y-up)")
    parser.add_argument("--units", default=None, help="the input's unit: m | cm | mm | in | ft "
                        "(the GLB is written in metres; default m)")
    parser.add_argument("--use-normals", default="auto", help="the input's own normals: auto "
                        "(used when they agree with the fitted field) | yes | no")
    parser.add_argument("--ground-truth", type=Path, default=None,
                        help="ground-truth mesh or point set for quality metrics")
    parser.add_argument("--metrics-out", type=Path, default=None, help="write metrics JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    return parser


def _example_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recon example",
                                     description="Write a synthetic example point cloud (PLY).")
    parser.add_argument("shape", help="sphere | torus")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--noise", type=float, default=0.0, help="Gaussian noise sigma")
    parser.add_argument("--seed", type=int, default=0)
    return parser


class _ProgressReport:
    """Turns the engine's progress events into the shared display's states."""

    def __init__(self, display: ProgressDisplay) -> None:
        self.display = display

    def __call__(self, progress: "Progress") -> None:
        share = progress.step / progress.total if progress.total else 0.0
        fraction = progress.fraction if progress.fraction is not None else share
        self.display.update(ProgressState(progress.stage, fraction, progress.step,
                                          progress.total, progress.loss))


def _fail(reason: str, status: int = EXIT_BAD_INPUT) -> int:
    sys.stderr.write(f"recon: error: {reason}\n")
    return status


def reconstruct_command(args: argparse.Namespace) -> int:
    from recon.engine.export import MESH_EXPORTERS, export_mesh
    from recon.engine.formats.ground_truth import load_ground_truth
    from recon.engine.formats.pointcloud import load_point_cloud
    from recon.engine.pipeline import reconstruct
    from recon.engine.presets import build_config

    fmt = args.output.suffix.lower().lstrip(".")
    if fmt not in MESH_EXPORTERS:
        return _fail(f"unsupported output format {fmt!r}; use one of {', '.join(MESH_EXPORTERS)}")
    try:
        config = build_config(args.method, args.preset, device=args.device, seed=args.seed,
                              resolution=args.resolution, max_iterations=args.max_iterations,
                              time_budget_s=args.time_budget, surface=args.surface,
                              trim_distance=args.trim_distance, target_faces=args.target_faces,
                              up_axis=args.up_axis, units=args.units,
                              use_normals=args.use_normals)
        cloud = load_point_cloud(args.input)
        truth = None if args.ground_truth is None else load_ground_truth(args.ground_truth)
    except (ValueError, OSError, EngineError) as error:
        return _fail(str(error).splitlines()[0] if str(error) else type(error).__name__)
    display = None if args.quiet else open_progress()
    try:
        result = reconstruct(cloud, config, ground_truth=truth,
                             on_progress=None if display is None else _ProgressReport(display))
    except EngineError as error:
        return _fail(f"{error.code}: {error.message}", EXIT_ENGINE_ERROR)
    finally:
        if display is not None:
            display.close()
    args.output.write_bytes(export_mesh(result.mesh, fmt, config.frame))
    if args.metrics_out is not None:
        args.metrics_out.write_text(json.dumps(result.metrics, indent=2))
    for warning in result.warnings:
        sys.stderr.write(f"recon: warning: {warning}\n")
    run = result.metrics["run"]
    sys.stderr.write(f"wrote {args.output} ({run['iterations']} iterations, "
                     f"{run['seconds_total']:.1f} s)\n")
    return 0


def example_command(args: argparse.Namespace) -> int:
    from recon.engine.examples import example_cloud
    from recon.engine.formats.ply import write_point_cloud_ply

    if args.points < 16:
        return _fail("--points must be at least 16")
    try:
        points, normals = example_cloud(args.shape, args.points, args.noise, args.seed)
    except ValueError as error:
        return _fail(str(error))
    args.output.write_bytes(write_point_cloud_ply(points, normals))
    return 0


COMMANDS = {
    "reconstruct": (_reconstruct_parser, reconstruct_command),
    "example": (_example_parser, example_command),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point; argv[0] is the command name ("reconstruct" or "example")."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        return _fail(f"expected one of: {', '.join(COMMANDS)}")
    make_parser, command = COMMANDS[argv[0]]
    configure_process()
    try:
        args = make_parser().parse_args(argv[1:])
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return command(args)
