"""`recon serve`'s secrets: the API key and the webhook secret, generated once and kept private
in the data folder (the webhook secret from the environment when set), handed to the children."""

import stat
from pathlib import Path

from recon.api import auth
from recon.api.auth import ApiKeyRing
from recon.embedded.local_secrets import (
    GENERATED_KEY_BYTES,
    LOCAL_KEY_FILENAME,
    WEBHOOK_SECRET_FILENAME,
    load_or_create_local_key,
    webhook_secret_for,
)
from recon.embedded.serve import child_environment
from recon.infra.settings import Settings


def test_a_secret_is_generated_once_and_kept_private(tmp_path: Path) -> None:
    secret, path = webhook_secret_for(tmp_path, {})
    assert path == tmp_path / WEBHOOK_SECRET_FILENAME and len(secret) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert webhook_secret_for(tmp_path, {}) == (secret, path)  # the same after a restart


def test_the_environment_wins_and_nothing_is_written(tmp_path: Path) -> None:
    configured = "operator-secret-0123456789abcdef"
    assert webhook_secret_for(tmp_path, {"RECON_WEBHOOK_SECRET": configured}) == (configured, None)
    assert not (tmp_path / WEBHOOK_SECRET_FILENAME).exists()


def test_the_children_get_it_as_a_valid_setting(tmp_path: Path) -> None:
    secret, _ = webhook_secret_for(tmp_path, {})
    env = child_environment(tmp_path, 6379, "local:key-0123456789abcdef", "pw", secret)
    assert env["RECON_WEBHOOK_SECRET"] == secret
    settings = Settings(webhook_secret=env["RECON_WEBHOOK_SECRET"])
    assert settings.webhook_secret is not None
    assert settings.webhook_secret.get_secret_value() == secret


def test_local_key_is_created_once_and_private(tmp_path: Path) -> None:
    key, created = load_or_create_local_key(tmp_path)
    again, created_again = load_or_create_local_key(tmp_path)
    assert created and not created_again and key == again
    assert len(key) >= max(auth.MIN_KEY_CHARS, GENERATED_KEY_BYTES)
    assert stat.S_IMODE((tmp_path / LOCAL_KEY_FILENAME).stat().st_mode) == 0o600
    assert ApiKeyRing.from_spec(auth.local_key_spec(key)).tenant_for(key) == auth.LOCAL_TENANT
