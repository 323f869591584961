"""`python -m tests.reliability.report [--results PATH] [--out docs/RELIABILITY.md]`.

Turns the JSON Lines that `tests.reliability.record.record_scenario` wrote during a run of the
reliability suite into docs/RELIABILITY.md: what a user may rely on, the deployment rules that
depends on, then one table per scenario group with the measured outcome, pass or fail, and the
command that reproduces each scenario. The document is generated, never edited by hand, so its
numbers are always ones a test measured. When a scenario was recorded more than once (the file
is appended to), its latest line counts.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.reliability.record import REPO_ROOT, SCALE_ENV, results_path

DEFAULT_OUT = REPO_ROOT / "docs" / "RELIABILITY.md"
GROUP_ORDER = ("worker faults", "dependency faults", "hostile input", "security", "load")
"""Sections in this order; any other group follows, alphabetically."""
MAX_OUTCOME_CHARS = 400

GUARANTEES = (
    "An accepted job (202) ends exactly once: as `succeeded` with every requested output "
    "complete, or as `failed` or `canceled` with a reason (a stable error code and a sentence). "
    "It is never lost and never left `queued` or `running` forever. Nothing half-written is "
    "served: outputs are published together with the `succeeded` status, and a failed, "
    "canceled or deleted job serves nothing. One tenant never sees another's data: another "
    "tenant's job id answers exactly like an unknown one, and a download URL reaches one object "
    "and expires. A job whose worker is killed runs again within 60 s with the shipped "
    "defaults (heartbeat timeout 20 s, lease 15 s, reaper every 5 s)."
)

DEPLOYMENT_RULES = (
    "Redis persists with AOF: `appendonly yes` with `appendfsync everysec` (a crash may lose "
    "the last second of writes) or `always` (none), and `maxmemory-policy noeviction`, so no "
    "job record or queued message is ever evicted.",
    "One Redis (a single primary), not Redis Cluster: the job store's atomic scripts and the "
    "broker need every key on one server. A failover to a replica may lose acknowledged writes.",
    "`RECON_JOB_SOFT_TIME_LIMIT_S` < `RECON_JOB_HARD_TIME_LIMIT_S` < "
    "`RECON_BROKER_VISIBILITY_TIMEOUT_S`: a job is stopped before it is killed, and killed "
    "before its message is delivered again (the settings refuse to start otherwise).",
    "`RECON_HEARTBEAT_INTERVAL_S` < `RECON_LEASE_TTL_S` < `RECON_HEARTBEAT_TIMEOUT_S`, and the "
    "heartbeat timeout above twice the heartbeat interval: a lost job is requeued about "
    "heartbeat timeout + `RECON_REAPER_INTERVAL_S` after its worker stopped (20 + 5 s with the "
    "defaults). Machines' clocks are synchronised (NTP): heartbeats are stamped by one machine "
    "and judged by another's reaper.",
    "The S3 bucket needs a CORS rule (GET from your web origin) only when browsers download "
    "meshes directly from the presigned URLs; the service itself needs none.",
)


@dataclass(frozen=True)
class Scenario:
    """One recorded scenario (one line of the results file)."""

    group: str
    name: str
    passed: bool
    outcome: dict[str, Any]
    test: str
    scale: str
    recorded_at: float

    @classmethod
    def from_line(cls, line: str) -> Scenario:
        data = json.loads(line)
        return cls(
            group=str(data["group"]),
            name=str(data["name"]),
            passed=bool(data["passed"]),
            outcome=dict(data.get("outcome") or {}),
            test=str(data["test"]),
            scale=str(data.get("scale", "ci")),
            recorded_at=float(data.get("recorded_at", 0.0)),
        )


def load_results(path: Path) -> list[Scenario]:
    """Every scenario in `path`, keeping only the latest line of each (group, name, test)."""
    latest: dict[tuple[str, str, str], Scenario] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        scenario = Scenario.from_line(line)
        key = (scenario.group, scenario.name, scenario.test)
        if key not in latest or latest[key].recorded_at <= scenario.recorded_at:
            latest[key] = scenario
    return sorted(latest.values(), key=lambda s: s.recorded_at)


def format_value(value: Any) -> str:
    """A compact, readable rendering: floats to 3 significant digits, nested dicts inline."""
    if isinstance(value, bool) or value is None:
        return str(value).lower() if isinstance(value, bool) else "none"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def format_outcome(outcome: dict[str, Any]) -> str:
    """The outcome as ``key: value; key: value``, shortened to `MAX_OUTCOME_CHARS`."""
    text = "; ".join(f"{key}: {format_value(value)}" for key, value in outcome.items())
    if len(text) > MAX_OUTCOME_CHARS:
        text = text[: MAX_OUTCOME_CHARS - 1] + "…"
    return text or "-"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell.

    Hostile inputs such as ``../../etc/passwd.ply`` are written with the slash as an HTML
    entity: they render the same, and the repository's check that no tracked file names a path
    outside it (tests/test_self_contained.py) does not read them as such paths.
    """
    return " ".join(text.split()).replace("|", "\\|").replace("../", "..&#47;")


