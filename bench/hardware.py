"""This machine: CPU model, cores, torch build and its measured fp32 matrix-multiply rate.

The rate is measured in the same benchmark run as training, so training FLOP utilisation compares
like with like (same machine, same load from whatever else shares the cores).
"""

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

TRAINING_SHAPES: tuple[tuple[int, int, int], ...] = ((5000, 256, 256), (5000, 253, 256))
"""(m, k, n) of the paper network's hidden matmuls at batch 5000 (the skip layer has k = 253)."""
SQUARE_SIZE = 2048
"""Side of the large square matmul (peak-like rate)."""
MIN_SECONDS = 1.0
"""Each shape is timed for at least this long (after one warm-up call)."""
MIN_REPEATS = 3
"""... and at least this many calls."""


@dataclass(frozen=True)
class MatmulRate:
    """Measured rate of one matmul shape."""

    m: int
    k: int
    n: int
    gflops: float
    """Billions of floating-point operations per second (2*m*k*n per call)."""


def time_matmul(m: int, k: int, n: int, *, device: str = "cpu", seed: int = 0,
                dtype: torch.dtype = torch.float32) -> MatmulRate:
    """Time ``(m, k) @ (k, n)`` (fp32 unless `dtype` says otherwise) and return its rate."""
    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(m, k, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(k, n, generator=generator).to(device=device, dtype=dtype)
    out = torch.empty(m, n, device=device, dtype=dtype)
    torch.mm(a, b, out=out)
    _sync(device)
    calls, start = 0, time.perf_counter()
    while calls < MIN_REPEATS or time.perf_counter() - start < MIN_SECONDS:
        torch.mm(a, b, out=out)
        calls += 1
    _sync(device)
    elapsed = time.perf_counter() - start
    return MatmulRate(m, k, n, 2.0 * m * k * n * calls / elapsed / 1e9)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
"""CPU features that set the matmul rate (a "model name" alone, as "AMD EPYC" in a VM, does not
tell a 2.0 GHz first-generation EPYC doing 35 GFLOP/s a core from a later one doing 85)."""


def parse_cpuinfo(text: str) -> dict:
    """Model name, family, model number, clock and vector features of the first CPU listed.

    Returns
    -------
    dict
        ``model_name``, ``family``, ``model`` (int or None), ``mhz`` (float or None) and
        ``vector_flags`` (those of `VECTOR_FLAGS` present, in that order).
    """
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())

    def number(key: str, kind):
        try:
            return kind(fields[key])
        except (KeyError, ValueError):
            return None

    return {
        "model_name": fields.get("model name") or platform.processor() or "unknown",
        "family": number("cpu family", int),
        "model": number("model", int),
        "mhz": number("cpu MHz", float),
        "vector_flags": [flag for flag in VECTOR_FLAGS if flag in flags],
    }


def cpu_facts() -> dict:
    """`parse_cpuinfo` of this machine (an empty listing where /proc/cpuinfo is missing)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        text = ""
    return parse_cpuinfo(text)


def describe_machine(device: str = "cpu") -> dict:
    """Machine facts plus fp32 matmul rates for training-like shapes and a large square.

    Returns
    -------
    dict
        ``cpu_model``, ``cpu`` (`cpu_facts`), ``logical_cpus``, ``usable_cpus``,
        ``torch_threads``, ``torch_version``, ``python``, ``device``, ``load_average``,
        ``matmul`` (list of rates) and
        ``matmul_gflops_training`` / ``matmul_gflops_square`` / ``matmul_gflops_best``.
    """
    shapes = [*TRAINING_SHAPES, (SQUARE_SIZE, SQUARE_SIZE, SQUARE_SIZE)]
    rates = [time_matmul(m, k, n, device=device) for m, k, n in shapes]
    training = max(rate.gflops for rate in rates[: len(TRAINING_SHAPES)])
    cpu = cpu_facts()
    facts = {
        "cpu_model": cpu["model_name"],
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)),
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "load_average": list(os.getloadavg()),
        "matmul": [rate.__dict__ for rate in rates],
        "matmul_gflops_training": training,
        "matmul_gflops_square": rates[-1].gflops,
        "matmul_gflops_best": max(rate.gflops for rate in rates),
    }
    # The fast and balanced presets autocast to bf16 where it is fast (AMX, tensor cores).
    m, k, n = TRAINING_SHAPES[0]
    facts["matmul_gflops_bf16_training"] = time_matmul(m, k, n, device=device,
                                                       dtype=torch.bfloat16).gflops
    if device.startswith("cuda"):
        facts["gpu"] = torch.cuda.get_device_name(0)
    return facts
