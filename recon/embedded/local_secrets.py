"""The embedded default's secrets, each kept in a private file of the data folder: the API key
(``api_key``, printed once) and the webhook signing secret (``webhook_secret``).

Generated at the first start and read back at every later one, so clients and webhook receivers
configured with them keep working across restarts. Production processes take both from the
environment (`RECON_API_KEYS`, `RECON_WEBHOOK_SECRET`).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

LOCAL_KEY_FILENAME = "api_key"
WEBHOOK_SECRET_FILENAME = "webhook_secret"
GENERATED_KEY_BYTES = 32
GENERATED_SECRET_BYTES = 32
SECRET_FILE_MODE = 0o600


def read_or_create_secret(path: Path, generate: Callable[[], str]) -> tuple[str, bool]:
    """The secret in `path`, or a new one from `generate` written there (0600, never over a
    file that appeared meanwhile); the flag says whether it was created now."""
    if path.is_file():
        return path.read_text(encoding="utf-8").strip(), False
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = generate()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    return secret, True


def load_or_create_local_key(data_dir: Path) -> tuple[str, bool]:
    """The API key of `recon serve` and whether it was created now (then it is printed once)."""
    return read_or_create_secret(
        Path(data_dir) / LOCAL_KEY_FILENAME, lambda: secrets.token_urlsafe(GENERATED_KEY_BYTES)
    )


def webhook_secret_for(data_dir: Path, environ: Mapping[str, str]) -> tuple[str, Path | None]:
    """The children's `RECON_WEBHOOK_SECRET` and the file holding it (None: from the
    environment)."""
    configured = environ.get("RECON_WEBHOOK_SECRET", "").strip()
    if configured:
        return configured, None
    path = Path(data_dir) / WEBHOOK_SECRET_FILENAME
    secret, _ = read_or_create_secret(path, lambda: secrets.token_hex(GENERATED_SECRET_BYTES))
    return secret, path
