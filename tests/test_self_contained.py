"""The repository stands on its own: no tracked file points at a path outside it.

A clone on someone else's machine has nothing beside it, so a file that names `../shared/...` or
`/work/...` is a test, a script or a document that works only here. A relative path is read from
the file's own folder (as a link or `Path(__file__).parent / ...` would) and, outside Python
sources, also from the repository root (as a command in the README, Makefile or CI script would),
so a string such as "tenants/../x" in a path-traversal test is not mistaken for one. CI also runs
the suite in a clone with nothing beside it (.ci/run), which catches what no pattern can.
"""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

ABSOLUTE_OUTSIDE = re.compile(r"(?<![\w.~-])/(?:work|home|Users|root|mnt|media)/[\w.-]+")
"""Absolute paths into home or workspace folders: they exist only on the machine that wrote them
(system paths such as /proc/cpuinfo or /usr/bin/chromium are the same everywhere)."""

RELATIVE = re.compile(r"(?<![\w.])(?:\.\./)+[\w.-]+")
"""A relative path that climbs at least one folder before naming something."""

BINARY_SUFFIXES = {".png", ".ply", ".npy", ".glb", ".jpg", ".gz"}


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True,
                            check=True).stdout.decode().split("\0")
    return [REPO / name for name in listed
            if name and Path(name).suffix not in BINARY_SUFFIXES and (REPO / name).is_file()]


def leaves_repository(reference: str, base: Path) -> bool:
    return REPO not in (base / reference).resolve().parents


def outside_references(path: Path, text: str) -> list[str]:
    """The paths in `text` (the content of `path`) that point outside the repository."""
    found = [match.group(0) for match in ABSOLUTE_OUTSIDE.finditer(text)]
    for match in RELATIVE.finditer(text):
        link = text[:match.start()].endswith("](")  # a markdown link: relative to its file
        bases = [path.parent] if path.suffix == ".py" or link else [path.parent, REPO]
        if any(leaves_repository(match.group(0), base) for base in bases):
            found.append(match.group(0))
    return found


def test_no_tracked_file_references_a_path_outside_the_repository() -> None:
    offenders = {}
    this_file = Path(__file__).resolve()  # its examples below are what the check looks for
    for path in (p for p in tracked_text_files() if p != this_file):
        found = outside_references(path, path.read_text(encoding="utf-8", errors="replace"))
        if found:
            offenders[str(path.relative_to(REPO))] = sorted(set(found))
    assert offenders == {}


@pytest.mark.parametrize(("where", "text"), [
    ("tests/engine/test_x.py", 'BUNNY = Path("/work/shared/data/bunny")'),
    ("tests/e2e/support.py", 'DATA = Path(__file__).parent / "../../../shared/data"'),
    ("README.md", "make bench   # reads ../shared/data/bunny"),
    ("bench/README.md", "`../../elsewhere/data`"),
])
def test_the_check_finds_outside_references(where: str, text: str) -> None:
    assert outside_references(REPO / where, text) != []


@pytest.mark.parametrize(("where", "text"), [
    ("tests/infra/storage/test_keys.py", '("acme", JOB_ID, "../input.ply")'),
    ("tests/infra/storage/backend_contract.py", '"tenants/../../etc/passwd"'),
    ("recon/engine/device.py", 'CPU_FLAGS_FILE = Path("/proc/cpuinfo")'),
    ("docs/ARCHITECTURE.md", "[engine](../recon/engine/presets.py)"),
])
def test_paths_inside_the_repository_or_the_system_pass(where: str, text: str) -> None:
    assert outside_references(REPO / where, text) == []
