"""Property-based fuzzing of every operation in the service's own OpenAPI schema: no 5xx.

Schemathesis reads ``/openapi.json`` from `create_app(settings)` (real Redis, local storage) and
generates, per operation, requests that follow the schema (positive) and requests that break
it (negative: wrong types, missing fields, hostile strings in paths, queries, headers and
multipart bodies), sent in-process over ASGI with a valid API key. Every answer must be below
500 (`not_a_server_error`). Operations whose inputs leave nothing to break (no parameters, or
one free-form string) have no negative examples; that is counted, not failed. The example count
per operation and mode is `scaled(ci=..., full=...)`.
"""

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hypothesis
import hypothesis.configuration
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from recon.api.app import create_app
from recon.infra.settings import Settings
from tests.reliability.record import record_scenario, scaled

pytestmark = pytest.mark.reliability

EXAMPLES = scaled(ci=40, full=400)
"""Generated requests per operation and generation mode."""


def fuzz_settings(settings: Settings) -> Settings:
    """Room for every accepted upload, and event streams that end even for a live job."""
    overrides = {"max_concurrent_jobs_per_tenant": 10_000, "events_max_duration_s": 2.0}
    return Settings(**{**settings.model_dump(), **overrides})


@pytest.fixture
def hypothesis_home(tmp_path: Path) -> Iterator[None]:
    """Hypothesis's caches in the test's folder, not a .hypothesis/ in the repository."""
    hypothesis.configuration.set_hypothesis_home_dir(tmp_path / "hypothesis")
    yield
    hypothesis.configuration.set_hypothesis_home_dir(None)


def test_no_operation_answers_a_server_error(
    settings: Settings,
    auth_headers: dict[str, str],
    hypothesis_home: None,
    request: pytest.FixtureRequest,
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzz_settings(settings)))
    statuses: Counter[str] = Counter()
    failures: list[str] = []
    operations, without_negative = 0, []

    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis.settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,  # no example database: every run starts afresh
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            def send(case: Any) -> None:
                answer = case.call(headers=auth_headers)
                statuses[f"{answer.status_code // 100}xx"] += 1
                case.validate_response(answer, checks=[not_a_server_error], headers=auth_headers)

            try:
                send()
            except Unsatisfiable:
                without_negative.append(operation.label)  # nothing in its inputs to break
            except (Exception, BaseExceptionGroup) as exc:  # shrunk; fuzz the other operations
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:300]}")

    calls = sum(statuses.values())
    outcome = {
        "operations": operations,
        "requests": calls,
        "examples_per_operation_and_mode": EXAMPLES,
        "answers": dict(sorted(statuses.items())),
        "server_errors": statuses["5xx"],
        "failures": sorted(set(failures))[:10],
        "operations_without_negative_inputs": len(without_negative),
    }
    passed = not failures and statuses["5xx"] == 0 and calls > operations
    record_scenario(
        "hostile input",
        "schemathesis: every operation, schema-valid and schema-breaking requests",
        outcome,
        passed=passed,
        test=request.node.nodeid,
    )
    assert passed, outcome
