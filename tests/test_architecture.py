"""The package boundaries of docs/ARCHITECTURE.md hold, and the check fails when one is crossed.

`lint-imports` checks the contracts in pyproject.toml over the static import graph (imports inside
functions and under TYPE_CHECKING included). To show that the check can fail, each forbidden
import below is added to a copy of the package and must break the contract that forbids it. The
package diagram in docs/ARCHITECTURE.md is compared with the import graph the same way.
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the `recon` package and pyproject.toml found in `root`."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=root, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
        capture_output=True, text=True, timeout=120,
    )


def test_every_contract_is_kept() -> None:
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    ("recon/infra/settings.py", "import torch",
     "The shared infrastructure imports neither FastAPI, torch nor the worker"),
    ("recon/infra/job_store.py", "from recon.api import errors",
     "Each package imports only the layers below it"),
    ("recon/api/app.py", "from recon.worker import celery_app",
     "The API never loads torch, the worker"),
    ("recon/api/validation.py", "from recon.engine import presets",
     "The API uses only the engine's torch-free formats module"),
    ("recon/engine/meshing.py", "import redis",
     "The engine is a pure library"),
    ("recon/worker/job_run.py", "from recon.worker import tasks",
     "No import cycles between the modules of any package"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path: Path, module: str, line: str,
                                                broken: str) -> None:
    shutil.copytree(REPO / "recon", tmp_path / "recon",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{line}  # the forbidden import\n")
    done = lint_imports(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    report = " ".join(done.stdout.split())  # contract names wrap across lines
    assert " ".join(broken.split()) in report and "BROKEN" in report, report


ARCHITECTURE = REPO / "docs" / "ARCHITECTURE.md"
NODE = re.compile(r'^\s*(\w+)\["(recon(?:\.\w+)*)"\]\s*$', re.MULTILINE)
SOLID_EDGE = re.compile(r"^\s*(\w+)\s*-->\s*(\w+)\s*$", re.MULTILINE)


def drawn_packages_and_edges(document: str) -> tuple[list[str], set[tuple[str, str]]]:
    """The packages and solid arrows of the mermaid diagram in `document`."""
    diagram = document.split("```mermaid", 1)[1].split("```", 1)[0]
    names = dict(NODE.findall(diagram))
    edges = {(names[a], names[b]) for a, b in SOLID_EDGE.findall(diagram)}
    return list(names.values()), edges


def package_of(module: str, packages: list[str]) -> str | None:
    """The most specific drawn package holding `module`."""
    holders = [p for p in packages if module == p or module.startswith(p + ".")]
    return max(holders, key=len) if holders else None


def imported_packages(packages: list[str]) -> set[tuple[str, str]]:
    """(importer, imported) for every import between two of `packages` in the real code."""
    import grimp

    graph = grimp.build_graph("recon")
    edges = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            edge = (package_of(module, packages), package_of(imported, packages))
            if edge[0] is not None and edge[1] is not None and edge[0] != edge[1]:
                edges.add((edge[0], edge[1]))
    return edges


def test_the_architecture_diagram_is_the_import_graph() -> None:
    packages, drawn = drawn_packages_and_edges(ARCHITECTURE.read_text())
    assert len(packages) >= 8 and drawn == imported_packages(packages)


def test_a_diagram_missing_an_arrow_does_not_match() -> None:
    document = ARCHITECTURE.read_text().replace("    api --> infra\n", "")
    packages, drawn = drawn_packages_and_edges(document)
    assert drawn != imported_packages(packages)
