"""`recon reconstruct` into a log (stderr not a terminal): a few plain progress lines."""

from pathlib import Path

import pytest

from recon.engine.cli import main
from tests.conftest import binary_ply, sphere_points

MAX_LINES = 12
"""One line per stage (prepare, train, mesh, metrics) and one per 5 s, plus the summary."""


def test_reconstruct_logs_a_few_plain_lines(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    cloud, mesh = tmp_path / "sphere.ply", tmp_path / "sphere.glb"
    cloud.write_bytes(binary_ply(sphere_points(400)))
    assert main(["reconstruct", str(cloud), "-o", str(mesh), "--preset", "fast", "--device",
                 "cpu", "--max-iterations", "50", "--resolution", "32"]) == 0
    log = capsys.readouterr().err
    lines = log.splitlines()
    assert "\r" not in log and len(lines) <= MAX_LINES, log
    assert [line.split()[0] for line in lines[:2]] == ["prepare", "train"]
    assert any(line.startswith("train    100.0%  step 50/50") for line in lines), log
    assert lines[-1].startswith(f"wrote {mesh}")
