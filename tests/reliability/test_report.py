"""The report generator turns recorded scenario lines into RELIABILITY.md: sections per group in
a fixed order, outcomes, pass/fail, the reproducing command, latest line per scenario."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.reliability.record import REPO_ROOT
from tests.reliability.report import cell, format_outcome, main

pytestmark = pytest.mark.reliability

LINES = [
    {"group": "security", "name": "foreign id is unknown", "passed": True,
     "outcome": {"foreign_status": {"GET job": 404}, "same": True},
     "test": "tests/reliability/test_security.py::test_isolation", "scale": "ci",
     "recorded_at": 1_800_000_000.0},
    {"group": "worker faults", "name": "SIGKILL mid-run | requeued", "passed": True,
     "outcome": {"requeued_after_s": 23.456789, "attempts": 2},
     "test": "tests/reliability/test_worker.py::test_kill[sigkill]", "scale": "full",
     "recorded_at": 1_800_000_100.0},
    {"group": "worker faults", "name": "SIGKILL mid-run | requeued", "passed": False,
     "outcome": {"requeued_after_s": 99.0},
     "test": "tests/reliability/test_worker.py::test_kill[sigkill]", "scale": "full",
     "recorded_at": 1_800_000_050.0},  # an older line of the same scenario: ignored
    {"group": "chaos", "name": "redis restarted", "passed": False,
     "outcome": {"lost_jobs": 1, "ids": ["a", "b"]},
     "test": "tests/reliability/test_deps.py::test_redis_restart", "scale": "ci",
     "recorded_at": 1_800_000_200.0},
]


def write_results(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_report_has_sections_outcomes_and_commands(tmp_path: Path) -> None:
    results = write_results(tmp_path / "results.jsonl", LINES)
    out = tmp_path / "RELIABILITY.md"
    assert main(["--results", str(results), "--out", str(out)]) == 0
    text = out.read_text()

    assert text.startswith("# Reliability\n")
    assert "make test-reliability" in text and "python -m tests.reliability.report" in text
    assert "3 scenarios" in text and "**1 failed**" in text
    assert "## What you can rely on" in text and "ends exactly once" in text
    assert "appendfsync everysec" in text and "not Redis Cluster" in text
    # known groups in their fixed order, others after them
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## What you can rely on", "## Worker faults", "## Security", "## Chaos"]

    assert "| scenario | measured outcome | result | reproduce |" in text
    assert "requeued_after_s: 23.5; attempts: 2" in text and "99.0" not in text
    assert "SIGKILL mid-run \\| requeued" in text  # a pipe cannot break the table
    assert ("`RECON_RELIABILITY_SCALE=full .venv/bin/pytest "
            "'tests/reliability/test_worker.py::test_kill[sigkill]'`") in text
    assert "`.venv/bin/pytest 'tests/reliability/test_security.py::test_isolation'`" in text
    assert "foreign_status: {GET job: 404}; same: true" in text
    assert "| lost_jobs: 1; ids: [a, b] | **FAIL** |" in text


def test_long_outcomes_are_shortened() -> None:
    text = format_outcome({"values": list(range(1000))})
    assert len(text) <= 400 and text.endswith("…")
    assert format_outcome({}) == "-"


def test_runs_as_a_module_and_refuses_an_empty_run(tmp_path: Path) -> None:
    results = write_results(tmp_path / "results.jsonl", LINES[:1])
    out = tmp_path / "docs" / "RELIABILITY.md"
    done = subprocess.run(
        [sys.executable, "-m", "tests.reliability.report", "--results", str(results),
         "--out", str(out)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "## Security" in out.read_text()

    empty = write_results(tmp_path / "empty.jsonl", [])
    assert main(["--results", str(empty), "--out", str(tmp_path / "none.md")]) == 1
    assert not (tmp_path / "none.md").exists()


def test_hostile_paths_render_the_same_but_are_not_paths() -> None:
    text = cell(format_outcome({"hostile_formats": {"../x": 422}, "name": "a|b"}))
    assert "../" not in text and "..&#47;x" in text and "a\\|b" in text
