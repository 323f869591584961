"""The embedded default's webhook signing secret: ``RECON_WEBHOOK_SECRET`` when set, else one
generated at the first start and kept in ``DATA_DIR/webhook_secret`` (mode 0600), so receivers
configured with it keep verifying across restarts."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

WEBHOOK_SECRET_FILENAME = "webhook_secret"
GENERATED_SECRET_BYTES = 32
SECRET_FILE_MODE = 0o600


def webhook_secret_for(data_dir: Path, environ: Mapping[str, str]) -> tuple[str, Path | None]:
    """The children's `RECON_WEBHOOK_SECRET` and the file holding it (None: from the
    environment)."""
    configured = environ.get("RECON_WEBHOOK_SECRET", "").strip()
    if configured:
        return configured, None
    path = Path(data_dir) / WEBHOOK_SECRET_FILENAME
    if path.is_file():
        return path.read_text(encoding="ascii").strip(), path
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(GENERATED_SECRET_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SECRET_FILE_MODE)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secret + "\n")
    return secret, path
