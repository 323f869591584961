"""The scan benchmark: range scans in, meshes out, screened Poisson beside us in the same run.

    python -m bench.scans --scans DIR [--shapes NAME=DIR ...]
                          [--parts real fused strays single large] [--seeds 0 1 2]
                          [--points 50000] [--large-points 500000 2000000] [--out bench/out_scans]

Parts (docs/ENGINE.md, Scans):
- real: every raw scan in --scans (.xyz, .ply, .pts, .npy; one view each, no ground truth),
  judged by fit to the input (input-to-mesh p95 and mean relative to the bbox diagonal), the area
  share of mesh farther than 2% of the diagonal from every point, watertightness and the largest
  piece's area share; `closed` on every seed, `trimmed` on the first; pictures of seed 0.
- fused: each shape (a folder from `python -m bench.make_data`, or the bunny in bench/data)
  scanned by the virtual scanner (bench.scanner: 4 views, noise growing with range and grazing
  angle, 0.5% stray points), CD1 / F against the whole ground truth.
- strays: the same fused scan without stray points and with 1%: how much CD1 moves.
- single: one view of each shape, `trimmed`: completeness on the part the scanner saw (share of
  its ground-truth samples within 1% of the unit cube of the mesh), accuracy of the mesh (mean
  distance to the ground truth) and its far-area share.
- large: fused scans of --large-points points (default 500,000 and 2,000,000), ours on the whole
  scan and on a random --large-subsample-point subsample of it (default 200,000), each in a child
  process so its peak memory is its own; times are also given relative to `fast` on the
  1,000-point bunny (bench/data) measured in the same invocation.
Poisson gets estimated normals, depth 8 below 100,000 points and 9 above, and is run both on the
raw points and after our stray-point removal; the report shows each and ratios against the better.
Rows go to OUT/scans.jsonl as they finish; rerunning skips rows already there. The report
(OUT/SCANS.md) and pictures (OUT/*.png) are written at the end; --publish also writes them where
the repository shows them (bench/SCANS.md, docs/images/scan_*.png), --report-only rewrites them
from the rows without running anything.
"""

import argparse
import json
import multiprocessing
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
import trimesh
from scipy.spatial import cKDTree

from bench.data import DEFAULT_DATA_DIR, GROUND_TRUTH_FILE, REPO_ROOT
from bench.make_data import GROUND_TRUTH_MESH_FILE
from bench.memprobe import peak_resident_kib
from bench.pictures import Panel, render_panels
from bench.poisson import PoissonConfig, poisson_available, reconstruct_poisson
from bench.scanner import Scan, ScannerConfig, scan
from recon.engine import metrics as engine_metrics
from recon.engine.formats.ground_truth import GroundTruth, load_ground_truth
from recon.engine.formats.pointcloud import PointCloud, load_point_cloud
from recon.engine.outliers import OutlierConfig, find_outliers
from recon.engine.pipeline import reconstruct
from recon.engine.presets import build_config
from recon.engine.runtime import configure_process

PARTS = ("real", "fused", "strays", "single", "large")
POISSON_LABELS = ("poisson", "poisson+outliers")
"""Poisson on the raw points, and after our stray-point removal."""
SCAN_SUFFIXES = (".xyz", ".ply", ".pts", ".npy")
DEFAULT_OUT = REPO_ROOT / "bench" / "out_scans"
ROWS_FILE = "scans.jsonl"
COMMANDS_FILE = "commands.txt"
"""Every command that added rows to OUT, one per line (the report quotes them)."""
REPORT_FILE = "SCANS.md"
PUBLISHED_REPORT = REPO_ROOT / "bench" / REPORT_FILE
PUBLISHED_PICTURES = REPO_ROOT / "docs" / "images"
PRESET = "fast"
"""The issue's fixed condition: every scan row runs the `fast` preset."""
POISSON_DENSE_POINTS = 100_000
"""Poisson's depth goes from 8 to 9 at this many points."""
COMPLETENESS_TAU = 0.01
"""Single views: a seen ground-truth sample counts as recovered within this distance (unit cube)."""
METRIC_SAMPLES = 100_000
TIME_REFERENCE = ("bunny", "sparse")
"""Large-scan times are relative to `fast` on this 1,000-point cloud, run in the same invocation."""


