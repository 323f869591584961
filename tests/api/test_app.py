"""The app factory: one error body everywhere, docs, refusing to run keyless, no torch."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recon.api.app import create_app
from recon.api.auth import MissingApiKeys
from recon.infra.settings import Settings
from recon.schemas import ReconstructionParams
from tests.conftest import API_KEY, TEST_REDIS_URL


def test_framework_errors_use_the_single_error_body(client: TestClient) -> None:
    for response, status, code in [
        (client.get("/no/such/route"), 404, "not_found"),
        (client.put("/healthz"), 405, "method_not_allowed"),
        (client.get("/reconstructions?limit=abc", headers={"X-API-Key": API_KEY}), 422, None),
    ]:
        assert response.status_code == status
        error = response.json()["error"]
        assert set(error) == {"code", "message", "detail"}
        assert code is None or error["code"] == code


def test_docs_and_openapi(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    paths = set(spec["paths"])
    assert {"/v1/reconstructions", "/v1/reconstructions/{job_id}/mesh", "/readyz"} <= paths
    upload = spec["paths"]["/v1/reconstructions"]["post"]["requestBody"]["content"]
    assert "file" in upload["multipart/form-data"]["schema"]["properties"]
    # the params examples are shown and each is a valid request
    examples = upload["multipart/form-data"]["schema"]["properties"]["params"]["examples"]
    assert len(examples) >= 2
    for example in examples:
        ReconstructionParams.model_validate_json(example)
    assert {"target_faces", "up_axis", "units"} <= set(
        spec["components"]["schemas"]["ReconstructionParams"]["properties"])


def test_refuses_to_start_without_api_keys(settings: Settings) -> None:
    with pytest.raises(MissingApiKeys):
        create_app(Settings(**{**settings.model_dump(), "api_keys": ""}))


def test_service_never_imports_torch(tmp_path: object, redis_client: object) -> None:
    """Import the app, validate a real upload, and check torch stayed out of the process."""
    script = textwrap.dedent(
        """
        import sys
        from fastapi.testclient import TestClient
        from recon.api.app import create_app
        from recon.infra.settings import Settings
        from tests.conftest import binary_ply, sphere_points

        client = TestClient(create_app(Settings()))
        headers = {"X-API-Key": "acme-test-key-0123456789abcdef"}
        files = {"file": ("s.ply", binary_ply(sphere_points()), "application/octet-stream")}
        answer = client.post("/reconstructions", headers=headers, files=files)
        assert answer.status_code == 202, answer.text
        assert client.get("/readyz").status_code == 200
        heavy = sorted(m for m in ("torch", "skimage", "scipy.spatial", "recon.worker")
                       if m in sys.modules)
        print("HEAVY", heavy)
        sys.exit(1 if {"torch", "recon.worker"} & set(sys.modules) else 0)
        """
    )
    env = {
        **os.environ,
        "RECON_REDIS_URL": TEST_REDIS_URL,
        "RECON_DATA_DIR": str(tmp_path),
        "RECON_API_KEYS": "acme:acme-test-key-0123456789abcdef",
    }
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "HEAVY" in done.stdout and "torch" not in done.stdout and "worker" not in done.stdout
