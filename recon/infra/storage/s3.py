"""S3 storage (boto3): any S3-protocol server (AWS, MinIO, SeaweedFS). Downloads use presigned URLs.

An S3 PUT (and a completed multipart upload) is atomic, so objects are whole when visible.

Presigned URLs are followed by clients, not by our processes, and a SigV4 signature covers the
host: inside a container network the endpoint the service uses (``http://minio:9000``) is one
that clients cannot resolve. So URLs are signed by a second client on the public endpoint
(same credentials, region and addressing style); every other request uses the internal one.
"""

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from recon.infra.storage.base import DEFAULT_CHUNK_BYTES
from recon.infra.storage.errors import ObjectNotFound, StorageUnavailable
from recon.infra.storage.keys import validate_key

NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
DELETE_BATCH = 1000
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 30
MAX_RETRY_ATTEMPTS = 3


def _client(session: boto3.session.Session, endpoint_url: str | None) -> Any:
    """An S3 client of `session` on `endpoint_url` (None: AWS), path-style, SigV4."""
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"max_attempts": MAX_RETRY_ATTEMPTS, "mode": "standard"},
    )
    return session.client("s3", endpoint_url=endpoint_url, config=config)


class S3Storage:
    """`ObjectStorage` over one S3 bucket."""

    backend = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        access_key_id: str | None,
        secret_access_key: str | None,
        region: str,
        presign_expiry_s: int,
        public_endpoint_url: str | None = None,
    ) -> None:
        self.bucket = bucket
        self.presign_expiry_s = presign_expiry_s
        session = boto3.session.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            region_name=region,
        )
        self.client: Any = _client(session, endpoint_url)
        public = public_endpoint_url or endpoint_url
        self.presign_client: Any = (
            self.client if public == endpoint_url else _client(session, public)
        )

    def _call(self, key: str | None, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if key is not None and code in NOT_FOUND_CODES:
                raise ObjectNotFound(key) from exc
            raise StorageUnavailable(f"S3 {operation} failed: {code or exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 {operation} failed: {exc}") from exc

    def ensure_bucket(self) -> None:
        """Create the bucket when it does not exist yet (development setups)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self._call(None, "create_bucket", Bucket=self.bucket)
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 head_bucket failed: {exc}") from exc

    def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> None:
        """Store `data` under `key` with one PUT."""
        extra = {"ContentType": content_type} if content_type else {}
        key = validate_key(key)
        self._call(None, "put_object", Bucket=self.bucket, Key=key, Body=data, **extra)

    def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> None:
        """Upload the file at `path` (multipart for large files; visible when complete)."""
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.upload_file(
                str(path), self.bucket, validate_key(key), ExtraArgs=extra, Config=TransferConfig()
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"S3 upload failed: {exc}") from exc

    def get_bytes(self, key: str) -> bytes:
        """Return the object's bytes; raises `ObjectNotFound`."""
        answer = self._call(key, "get_object", Bucket=self.bucket, Key=validate_key(key))
        data: bytes = answer["Body"].read()
        return data

    def download_to(self, key: str, path: Path) -> None:
        """Write the object to `path`; raises `ObjectNotFound`."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        answer = self._call(key, "get_object", Bucket=self.bucket, Key=validate_key(key))
        # Closing the body returns its connection to the pool even when a write fails.
        with contextlib.closing(answer["Body"]) as body, open(path, "wb") as handle:
            for chunk in body.iter_chunks(DEFAULT_CHUNK_BYTES):
                handle.write(chunk)

    def iter_bytes(self, key: str, chunk_size: int = DEFAULT_CHUNK_BYTES) -> Iterator[bytes]:
        """Yield the object in chunks; raises `ObjectNotFound` at the call."""
        answer = self._call(key, "get_object", Bucket=self.bucket, Key=validate_key(key))
        return _closing_chunks(answer["Body"], chunk_size)

    def exists(self, key: str) -> bool:
        """True when an object is stored under `key`."""
        try:
            self.size(key)
        except ObjectNotFound:
            return False
        return True

    def size(self, key: str) -> int:
        """The object's size in bytes; raises `ObjectNotFound`."""
        answer = self._call(key, "head_object", Bucket=self.bucket, Key=validate_key(key))
        return int(answer["ContentLength"])

    def delete(self, key: str) -> bool:
        """Remove one object; True when it existed."""
        existed = self.exists(key)
        self._call(None, "delete_object", Bucket=self.bucket, Key=validate_key(key))
        return existed

    def list_keys(self, prefix: str) -> list[str]:
        """Keys under `prefix` (ending in '/'), sorted."""
        validate_key(prefix, prefix=True)
        keys: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            for page in pages:
                keys.extend(item["Key"] for item in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnavailable(f"S3 list failed: {exc}") from exc
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix` (which must end in '/'); return the count."""
        if not prefix.endswith("/"):
            raise ValueError("a prefix must end with '/'")
        keys = self.list_keys(prefix)
        for start in range(0, len(keys), DELETE_BATCH):
            batch = [{"Key": k} for k in keys[start : start + DELETE_BATCH]]
            answer = self._call(
                None, "delete_objects", Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            errors = answer.get("Errors")
            if errors:  # some objects refused (throttled, access denied): the call may be retried
                first = errors[0]
                raise StorageUnavailable(
                    f"S3 delete failed for {len(errors)} objects "
                    f"(first: {first.get('Key')}: {first.get('Code')})"
                )
        return len(keys)

    def presigned_url(
        self,
        key: str,
        *,
        expires_s: int | None = None,
        filename: str | None = None,
        content_type: str | None = None,
    ) -> str | None:
        """A presigned GET URL on the public endpoint, valid for `expires_s` (default: settings)."""
        params: dict[str, str] = {"Bucket": self.bucket, "Key": validate_key(key)}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        if content_type:
            params["ResponseContentType"] = content_type
        url: str = self.presign_client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=expires_s or self.presign_expiry_s
        )
        return url

    def local_path(self, key: str) -> Path | None:
        """Always None: S3 objects have no local path."""
        return None

    def ping(self) -> None:
        """Raise `StorageUnavailable` unless the bucket answers with these credentials."""
        self._call(None, "head_bucket", Bucket=self.bucket)


def _closing_chunks(body: Any, chunk_size: int) -> Iterator[bytes]:
    """The body's chunks; closing the generator early (a client that went away while the API
    streamed it) closes the body, which returns its connection to the pool."""
    with contextlib.closing(body):
        yield from body.iter_chunks(chunk_size)