@dataclass(frozen=True)
class Plan:
    """What one invocation runs."""

    scans: tuple[Path, ...]
    shapes: tuple[tuple[str, Path], ...]
    parts: tuple[str, ...]
    seeds: tuple[int, ...]
    points: int
    out: Path
    large_points: tuple[int, ...] = (500_000, 2_000_000)
    large_subsample: int = 200_000
    """Large scans are also run on a random subsample of this many points: detail the whole scan
    carries must show against it."""
    max_iterations: int | None = None
    resolution: int | None = None
    publish: bool = False
    report_only: bool = False


def _fit(mesh: trimesh.Trimesh, points: np.ndarray) -> dict[str, Any]:
    fit = engine_metrics.fit_to_input_metrics(mesh, points)
    facts = engine_metrics.mesh_facts(mesh)
    return {
        "p95_rel": fit["relative"]["p95"], "mean_rel": fit["relative"]["mean"],
        "far_area_share": fit["far_area_share"], "watertight": facts["watertight"],
        "components": facts["components"],
        "largest_share": facts["largest_component_area_share"], "faces": facts["faces"],
    }


def _ours(cloud: PointCloud, seed: int, surface: str, plan: Plan) -> tuple[trimesh.Trimesh, dict]:
    config = build_config("nap", PRESET, device="cpu", seed=seed, surface=surface,
                          max_iterations=plan.max_iterations, resolution=plan.resolution)
    start = time.perf_counter()
    result = reconstruct(cloud, config)
    run = result.metrics["run"]
    facts = {"seconds": time.perf_counter() - start, "iterations": run["iterations"],
             "outliers_removed": run["outliers_removed"], "sign_prior": run.get("sign_prior"),
             "sign_prior_from": run.get("sign_prior_from")}
    return result.mesh, facts


