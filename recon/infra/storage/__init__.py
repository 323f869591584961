"""Object storage: one protocol, two backends (local folder, S3), and the key builder.

storage = build_storage(settings)
storage.put_bytes(job_object_key("acme", job_id, "input.ply"), data)
"""

from recon.infra.settings import Settings
from recon.infra.storage.base import ObjectStorage
from recon.infra.storage.errors import (
    InvalidObjectKey,
    ObjectNotFound,
    StorageError,
    StorageFull,
    StorageUnavailable,
)
from recon.infra.storage.keys import (
    INPUT_DISPLAY_OBJECT_NAME,
    METRICS_OBJECT_NAME,
    PREVIEW_OBJECT_NAME,
    ground_truth_object_name,
    input_object_name,
    is_valid_job_id,
    is_valid_tenant,
    job_object_key,
    job_prefix,
    mesh_object_name,
    run_prefix,
    validate_key,
)
from recon.infra.storage.local import LocalStorage

__all__ = [
    "INPUT_DISPLAY_OBJECT_NAME",
    "METRICS_OBJECT_NAME",
    "PREVIEW_OBJECT_NAME",
    "InvalidObjectKey",
    "LocalStorage",
    "ObjectNotFound",
    "ObjectStorage",
    "StorageError",
    "StorageFull",
    "StorageUnavailable",
    "build_storage",
    "ground_truth_object_name",
    "input_object_name",
    "is_valid_job_id",
    "is_valid_tenant",
    "job_object_key",
    "job_prefix",
    "mesh_object_name",
    "run_prefix",
    "validate_key",
]


def build_storage(settings: Settings) -> ObjectStorage:
    """The backend `settings.storage_backend` names, configured from `settings`."""
    if settings.storage_backend == "local":
        return LocalStorage(settings.objects_dir)
    from recon.infra.storage.s3 import S3Storage  # boto3 only when S3 is configured

    secret = settings.s3_secret_access_key
    storage = S3Storage(
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        public_endpoint_url=settings.s3_public_endpoint_url,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret else None,
        region=settings.s3_region,
        presign_expiry_s=settings.s3_presign_expiry_s,
    )
    if settings.s3_create_bucket:
        storage.ensure_bucket()
    return storage
