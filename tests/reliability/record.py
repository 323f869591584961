"""Recording what each reliability scenario measured, for docs/RELIABILITY.md.

Every scenario calls `record_scenario` once with its measured outcome; the lines go to the JSON
Lines file named by ``RECON_RELIABILITY_RESULTS`` (default ``build/reliability/results.jsonl``
in the repository, which git ignores). `python -m tests.reliability.report` turns the last run's
file into docs/RELIABILITY.md. The scale of the bounded scenarios (load, fuzzing) comes from
``RECON_RELIABILITY_SCALE``: ``ci`` (the default, inside `make test`) or ``full``
(`make test-reliability`).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_ENV = "RECON_RELIABILITY_RESULTS"
SCALE_ENV = "RECON_RELIABILITY_SCALE"
DEFAULT_RESULTS = REPO_ROOT / "build" / "reliability" / "results.jsonl"


def results_path() -> Path:
    """Where this run's scenario lines go."""
    return Path(os.environ.get(RESULTS_ENV) or DEFAULT_RESULTS)


def scale() -> str:
    """``ci`` (bounded sizes, the default) or ``full``."""
    value = os.environ.get(SCALE_ENV, "ci")
    if value not in ("ci", "full"):
        raise ValueError(f"{SCALE_ENV} must be 'ci' or 'full', not {value!r}")
    return value


def scaled(ci: int, full: int) -> int:
    """`ci` inside `make test`, `full` under `make test-reliability`."""
    return full if scale() == "full" else ci


def record_scenario(
    group: str, name: str, outcome: dict[str, Any], *, passed: bool, test: str
) -> None:
    """Append one scenario's measured outcome.

    `group` is the section of RELIABILITY.md ("worker faults", "dependency faults", "hostile
    input", "security", "load"); `outcome` holds what was measured (numbers, statuses, codes);
    `test` is the pytest node id that reproduces it (``tests/reliability/test_x.py::test_y``).
    """
    path = results_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {
        "group": group,
        "name": name,
        "passed": passed,
        "outcome": outcome,
        "test": test,
        "scale": scale(),
        "recorded_at": time.time(),
    }
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(line, default=str) + "\n")