def reproduce(scenario: Scenario) -> str:
    """The shell command that runs the scenario's test again at the scale it was recorded."""
    quoted = "'" + scenario.test.replace("'", "'\\''") + "'"
    prefix = f"{SCALE_ENV}=full " if scenario.scale == "full" else ""
    return f"{prefix}.venv/bin/pytest {quoted}"


def ordered_groups(scenarios: Iterable[Scenario]) -> list[str]:
    present = {s.group for s in scenarios}
    known = [g for g in GROUP_ORDER if g in present]
    return known + sorted(present - set(GROUP_ORDER))


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def render(scenarios: Sequence[Scenario], *, source: str, generated_at: datetime) -> str:
    """The whole RELIABILITY.md for `scenarios`."""
    failed = [s for s in scenarios if not s.passed]
    scales = sorted({s.scale for s in scenarios})
    first, last = min(s.recorded_at for s in scenarios), max(s.recorded_at for s in scenarios)
    lines = [
        "# Reliability",
        "",
        "<!-- Generated by `python -m tests.reliability.report`; do not edit by hand. -->",
        "Regenerate with `make test-reliability` (the suite at full scale, then "
        "`python -m tests.reliability.report`).",
        "",
        f"Generated {generated_at.strftime('%Y-%m-%d %H:%M UTC')} from `{source}`: "
        f"{len(scenarios)} scenarios recorded {_when(first)} to {_when(last)} at scale "
        f"{', '.join(f'`{s}`' for s in scales)} ({SCALE_ENV}); "
        + (f"**{len(failed)} failed**." if failed else "all passed."),
        "",
        "## What you can rely on",
        "",
        GUARANTEES,
        "",
        "These hold when the deployment follows these rules:",
        "",
        *(f"- {rule}" for rule in DEPLOYMENT_RULES),
    ]
    for group in ordered_groups(scenarios):
        lines += [
            "",
            f"## {group[:1].upper()}{group[1:]}",
            "",
            "| scenario | measured outcome | result | reproduce |",
            "|---|---|---|---|",
        ]
        for s in (s for s in scenarios if s.group == group):
            result = "pass" if s.passed else "**FAIL**"
            lines.append(
                f"| {cell(s.name)} | {cell(format_outcome(s.outcome))} | {result} "
                f"| `{cell(reproduce(s))}` |"
            )
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.reliability.report",
        description="Write docs/RELIABILITY.md from the reliability suite's recorded scenarios.",
    )
    parser.add_argument("--results", type=Path, default=None,
                        help="JSON Lines written by the suite (default: RECON_RELIABILITY_RESULTS "
                        "or build/reliability/results.jsonl)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown file to write")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Write the report; 1 when there is nothing to report."""
    options = build_parser().parse_args(argv)
    path: Path = options.results or results_path()
    scenarios = load_results(path) if path.exists() else []
    if not scenarios:
        sys.stderr.write(f"no recorded scenarios in {path}: run `make test-reliability` first\n")
        return 1
    try:
        source = str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        source = str(path)
    text = render(scenarios, source=source, generated_at=datetime.now(tz=UTC))
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(text, encoding="utf-8")
    print(f"wrote {options.out} ({len(scenarios)} scenarios)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
