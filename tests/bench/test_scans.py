"""The scan benchmark end to end at 100 iterations: every part's rows, the report, a picture."""

import json
from pathlib import Path

import pytest

from bench.poisson import poisson_available
from bench.scans import COMMANDS_FILE, POISSON_LABELS, REPORT_FILE, ROWS_FILE, main

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("embreex", reason="the virtual scanner casts its rays with Embree")


def test_every_part_writes_rows_a_report_and_a_picture(tmp_path: Path) -> None:
    argv = ["--scans", str(REPO / "tests" / "data" / "scans"), "--seeds", "0",
            "--points", "5000", "--max-iterations", "100", "--resolution", "48",
            "--large-points", "8000", "--large-subsample", "4000", "--out", str(tmp_path)]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (tmp_path / ROWS_FILE).read_text().splitlines()]
    parts = {(row["part"], row["method"]) for row in rows}
    methods = ("fast", *POISSON_LABELS) if poisson_available()[0] else ("fast",)  # open3d
    for part in ("real", "fused", "strays", "single"):
        assert {(part, method) for method in methods} == {p for p in parts if p[0] == part}
    fused = [row for row in rows if row["part"] == "fused"]
    assert all(0 < row["cd1_x100"] and 0 <= row["fscore_0.01"] <= 1 for row in fused)
    real = {row["surface"]: row for row in rows if row["part"] == "real"
            and row["method"] == "fast"}
    assert real["closed"]["watertight"] and not real["trimmed"]["watertight"]
    single = [row for row in rows if row["part"] == "single"]
    assert all(0 <= row["completeness"] <= 1 for row in single)
    large = {(row["case"], row["method"]): row for row in rows if row["part"] == "large"}
    assert {("bunny-1k", "fast"), ("bunny-8k", "fast"), ("bunny-8k", "fast@4k")} <= set(large)
    assert large[("bunny-8k", "fast@4k")]["points"] == 4000
    # each run's own peak memory: a child process with torch, well under the parent's
    assert all(0.1 < large[key]["peak_gib"] < 4 for key in large if key[1].startswith("fast"))
    report = (tmp_path / REPORT_FILE).read_text()
    assert "## fused" in report and "bun000_8k" in report and "CD1 / best Poisson" in report
    assert (tmp_path / "bun000_8k.png").stat().st_size > 10_000
    assert "--max-iterations 100" in (tmp_path / COMMANDS_FILE).read_text()

    # A rerun skips every row already there.
    assert main(argv) == 0
    assert len((tmp_path / ROWS_FILE).read_text().splitlines()) == len(rows)
