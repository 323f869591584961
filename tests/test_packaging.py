"""The `api` extra is a complete install of the HTTP API without torch, as the Docker image uses it.

The Dockerfile's `api` target runs `pip install '.[api]'` and an import check; this test does the
same natively in a fresh virtual environment (packages from the index, as a user's install would
get them), then builds the app and validates an upload with it.
"""

import subprocess
import venv
from pathlib import Path

import pytest

from tests.conftest import binary_ply, sphere_points

REPO = Path(__file__).resolve().parents[1]
INSTALL_TIMEOUT_S = 600

CHECK = """
import sys
from pathlib import Path

from recon.api.app import create_app
from recon.api.validation import validate_point_cloud
from recon.infra.settings import Settings

app = create_app(Settings(api_keys="acme:acme-test-key-0123456789abcdef", data_dir=sys.argv[2]))
fmt, cloud = validate_point_cloud(Path(sys.argv[1]), "s.ply", max_points=1000, seed=0)
assert fmt == "ply" and len(cloud.points) == 512, (fmt, cloud.points.shape)
loaded = sorted({"torch", "scipy", "skimage", "recon.worker", "recon.engine.pipeline"}
                & set(sys.modules))
print("LOADED", loaded)
"""


@pytest.mark.slow
def test_the_api_extra_runs_the_api_without_torch(tmp_path: Path) -> None:
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         f"{REPO}[api]"],
        capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    installed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"],
                               capture_output=True, text=True, check=True).stdout.lower()
    assert "recon-service==" in installed and "torch==" not in installed
    upload = tmp_path / "s.ply"
    upload.write_bytes(binary_ply(sphere_points()))
    done = subprocess.run(
        [str(python), "-c", CHECK, str(upload), str(tmp_path / "data")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "LOADED []" in done.stdout, done.stdout
