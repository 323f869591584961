"""Settings come from RECON_* variables and refuse inconsistent limits."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from recon.infra.settings import Settings


def test_reads_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECON_REDIS_URL", "redis://10.0.0.1:6380/2")
    monkeypatch.setenv("RECON_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("RECON_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("RECON_S3_SECRET_ACCESS_KEY", "hush")
    monkeypatch.setenv("RECON_MAX_UPLOAD_BYTES", "1048576")
    settings = Settings()
    assert settings.redis_url == "redis://10.0.0.1:6380/2"
    assert settings.effective_broker_url == settings.redis_url
    assert settings.storage_backend == "s3"
    assert settings.objects_dir == tmp_path / "objects"
    assert settings.max_upload_bytes == 1048576
    assert "hush" not in repr(settings)


def test_safe_defaults() -> None:
    settings = Settings(_env_file=None)
    assert settings.host == "127.0.0.1"
    assert settings.api_keys.get_secret_value() == ""
    assert settings.job_soft_time_limit_s < settings.job_hard_time_limit_s
    assert settings.job_hard_time_limit_s < settings.broker_visibility_timeout_s


@pytest.mark.parametrize(
    "values",
    [
        {"job_soft_time_limit_s": 100, "job_hard_time_limit_s": 100},
        {"job_hard_time_limit_s": 5000, "broker_visibility_timeout_s": 4000},
        {"heartbeat_interval_s": 10, "heartbeat_timeout_s": 15},
        {"heartbeat_interval_s": 10, "lease_ttl_s": 5},
        {"list_default_limit": 500, "list_max_limit": 100},
        {"retry_backoff_max_s": 60, "queued_resend_after_s": 60},
        {"storage_backend": "ftp"},
        {"port": 0},
    ],
)
def test_refuses_inconsistent_values(values: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**values)


def test_env_example_lists_every_variable() -> None:
    example = (Path(__file__).parents[2] / ".env.example").read_text()
    names = {line.split("=", 1)[0].lstrip("# ") for line in example.splitlines() if "=" in line}
    expected = {f"RECON_{name.upper()}" for name in Settings.model_fields}
    assert expected <= names
