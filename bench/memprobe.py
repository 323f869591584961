"""Child process of the peak-memory benchmark: one large reconstruction, then its own peak RSS.

Run as ``python -m bench.memprobe --points N --max-iterations K``. It builds a synthetic torus of
N points, serialises it to a binary PLY in memory, loads it through the engine's loader (so parsing
counts too), reconstructs with the `fast` preset, and prints one JSON line with its own peak
resident memory. A separate process keeps the parent's memory out of the measurement.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

KIB = 1024


def peak_resident_kib() -> int:
    """This process's peak resident memory in KiB (VmHWM). Not getrusage's ru_maxrss, which Linux
    carries across execve: a child started by a larger parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status (peak memory is measured on Linux)")


def probe(points: int, max_iterations: int, seed: int, preset: str) -> dict:
    """Reconstruct a synthetic `points`-point torus; returns timings and peak RSS in bytes."""
    from recon.engine.examples import torus
    from recon.engine.formats.ply import write_point_cloud_ply
    from recon.engine.formats.pointcloud import load_point_cloud
    from recon.engine.pipeline import reconstruct
    from recon.engine.presets import build_config

    start = time.perf_counter()
    xyz, normals = torus(points, np.random.default_rng(seed))
    cloud = load_point_cloud(write_point_cloud_ply(xyz))
    config = build_config("nap", preset, device="cpu", seed=seed, max_iterations=max_iterations)
    result = reconstruct(cloud, config)
    run = result.metrics["run"]
    return {
        "points": points,
        "preset": preset,
        "max_iterations": max_iterations,
        "iterations": run["iterations"],
        "queries": run["queries"],
        "seconds": time.perf_counter() - start,
        "seconds_by_stage": run["seconds_by_stage"],
        "watertight": result.metrics["mesh"]["watertight"],
        "peak_rss_bytes": peak_resident_kib() * KIB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memprobe")
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--max-iterations", type=int, default=50)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = probe(args.points, args.max_iterations, args.seed, args.preset)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
