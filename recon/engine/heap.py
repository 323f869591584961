"""Keep glibc's heap from handing freed memory back to the kernel while training runs.

A training step allocates and frees dozens of batch-sized tensors (5 MB each at the paper network).
With glibc's defaults the freed heap top is often trimmed and the next allocation faults its pages
in again: 2,000-8,000 page faults and 4-25 ms of kernel time per step on 2 cores. Raising the trim
threshold (and pinning the mmap threshold at glibc's largest dynamic value, so batch-sized blocks
come from the heap) removes them. Fresh processes, five interleaved pairs on an AMD EPYC Zen 3:
paper Neural-Pull median 5.82 -> 6.21 it/s, `balanced` NAP 20.0 -> 21.5 (bench/reports/step-cost).
On leaving, the settings go back to glibc's steady state and the heap is trimmed once, so a
long-lived worker does not keep its peak.

Other C libraries (musl, macOS) have no `mallopt`; there this is a no-op.
"""

import ctypes
import ctypes.util
import threading
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""`mallopt` parameters, from glibc's malloc.h."""
MMAP_THRESHOLD_BYTES = 32 * 2**20
"""glibc's largest dynamic mmap threshold on 64-bit: blocks below it come from the heap."""
TRAINING_TRIM_THRESHOLD_BYTES = 2**30
"""Free heap top kept while training (never reached by a step's own churn)."""
STEADY_TRIM_THRESHOLD_BYTES = 2 * MMAP_THRESHOLD_BYTES
"""What glibc's dynamic trim threshold settles at once the mmap threshold has grown fully."""

_lock = threading.Lock()
_holders = 0


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError, TypeError):
        return None


_LIBC = _glibc()


@contextmanager
def retained_heap() -> Iterator[None]:
    """Within the block, freed memory stays in the heap for the next allocation (see module doc).

    Nested or concurrent blocks (threads) share the setting; the last one out restores it.
    """
    global _holders
    if _LIBC is None:
        yield
        return
    with _lock:
        _holders += 1
        if _holders == 1:
            _LIBC.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
            _LIBC.mallopt(M_TRIM_THRESHOLD, TRAINING_TRIM_THRESHOLD_BYTES)
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                _LIBC.mallopt(M_TRIM_THRESHOLD, STEADY_TRIM_THRESHOLD_BYTES)
                _LIBC.malloc_trim(0)
