"""The API under /v1, and the unversioned paths kept as aliases of the same routes."""

from fastapi.testclient import TestClient


def test_v1_and_alias_paths_serve_the_same_job(
    client: TestClient, auth_headers: dict[str, str], sphere_ply_bytes: bytes
) -> None:
    files = {"file": ("scan.ply", sphere_ply_bytes, "application/octet-stream")}
    answer = client.post("/v1/reconstructions", files=files, headers=auth_headers)
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert answer.headers["location"] == f"/v1/reconstructions/{job['id']}"
    assert job["links"]["self"] == f"/v1/reconstructions/{job['id']}"
    assert job["links"]["events"] == f"/v1/reconstructions/{job['id']}/events"

    versioned = client.get(f"/v1/reconstructions/{job['id']}", headers=auth_headers)
    alias = client.get(f"/reconstructions/{job['id']}", headers=auth_headers)
    assert versioned.status_code == alias.status_code == 200
    assert versioned.json() == alias.json()
    listed = client.get("/v1/reconstructions", headers=auth_headers).json()["items"]
    assert [item["id"] for item in listed] == [job["id"]]


def test_unknown_version_is_404(client: TestClient, auth_headers: dict[str, str]) -> None:
    answer = client.get("/v2/reconstructions", headers=auth_headers)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def test_openapi_documents_the_versioned_paths_once(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/reconstructions" in paths and "/v1/reconstructions/{job_id}" in paths
    assert not [path for path in paths if path.startswith("/reconstructions")]
    # operations stay outside the version: load balancers and Prometheus keep their URLs
    assert {"/healthz", "/readyz"} <= set(paths)
