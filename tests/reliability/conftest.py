"""Fixtures of the process-level reliability scenarios (tests/reliability/harness.py).

A module that uses `stack` gets one private stack (Redis, SeaweedFS S3, `recon api` and its
workers) shared by its tests; the module's ``STACK_OPTIONS`` dict (keyword arguments of
`harness.Stack`) shapes it. Before each test the stack is healed: Redis and S3 up again,
frozen pool processes resumed, dead workers restarted. Nothing here is autouse, so the other
reliability modules (security, fuzzing) are unaffected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.reliability.harness import (
    FAULT_POINTS,
    TINY_POINTS,
    Stack,
    running,
    sphere_ply,
)


@pytest.fixture(scope="module")
def module_stack(request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The module's stack, started once and torn down after its last test."""
    options = dict(getattr(request.module, "STACK_OPTIONS", {}))
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with running(Stack(root, **options)) as stack:
        yield stack


@pytest.fixture
def stack(module_stack: Stack) -> Stack:
    """The module's stack, healed for this test (dependencies up, every worker alive)."""
    module_stack.heal()
    return module_stack


@pytest.fixture(scope="session")
def fault_points(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A point cloud whose job trains long enough to be hit mid-training."""
    return sphere_ply(tmp_path_factory.mktemp("clouds") / "fault.ply", FAULT_POINTS)


@pytest.fixture(scope="session")
def tiny_points(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The point cloud of the smallest real job."""
    return sphere_ply(tmp_path_factory.mktemp("clouds") / "tiny.ply", TINY_POINTS)
