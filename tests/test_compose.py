"""docker-compose.yml and the Dockerfile stay hardened: pulled images pinned to releases, no
secret with a default in the file, and API and worker signing as the service's own MinIO user
(whose policy names only the bucket) rather than as MinIO's root."""

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE = REPO / "docker-compose.yml"
SECRETS = ("REDIS_PASSWORD", "MINIO_ROOT_PASSWORD", "RECON_S3_SECRET_ACCESS_KEY", "RECON_API_KEYS")
LOCAL_BUILDS = {"api", "worker"}  # built from this tree, never pulled


def services() -> dict[str, dict]:
    return yaml.safe_load(COMPOSE.read_text())["services"]


def test_pulled_images_are_pinned_to_a_release() -> None:
    for name, service in services().items():
        if name in LOCAL_BUILDS:
            assert "build" in service
            continue
        image = service["image"]
        repository, _, tag = image.partition(":")
        assert tag and tag != "latest" and re.search(r"\d", tag), f"{name}: {image} is unpinned"
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("ARG") and "_IMAGE=" in line:
            tag = line.split("=", 1)[1].partition(":")[2]
            assert re.fullmatch(r"\d+\.\d+\.\d+[\w.-]*", tag), f"unpinned base image: {line}"


def test_no_secret_has_a_default_in_the_file() -> None:
    text = COMPOSE.read_text()
    for secret in SECRETS:
        uses = re.findall(r"\$\{" + secret + r"(:?[-?])?([^}]*)\}", text)
        assert uses, f"{secret} is never used"
        for operator, _ in uses:
            assert operator == ":?", f"${{{secret}}} must be required (:?), not {operator!r}"
    assert "change-me" not in text


def test_services_sign_as_their_own_least_privileged_user() -> None:
    found = services()
    for name in ("api", "worker"):
        env = found[name]["environment"]
        assert "MINIO_ROOT" not in json.dumps(env), f"{name} sees MinIO's root credentials"
        assert env["RECON_S3_ACCESS_KEY_ID"] == "${RECON_S3_ACCESS_KEY_ID:-recon-service}"
        assert env["RECON_REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?")
    init = found["minio-init"]
    script = " ".join(init["entrypoint"])
    for step in ("mc admin policy create", "mc admin user add", "mc admin policy attach"):
        assert step in script
    policy = json.loads(init["environment"]["SERVICE_POLICY"])
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}
    assert resources == {
        "arn:aws:s3:::${RECON_S3_BUCKET:-recon}",
        "arn:aws:s3:::${RECON_S3_BUCKET:-recon}/*",
    }
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}
    assert not any(action.endswith("*") or action.startswith("admin:") for action in actions)
    assert "--requirepass" in found["redis"]["command"]
