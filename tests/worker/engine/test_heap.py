"""retained_heap: freed memory is reused without new page faults inside, trimmed again outside."""

import ctypes
import resource
import threading

import pytest

from worker.engine import heap

BLOCK_BYTES = 24 * 2**20
"""Below the 32 MiB mmap threshold, so blocks come from the heap."""
BLOCKS = 4
"""96 MiB freed at once: more than glibc's steady trim threshold (64 MiB), far less than 1 GiB."""
PAGE_BYTES = resource.getpagesize()

pytestmark = pytest.mark.skipif(heap._LIBC is None, reason="needs glibc's mallopt")


def _faults_per_cycle(cycles: int = 4) -> list[int]:
    """Minor page faults of each cycle of malloc, touch every page, free (all blocks)."""
    libc = heap._LIBC
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    faults = []
    for _ in range(cycles):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        blocks = [libc.malloc(BLOCK_BYTES) for _ in range(BLOCKS)]
        assert all(blocks)
        for block in blocks:
            ctypes.memset(block, 1, BLOCK_BYTES)
        for block in blocks:
            libc.free(block)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return faults


def test_inside_freed_blocks_are_reused_and_outside_they_are_returned():
    pages = BLOCKS * BLOCK_BYTES // PAGE_BYTES
    with heap.retained_heap():
        inside = _faults_per_cycle()
    outside = _faults_per_cycle()
    # The first cycle inside may fault the heap in; later ones reuse the same pages.
    assert max(inside[1:]) < 0.05 * pages, inside
    # Outside, glibc trims the freed heap top each time, so every cycle faults it in again.
    assert min(outside[1:]) > 0.5 * pages, outside


def test_nested_and_concurrent_blocks_restore_only_when_the_last_leaves():
    entered, release = threading.Event(), threading.Event()

    def hold():
        with heap.retained_heap():
            entered.set()
            release.wait(timeout=10)

    thread = threading.Thread(target=hold)
    thread.start()
    entered.wait(timeout=10)
    with heap.retained_heap():
        with heap.retained_heap():
            assert heap._holders == 3
        assert heap._holders == 2
    # The other thread still trains: the setting must still hold.
    assert max(_faults_per_cycle()[1:]) < 0.05 * BLOCKS * BLOCK_BYTES // PAGE_BYTES
    release.set()
    thread.join(timeout=10)
    assert heap._holders == 0
