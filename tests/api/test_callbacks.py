"""Submissions with a `callback_url` through the real app: every URL the service may not call is
refused with 422 before anything is stored; an allow-listed one is accepted and shown."""

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import httpx
import pytest
from fastapi.testclient import TestClient

from recon.api.app import create_app
from recon.infra.settings import Settings
from tests.api.support import context_of
from tests.conftest import TENANT

Headers = dict[str, str]
SECRET = "whsec-api-test-0123456789abcdef"

REFUSED = [
    "http://localhost/hook",
    "http://[::1]/hook",
    "http://2130706433/hook",
    "https://2130706433/hook",
    "https://10.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::ffff:127.0.0.1]/hook",
    "http://127.0.0.1/hook",
    "https://127.1/hook",
    "https://user:pw@93.184.216.34/hook",
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared test settings with a webhook secret and an empty allow-list."""
    return Settings(**{**settings.model_dump(), "webhook_secret": SECRET})


@pytest.fixture
def client_with(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """A factory of TestClients on `settings` with some values changed."""
    with ExitStack() as stack:

        def make(**changes: object) -> TestClient:
            changed = Settings(**{**settings.model_dump(), **changes})  # type: ignore[arg-type]
            return stack.enter_context(TestClient(create_app(changed)))

        yield make


def submit(client: TestClient, headers: Headers, ply: bytes, callback_url: str) -> httpx.Response:
    params = json.dumps({"preset": "fast", "callback_url": callback_url})
    files = {"file": ("scan.ply", ply, "application/octet-stream")}
    return client.post("/v1/reconstructions", headers=headers, files=files,
                       data={"params": params})


@pytest.mark.parametrize("url", REFUSED)
def test_refused_callback_urls_answer_422_and_nothing_is_accepted(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes, url: str
) -> None:
    response = submit(client, auth_headers, sphere_ply_bytes, url)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_callback_url"
    assert error["detail"] == {"callback_url": url}
    context = context_of(client)
    assert context.job_store.list_for_tenant(TENANT, limit=10).items == []
    assert context.storage.list_keys(f"tenants/{TENANT}/") == []


def test_the_message_says_how_to_fix_it(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    message = submit(client, auth_headers, sphere_ply_bytes,
                     "http://localhost/hook").json()["error"]["message"]
    assert "https" in message and "RECON_CALLBACK_ALLOWED_HOSTS" in message


def test_malformed_callback_urls_fail_the_params_schema(
    client: TestClient, auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    for url in ("ftp://93.184.216.34/x", "not a url", "https://" + "a" * 2050 + ".com/"):
        response = submit(client, auth_headers, sphere_ply_bytes, url)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_params"


def test_an_allow_listed_callback_is_accepted_and_shown_pending(
    client_with: Callable[..., TestClient], auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    client = client_with(callback_allowed_hosts="localhost")
    url = "http://localhost:9/hook"
    response = submit(client, auth_headers, sphere_ply_bytes, url)
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["params"]["callback_url"] == url
    assert job["callback"] == {"url": url, "status": "pending", "delivery_id": None,
                               "attempts": 0, "last_error": None, "delivered_at": None}


def test_allow_listing_a_name_does_not_allow_its_addresses(
    client_with: Callable[..., TestClient], auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    client = client_with(callback_allowed_hosts="localhost")
    for url in ("http://127.0.0.1/hook", "http://2130706433/hook", "https://[::1]/hook"):
        response = submit(client, auth_headers, sphere_ply_bytes, url)
        assert response.status_code == 422, url
        assert response.json()["error"]["code"] == "invalid_callback_url"


def test_without_a_webhook_secret_callbacks_are_refused_with_the_fix(
    client_with: Callable[..., TestClient], auth_headers: Headers, sphere_ply_bytes: bytes
) -> None:
    unsigned_client = client_with(webhook_secret=None, callback_allowed_hosts="localhost")
    response = submit(unsigned_client, auth_headers, sphere_ply_bytes, "http://localhost:9/hook")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "webhooks_not_configured"
    assert "RECON_WEBHOOK_SECRET" in error["message"]
    no_callback = unsigned_client.post(
        "/v1/reconstructions", headers=auth_headers,
        files={"file": ("scan.ply", sphere_ply_bytes, "application/octet-stream")})
    assert no_callback.status_code == 202 and no_callback.json()["callback"] is None
