"""retained_heap: freed memory is reused without new page faults inside, trimmed again outside.

The fault counts are taken in a fresh interpreter: in this long-lived test process earlier tests
leave holes in the heap that would serve the blocks without faults either way.
"""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from recon.engine import heap

pytestmark = pytest.mark.skipif(heap._LIBC is None, reason="needs glibc's mallopt")

FAULTS_SCRIPT = """
import ctypes, importlib.util, json, resource, sys

spec = importlib.util.spec_from_file_location("heap", sys.argv[1])
heap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(heap)
libc = heap._LIBC
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
BLOCK, BLOCKS = 24 * 2**20, 4  # under the 32 MiB mmap threshold; 96 MiB > the 64 MiB steady trim


def faults_per_cycle(cycles=4):
    out = []
    for _ in range(cycles):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        blocks = [libc.malloc(BLOCK) for _ in range(BLOCKS)]
        for block in blocks:
            ctypes.memset(block, 1, BLOCK)
        for block in blocks:
            libc.free(block)
        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return out


with heap.retained_heap():
    inside = faults_per_cycle()
outside = faults_per_cycle()
print(json.dumps({"inside": inside, "outside": outside,
                  "pages": BLOCKS * BLOCK // resource.getpagesize()}))
"""


def test_inside_freed_blocks_are_reused_and_outside_they_are_returned():
    result = subprocess.run(
        [sys.executable, "-c", FAULTS_SCRIPT, str(Path(heap.__file__))],
        capture_output=True, text=True, timeout=60, check=True,
    )
    counts = json.loads(result.stdout)
    pages = counts["pages"]
    # The first cycle inside faults the heap in; later ones reuse the same pages.
    assert max(counts["inside"][1:]) < 0.05 * pages, counts
    # Outside, glibc trims the freed heap top again, so every cycle faults it in anew.
    assert min(counts["outside"][1:]) > 0.5 * pages, counts


def test_nested_and_concurrent_blocks_restore_only_when_the_last_leaves():
    entered, release = threading.Event(), threading.Event()

    def hold():
        with heap.retained_heap():
            entered.set()
            release.wait(timeout=10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert entered.wait(timeout=10)
    with heap.retained_heap():
        with heap.retained_heap():
            assert heap._holders == 3
        assert heap._holders == 2
    release.set()
    thread.join(timeout=10)
    assert heap._holders == 0
