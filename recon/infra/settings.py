"""One settings object per process, read from the environment (`RECON_` prefix) and passed down.

Build it once (`Settings()`) at process start and hand it to `create_app(settings)`,
`create_celery_app(settings)`, `build_storage(settings)` and `JobStore.from_settings(settings)`.
Defaults are safe: servers bind to loopback, uploads and concurrency are bounded, and
inconsistent time limits are refused at start rather than discovered in production.
`.env.example` lists every variable.
"""

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Configuration of the API, the worker and the storage they share."""

    model_config = SettingsConfigDict(
        env_prefix="RECON_", env_file=None, extra="ignore", frozen=True
    )

    # --- job store and broker -------------------------------------------------------------
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Job store Redis URL.")
    broker_url: str | None = Field(None, description="Celery broker URL; defaults to redis_url.")
    redis_key_prefix: str = Field(
        "recon", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Prefix of every job-store key."
    )
    redis_socket_timeout_s: float = Field(
        5.0, gt=0, description="Socket connect/read timeout of the job-store client."
    )
    celery_queue: str = Field(
        "reconstructions", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Celery queue name."
    )

    # --- object storage -------------------------------------------------------------------
    storage_backend: Literal["local", "s3"] = Field("local", description="Where objects live.")
    data_dir: Path = Field(Path("./data"), description="Local data folder (objects, API key).")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint; None means AWS.")
    s3_public_endpoint_url: str | None = Field(
        None,
        description="Endpoint written into presigned download URLs (the address clients reach); "
        "None means s3_endpoint_url.",
    )
    s3_bucket: str = Field("recon", description="S3 bucket holding tenants/{tenant}/jobs/...")
    s3_access_key_id: str | None = Field(None, description="S3 access key id.")
    s3_secret_access_key: SecretStr | None = Field(None, description="S3 secret access key.")
    s3_region: str = Field("us-east-1", description="S3 region used for request signing.")
    s3_presign_expiry_s: int = Field(
        300, ge=1, le=7 * 24 * 3600, description="Lifetime of presigned download URLs."
    )
    s3_create_bucket: bool = Field(
        False, description="Create the bucket at start if it does not exist (dev setups)."
    )

    # --- API -------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="API bind address (loopback by default).")
    port: int = Field(8000, ge=1, le=65535, description="API port.")
    api_keys: SecretStr = Field(
        SecretStr(""), description='API keys as "tenant1:key1,tenant2:key2".'
    )
    max_upload_bytes: int = Field(
        256 * MIB, ge=1024, description="Largest accepted request body, enforced while streaming."
    )
    upload_temp_dir: Path | None = Field(
        None,
        description="Folder uploads are received into (one private subfolder per request, "
        "removed when it ends); None means data_dir/tmp, never the system temp folder.",
    )
    max_uploads_in_flight_per_tenant: int = Field(
        2,
        ge=1,
        description="Request bodies one tenant may have being received or checked at once, "
        "across all API processes; beyond: 429 before the body is read.",
    )
    max_points: int = Field(
        2_000_000, ge=16, description="Larger clouds are subsampled (with a warning)."
    )
    max_concurrent_jobs_per_tenant: int = Field(
        4, ge=1, description="Queued plus running jobs a tenant may have; beyond: 429."
    )
    retry_after_s: int = Field(30, ge=1, description="Retry-After sent with 429 answers.")
    idempotency_ttl_s: int = Field(
        24 * 3600, ge=60, description="How long an Idempotency-Key maps to its job."
    )
    list_default_limit: int = Field(20, ge=1, description="Page size of GET /reconstructions.")
    list_max_limit: int = Field(100, ge=1, description="Largest page size a client may ask.")
    events_poll_interval_s: float = Field(
        0.5, gt=0, description="How often the event stream polls the job store."
    )
    events_max_duration_s: float = Field(
        3600.0, gt=0, description="An event stream closes after this long even if not final."
    )
    readiness_cache_s: float = Field(
        2.0,
        ge=0,
        description="/readyz and /metrics reuse one check of Redis, broker and storage for this "
        "long, so frequent polling costs the backends at most one check per period.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, GET /metrics requires 'Authorization: Bearer <token>' (401 "
        "otherwise; compared in constant time); unset leaves /metrics open to the network.",
    )

    # --- worker ----------------------------------------------------------------------------
    job_soft_time_limit_s: int = Field(
        3600, ge=1, description="Soft time limit: the task is asked to stop (job fails)."
    )
    job_hard_time_limit_s: int = Field(
        3900, ge=1, description="Hard time limit: the worker process is killed."
    )
    broker_visibility_timeout_s: int = Field(
        4500, ge=1, description="Redis broker redelivery timeout; must exceed the hard limit."
    )
    heartbeat_interval_s: float = Field(
        2.0, gt=0, description="How often a running job refreshes its heartbeat and lease."
    )
    heartbeat_timeout_s: float = Field(
        20.0, gt=0, description="A running job without a heartbeat this long is reaped."
    )
    lease_ttl_s: float = Field(
        15.0, gt=0, description="Per-job lease lifetime; renewed with every heartbeat."
    )
    reaper_interval_s: float = Field(5.0, gt=0, description="How often the reaper runs.")
    queued_resend_after_s: float = Field(
        300.0,
        gt=0,
        description="A job queued this long since its task was last sent gets it sent again "
        "(lost or never-published message); keep above the usual queue wait.",
    )
    max_attempts: int = Field(3, ge=1, description="Deliveries of one job before it fails.")
    retry_backoff_max_s: int = Field(
        60, ge=1, description="Cap of the jittered backoff for infrastructure retries."
    )
    result_retry_s: float = Field(
        60.0, gt=0,
        description="How long a finished run keeps retrying its uploads and its final write "
        "through a storage or job-store outage before it gives up (the training is kept).",
    )
    job_retention_s: int = Field(
        30 * 24 * 3600, ge=0,
        description="Final jobs (record and objects) are deleted this long after they "
        "finished; 0 keeps them until a client deletes them.",
    )
    worker_device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Engine device.")
    worker_concurrency: int = Field(1, ge=1, description="Worker processes (one per GPU).")

    # --- completion webhooks ---------------------------------------------------------------
    webhook_secret: SecretStr | None = Field(
        None, min_length=16,
        description="Key of the HMAC-SHA256 signature on every webhook (Recon-Signature); "
        "unset: submissions with a callback_url are refused (422 webhooks_not_configured).",
    )
    callback_allowed_hosts: str = Field(
        "",
        description="Comma-separated host names (exact, case-insensitive) or IP addresses (in "
        "any spelling) that callbacks may reach over plain http and on loopback or private "
        "addresses; every other callback needs https and a public address.",
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Connect, send and read timeout of one webhook attempt."
    )
    webhook_retry_window_s: float = Field(
        3600.0, gt=0,
        description="A webhook not accepted (2xx) this long after its job finished is given up "
        "(callback status `failed`); attempts back off 1, 2, 4 ... s, at most 300 s apart.",
    )
    webhook_max_redirects: int = Field(
        3, ge=0, le=10, description="Redirects a webhook follows (each hop checked again)."
    )
    webhook_poll_interval_s: float = Field(
        1.0, gt=0, description="How often each worker looks for webhooks due to be sent."
    )

    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        "info", description="Log level of every process."
    )

    @field_validator(
        "broker_url",
        "s3_endpoint_url",
        "s3_public_endpoint_url",
        "s3_access_key_id",
        "s3_secret_access_key",
        "metrics_token",
        "upload_temp_dir",
        "webhook_secret",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @model_validator(mode="after")
    def _consistent_limits(self) -> Self:
        if self.job_hard_time_limit_s <= self.job_soft_time_limit_s:
            raise ValueError("job_hard_time_limit_s must exceed job_soft_time_limit_s")
        if self.broker_visibility_timeout_s <= self.job_hard_time_limit_s:
            raise ValueError("broker_visibility_timeout_s must exceed job_hard_time_limit_s")
        if self.heartbeat_timeout_s <= 2 * self.heartbeat_interval_s:
            raise ValueError("heartbeat_timeout_s must exceed twice heartbeat_interval_s")
        if self.lease_ttl_s <= self.heartbeat_interval_s:
            raise ValueError("lease_ttl_s must exceed heartbeat_interval_s")
        if self.lease_ttl_s >= self.heartbeat_timeout_s:
            # The reaper requeues only once the lease has expired: a longer lease delays it.
            raise ValueError("lease_ttl_s must be shorter than heartbeat_timeout_s")
        if self.queued_resend_after_s <= self.retry_backoff_max_s:
            # A job waiting out an infrastructure-retry backoff is queued with its message held
            # by a worker: re-sending it then would only add a duplicate.
            raise ValueError("queued_resend_after_s must exceed retry_backoff_max_s")
        if self.list_default_limit > self.list_max_limit:
            raise ValueError("list_default_limit must not exceed list_max_limit")
        return self

    @property
    def effective_broker_url(self) -> str:
        """The Celery broker URL (`broker_url`, or the job store's Redis when unset)."""
        return self.broker_url or self.redis_url

    @property
    def callback_allowed_host_list(self) -> tuple[str, ...]:
        """`callback_allowed_hosts` as stripped, non-empty entries."""
        return tuple(h.strip() for h in self.callback_allowed_hosts.split(",") if h.strip())

    @property
    def objects_dir(self) -> Path:
        """Root folder of the local storage backend."""
        return self.data_dir / "objects"
