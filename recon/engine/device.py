"""Where the engine runs: the torch device, its CPU count, and whether bf16 matmuls pay off there.

Feature checks, not timings, so the choice (and with it the mesh for a seed) never flips between
runs on the same machine.
"""

from pathlib import Path

import torch

DEVICES = ("auto", "cpu", "cuda")
CPU_FLAGS_FILE = Path("/proc/cpuinfo")
"""Where Linux lists CPU features (used to detect bf16 matrix instructions)."""
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")
"""CPU features with which bf16 matmuls run well above the fp32 rate (AMX tiles, AVX-512 BF16
dot products); plain AVX-512 CPUs emulate bf16 and are slower than fp32."""


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when available else "cpu"; raises ValueError on unknown or missing."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; valid devices: {', '.join(DEVICES)}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available")
    return device


def fast_bf16(device: str) -> bool:
    """True when bf16 matmuls run well above the fp32 rate here (bf16 CPU instructions, GPUs)."""
    if device == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    try:
        flags = set(CPU_FLAGS_FILE.read_text().split())
    except OSError:
        return False
    return any(flag in flags for flag in BF16_CPU_FLAGS)