def _ours_alone(cloud: PointCloud, seed: int, surface: str,
                plan: Plan) -> tuple[trimesh.Trimesh, dict]:
    """`_ours` in a fresh child process, so the run's peak memory (peak_gib) is its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        vertices, faces, facts = pool.submit(_ours_child, cloud, seed, surface, plan).result()
    return trimesh.Trimesh(vertices, faces, process=False), facts


def _ours_child(cloud: PointCloud, seed: int, surface: str,
                plan: Plan) -> tuple[np.ndarray, np.ndarray, dict]:
    configure_process()
    mesh, facts = _ours(cloud, seed, surface, plan)
    return mesh.vertices, mesh.faces, {**facts, "peak_gib": peak_resident_kib() / 2**20}


def _poisson(points: np.ndarray, remove_outliers: bool) -> tuple[trimesh.Trimesh, dict]:
    start = time.perf_counter()
    kept = points
    if remove_outliers:
        kept = points[~find_outliers(points, OutlierConfig()).outliers]
    config = PoissonConfig(dense_min_points=POISSON_DENSE_POINTS)
    mesh = reconstruct_poisson(PointCloud(points=kept), config)
    return mesh, {"seconds": time.perf_counter() - start,
                  "outliers_removed": int(len(points) - len(kept))}


def _poisson_label(remove_outliers: bool) -> str:
    return POISSON_LABELS[1] if remove_outliers else POISSON_LABELS[0]


class Rows:
    """scans.jsonl: one JSON row per finished run, keyed so a rerun skips what is done. Poisson
    rows are skipped, with the reason printed once, where Open3D does not import."""

    def __init__(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / ROWS_FILE
        self.rows = [json.loads(line) for line in self.path.read_text().splitlines()
                     if line.strip()] if self.path.exists() else []
        self.done = {self.key(row) for row in self.rows}
        self.poisson, reason = poisson_available()
        if not self.poisson:
            print(f"skipping the Poisson rows: {reason}", flush=True)

    @staticmethod
    def key(row: dict) -> tuple:
        return (row["part"], row["case"], row["method"], row["surface"], row["seed"])

    def run(self, part: str, case: str, method: str, surface: str, seed: int,
            measure: Callable[[], dict]) -> None:
        key = (part, case, method, surface, seed)
        if key in self.done:
            return
        if method in POISSON_LABELS and not self.poisson:
            return
        row = {"part": part, "case": case, "method": method, "surface": surface, "seed": seed,
               **measure()}
        with self.path.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        self.rows.append(row)
        self.done.add(key)
        print(json.dumps(row), flush=True)


def _save(mesh: trimesh.Trimesh, plan: Plan, name: str) -> None:
    folder = plan.out / "meshes"
    folder.mkdir(parents=True, exist_ok=True)
    mesh.export(folder / f"{name}.ply")


def run_real(plan: Plan, rows: Rows) -> None:
    for path in plan.scans:
        _real_scan(plan, rows, path)


def _real_scan(plan: Plan, rows: Rows, path: Path) -> None:
    cloud = load_point_cloud(path)
    case = path.stem

    def ours(surface: str, seed: int) -> dict:
        mesh, facts = _ours(cloud, seed, surface, plan)
        if seed == plan.seeds[0]:
            _save(mesh, plan, f"{case}_fast_{surface}")
        return {**facts, **_fit(mesh, cloud.points)}

    def poisson(remove: bool) -> dict:
        mesh, facts = _poisson(cloud.points, remove)
        _save(mesh, plan, f"{case}_{_poisson_label(remove)}")
        return {**facts, **_fit(mesh, cloud.points)}

    for surface, seeds in (("closed", plan.seeds), ("trimmed", plan.seeds[:1])):
        for seed in seeds:
            rows.run("real", case, PRESET, surface, seed, partial(ours, surface, seed))
    for remove in (False, True):
        rows.run("real", case, _poisson_label(remove), "trimmed-density", 0,
                 partial(poisson, remove))


def _load_mesh(path: Path) -> trimesh.Trimesh:
    mesh = trimesh.load(path, force="mesh", process=True)
    assert isinstance(mesh, trimesh.Trimesh)
    return mesh


def _ground_truth(shape_dir: Path) -> tuple[trimesh.Trimesh, GroundTruth]:
    return (_load_mesh(shape_dir / GROUND_TRUTH_MESH_FILE),
            load_ground_truth(shape_dir / GROUND_TRUTH_FILE))


def _quality(mesh: trimesh.Trimesh, truth: GroundTruth, points: np.ndarray) -> dict:
    gt = engine_metrics.ground_truth_metrics(mesh, truth, n_samples=METRIC_SAMPLES)
    return {"cd1_x100": gt["cd1_x100"], "fscore_0.01": gt["fscore_0.01"], "nc": gt["nc"],
            **_fit(mesh, points)}


def _scan_rows(plan: Plan, rows: Rows, part: str, case: str, scanned: Scan, truth: GroundTruth,
               seeds: tuple[int, ...]) -> None:
    cloud = PointCloud(points=scanned.points)

    def ours(seed: int) -> dict:
        mesh, facts = _ours(cloud, seed, "closed", plan)
        return {**facts, "points": len(cloud.points), **_quality(mesh, truth, cloud.points)}

    def poisson(remove: bool) -> dict:
        mesh, facts = _poisson(cloud.points, remove)
        return {**facts, "points": len(cloud.points), **_quality(mesh, truth, cloud.points)}

    for seed in seeds:
        rows.run(part, case, PRESET, "closed", seed, partial(ours, seed))
    for remove in (False, True):
        rows.run(part, case, _poisson_label(remove), "trimmed-density", 0,
                 partial(poisson, remove))


def run_fused(plan: Plan, rows: Rows) -> None:
    for name, folder in plan.shapes:
        mesh, truth = _ground_truth(folder)
        scanned = scan(mesh, ScannerConfig(points=plan.points, seed=0))
        _scan_rows(plan, rows, "fused", f"{name}-{plan.points // 1000}k", scanned, truth,
                   plan.seeds)


def run_strays(plan: Plan, rows: Rows) -> None:
    for name, folder in plan.shapes:
        mesh, truth = _ground_truth(folder)
        for fraction in (0.0, 0.01):
            scanned = scan(mesh, ScannerConfig(points=plan.points, seed=0,
                                               stray_fraction=fraction))
            _scan_rows(plan, rows, "strays", f"{name}-strays{fraction:.0%}", scanned, truth,
                       plan.seeds)


def run_single(plan: Plan, rows: Rows) -> None:
    for name, folder in plan.shapes:
        _single_view(plan, rows, name, folder)


def _single_view(plan: Plan, rows: Rows, name: str, folder: Path) -> None:
    mesh, _ = _ground_truth(folder)
    scanned = scan(mesh, ScannerConfig(views=1, points=plan.points // 2, seed=0))
    seen = mesh.submesh([scanned.seen_faces], append=True)
    seen_samples, _ = trimesh.sample.sample_surface(seen, METRIC_SAMPLES, seed=0)
    cloud = PointCloud(points=scanned.points)

    def judged(result: trimesh.Trimesh, facts: dict) -> dict:
        samples, _ = trimesh.sample.sample_surface(result, METRIC_SAMPLES, seed=1)
        recovered = cKDTree(samples).query(seen_samples)[0]
        accuracy = engine_metrics.point_to_mesh_distance(mesh, samples[:20_000],
                                                         np.random.default_rng(0))
        return {**facts, "completeness": float((recovered <= COMPLETENESS_TAU).mean()),
                "accuracy_x100": float(100 * accuracy.mean()), **_fit(result, cloud.points)}

    def ours() -> dict:
        return judged(*_ours(cloud, plan.seeds[0], "trimmed", plan))

    def poisson(remove: bool) -> dict:
        return judged(*_poisson(cloud.points, remove))

    case = f"{name}-view"
    rows.run("single", case, PRESET, "trimmed", plan.seeds[0], ours)
    for remove in (False, True):
        rows.run("single", case, _poisson_label(remove), "trimmed-density", 0,
                 partial(poisson, remove))


def run_large(plan: Plan, rows: Rows) -> None:
    name, regime = TIME_REFERENCE
    reference = load_point_cloud(DEFAULT_DATA_DIR / name / regime / "points.ply")

    def timed_reference() -> dict:
        mesh, facts = _ours_alone(reference, plan.seeds[0], "closed", plan)
        return {**facts, "points": len(reference.points), **_fit(mesh, reference.points)}

    rows.run("large", f"{name}-{len(reference.points) // 1000}k", PRESET, "closed", plan.seeds[0],
             timed_reference)
    for name, folder in plan.shapes:
        mesh, truth = _ground_truth(folder)
        for points in plan.large_points:
            _large_scan(plan, rows, f"{name}-{points // 1000}k", truth,
                        scan(mesh, ScannerConfig(points=points, seed=0)))


def _large_scan(plan: Plan, rows: Rows, case: str, truth: GroundTruth, scanned: Scan) -> None:
    cloud = PointCloud(points=scanned.points)
    seed = plan.seeds[0]

    def ours(subsample: int | None) -> dict:
        used = cloud
        if subsample is not None:
            keep = np.random.default_rng(seed).choice(len(cloud.points), subsample, replace=False)
            used = PointCloud(points=cloud.points[keep])
        mesh, facts = _ours_alone(used, seed, "closed", plan)
        return {**facts, "points": len(used.points), **_quality(mesh, truth, cloud.points)}

    def poisson(remove: bool) -> dict:
        mesh, facts = _poisson(cloud.points, remove)
        return {**facts, "points": len(cloud.points), **_quality(mesh, truth, cloud.points)}

    rows.run("large", case, PRESET, "closed", seed, partial(ours, None))
    if len(cloud.points) > plan.large_subsample:
        rows.run("large", case, f"{PRESET}@{plan.large_subsample // 1000}k", "closed", seed,
                 partial(ours, plan.large_subsample))
    for remove in (False, True):
        rows.run("large", case, _poisson_label(remove), "trimmed-density", 0,
                 partial(poisson, remove))


RUNNERS = {"real": run_real, "fused": run_fused, "strays": run_strays, "single": run_single,
           "large": run_large}


def _medians(rows: list[dict], keys: tuple[str, ...]) -> dict[tuple, dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["part"], row["case"], row["method"], row["surface"]), []).append(row)
    out = {}
    for group, members in groups.items():
        values: dict[str, Any] = {
            key: median(float(m[key]) for m in members if m.get(key) is not None)
            for key in keys if any(m.get(key) is not None for m in members)}
        values["runs"] = len(members)
        values["watertight"] = all(m.get("watertight") for m in members)
        values["sign_prior"] = ",".join(sorted({str(m.get("sign_prior")) for m in members
                                                if m.get("sign_prior")}))
        out[group] = values
    return out


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def write_report(plan: Plan, rows: list[dict], path: Path) -> Path:
    """OUT/SCANS.md: one table per part, medians over seeds, ratios against the better Poisson."""
    keys = ("p95_rel", "mean_rel", "far_area_share", "largest_share", "seconds", "cd1_x100",
            "fscore_0.01", "nc", "completeness", "accuracy_x100", "outliers_removed", "peak_gib",
            "points")
    table = _medians(rows, keys)
    commands = plan.out / COMMANDS_FILE
    ran = commands.read_text().splitlines() if commands.exists() else []
    # The raw scans' folder is this machine's; the report names it SCANS_DIR.
    ran = [re.sub(r"--scans \S+", "--scans SCANS_DIR", line) for line in ran]
    lines = ["# Scan benchmark", "", "Made by (SCANS_DIR: the folder of raw scans):", "",
             *[f"    {line}" for line in ran], "",
             "Medians over seeds; fit figures relative to the input's bbox diagonal; far: mesh "
             "area farther than 2% of the diagonal from every input point; peak: the run's peak "
             "resident memory (large part only); x 1k: seconds over `fast` on the 1,000-point "
             "bunny in the same invocation.", ""]
    name, regime = TIME_REFERENCE
    reference = [v["seconds"] for k, v in table.items()
                 if k[0] == "large" and k[1] == f"{name}-1k" and k[2] == PRESET]
    for part in PARTS:
        entries = {k: v for k, v in table.items() if k[0] == part}
        if not entries:
            continue
        lines += [f"## {part}", "", "| case | method | surface | runs | p95 | mean | far | "
                  "largest piece | watertight | CD1 x100 | F@0.01 | completeness | accuracy x100 "
                  "| CD1 / best Poisson | points | seconds | x 1k | peak GiB | sign prior |",
                  "|" + "---|" * 19]
        for (_, case, method, surface), v in sorted(entries.items()):
            poisson = [table[k]["cd1_x100"] for k in entries
                       if k[1] == case and k[2].startswith("poisson") and "cd1_x100" in table[k]]
            ratio = (v["cd1_x100"] / min(poisson)) if poisson and "cd1_x100" in v else None
            lines.append(
                f"| {case} | {method} | {surface} | {v['runs']} | {_fmt(v.get('p95_rel'), '.3%')} "
                f"| {_fmt(v.get('mean_rel'), '.3%')} | {_fmt(v.get('far_area_share'), '.2%')} | "
                f"{_fmt(v.get('largest_share'), '.3f')} | {'yes' if v['watertight'] else 'no'} | "
                f"{_fmt(v.get('cd1_x100'), '.3f')} | {_fmt(v.get('fscore_0.01'), '.3f')} | "
                f"{_fmt(v.get('completeness'), '.3f')} | {_fmt(v.get('accuracy_x100'), '.3f')} | "
                f"{_fmt(ratio, '.2f')} | {_fmt(v.get('points'), ',.0f')} | "
                f"{_fmt(v.get('seconds'), '.0f')} | "
                f"{_fmt(v['seconds'] / reference[0] if reference else None, '.1f')} | "
                f"{_fmt(v.get('peak_gib'), '.2f')} | {v['sign_prior'] or '-'} |")
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def write_pictures(plan: Plan, folder: Path, prefix: str = "") -> list[Path]:
    """A picture per real scan: the input, `closed` and `trimmed` from the front and behind."""
    written = []
    meshes = plan.out / "meshes"
    for path in plan.scans:
        case = path.stem
        closed, trimmed = meshes / f"{case}_fast_closed.ply", meshes / f"{case}_fast_trimmed.ply"
        if not (closed.exists() and trimmed.exists()):
            continue
        points = load_point_cloud(path).points
        closed_mesh, trimmed_mesh = _load_mesh(closed), _load_mesh(trimmed)
        panels: list[Panel] = [("input points", points, 0.0), ("closed", closed_mesh, 0.0),
                  ("closed, from behind", closed_mesh, 150.0), ("trimmed", trimmed_mesh, 0.0),
                  ("trimmed, from behind", trimmed_mesh, 150.0)]
        written.append(render_panels(panels, folder / f"{prefix}{case}.png"))
    return written


def _shape(text: str) -> tuple[str, Path]:
    name, _, folder = text.partition("=")
    return name, Path(folder) if folder else DEFAULT_DATA_DIR / name


def parse(argv: list[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(prog="python -m bench.scans", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=Path, default=None,
                        help="folder of raw scans (the real part); skipped without it")
    parser.add_argument("--shapes", nargs="+", type=_shape, default=[_shape("bunny")],
                        metavar="NAME[=DIR]", help="shapes to scan (default: the bunny)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--points", type=int, default=50_000, help="fused scan size")
    parser.add_argument("--large-points", nargs="+", type=int, default=[500_000, 2_000_000],
                        help="large fused scan sizes")
    parser.add_argument("--large-subsample", type=int, default=200_000,
                        help="large scans are also run on a random subsample of this size")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--max-iterations", type=int, default=None, help="for smoke runs")
    parser.add_argument("--resolution", type=int, default=None, help="for smoke runs")
    parser.add_argument("--publish", action="store_true",
                        help="also write bench/SCANS.md and docs/images/scan_*.png")
    parser.add_argument("--report-only", action="store_true",
                        help="rewrite the report and pictures from OUT's rows; run nothing")
    args = parser.parse_args(argv)
    scans: tuple[Path, ...] = ()
    if args.scans is not None:
        scans = tuple(sorted(p for p in args.scans.iterdir() if p.suffix in SCAN_SUFFIXES))
    return Plan(scans=scans, shapes=tuple(args.shapes), parts=tuple(args.parts),
                seeds=tuple(args.seeds), points=args.points, out=args.out,
                large_points=tuple(args.large_points), large_subsample=args.large_subsample,
                max_iterations=args.max_iterations, resolution=args.resolution,
                publish=args.publish, report_only=args.report_only)


def main(argv: list[str] | None = None) -> int:
    configure_process()
    argv = sys.argv[1:] if argv is None else argv
    plan = parse(argv)
    rows = Rows(plan.out)
    if not plan.report_only:
        with (plan.out / COMMANDS_FILE).open("a") as handle:
            handle.write("python -m bench.scans " + " ".join(argv) + "\n")
    for part in plan.parts if not plan.report_only else ():
        if part == "real" and not plan.scans:
            continue
        RUNNERS[part](plan, rows)
    written = [write_report(plan, rows.rows, plan.out / REPORT_FILE),
               *write_pictures(plan, plan.out)]
    if plan.publish:
        written += [write_report(plan, rows.rows, PUBLISHED_REPORT),
                    *write_pictures(plan, PUBLISHED_PICTURES, prefix="scan_")]
    print("wrote " + ", ".join(str(path) for path in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
