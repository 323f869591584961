"""The README stays true: every setting is in its configuration table, and every variable in
the table is a real setting (the walkthrough itself runs in tests/e2e/test_embedded_serve.py)."""

import re
from pathlib import Path

from recon.infra.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def documented_variables() -> set[str]:
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(RECON_[A-Z0-9_]+)` \|", section, re.MULTILINE))


def test_configuration_table_matches_the_settings() -> None:
    expected = {f"RECON_{name.upper()}" for name in Settings.model_fields}
    documented = documented_variables()
    assert expected - documented == set(), "settings missing from README.md"
    assert documented - expected == set(), "README.md documents settings that do not exist"


def test_compose_only_sets_real_settings() -> None:
    compose = (README.parent / "docker-compose.yml").read_text()
    used = set(re.findall(r"^\s+(RECON_[A-Z0-9_]+):", compose, re.MULTILINE))
    assert used and used <= {f"RECON_{name.upper()}" for name in Settings.model_fields}


def test_parameters_table_matches_the_params_schema() -> None:
    from recon.schemas import ReconstructionParams

    section = README.read_text().split("### Parameters", 1)[1].split("\n### ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.MULTILINE))
    assert documented == set(ReconstructionParams.model_fields)
