"""`JobRecord`: one job as the job store keeps it, and its encoding as a Redis hash.

Every hash field holds JSON, except `status` and `run_token`, which hold bare strings so that
the Lua scripts can compare them directly.
"""

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from recon.infra.storage.keys import job_object_key
from recon.schemas import JobStatus

RAW_FIELDS = frozenset({"status", "run_token"})
INITIAL_PROGRESS: dict[str, Any] = {"stage": "queued", "step": 0, "total": 0, "fraction": 0.0}


@dataclass
class JobRecord:
    """A reconstruction job. Timestamps are UNIX seconds (float); None means not yet."""

    id: str
    tenant: str
    status: JobStatus
    params: dict[str, Any]
    input_key: str
    created_at: float
    updated_at: float
    ground_truth_key: str | None = None
    input_filename: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    heartbeat_at: float | None = None
    progress: dict[str, Any] = field(default_factory=lambda: dict(INITIAL_PROGRESS))
    metrics: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    error_code: str | None = None
    error_message: str | None = None
    formats: list[str] = field(default_factory=list)
    output_prefix: str | None = None
    """Storage prefix of the succeeded run's outputs; published with the `succeeded` status."""
    attempts: int = 0
    """Runs started (every `start`)."""
    lost_runs: int = 0
    """Runs whose worker disappeared (reaped); `Settings.max_attempts` bounds them."""
    retries: int = 0
    """Runs handed back after an infrastructure error; `Settings.max_attempts` bounds them."""
    worker_id: str | None = None
    run_token: str | None = None
    """Fencing token of the run that owns the job (set by `start`, cleared by a requeue)."""
    cancel_requested: bool = False
    deleted_at: float | None = None
    """Set when a DELETE was accepted; the sweeper removes objects, then the record."""
    version: int = 0
    """Incremented by every change a client can see (the event stream's event id)."""
    idempotency_key: str | None = None
    request_fingerprint: str | None = None
    """sha256 of the submitted request, to tell a retry from a reuse of its Idempotency-Key."""
    callback_status: str | None = None
    """The completion webhook (``params.callback_url``): ``pending`` from the final transition
    until ``delivered`` or ``failed`` (`recon.infra.webhooks.outbox`); None before."""
    callback_delivery_id: str | None = None
    """Set by the final transition; the same on every attempt (receivers de-duplicate on it)."""
    callback_attempts: int = 0
    callback_last_error: str | None = None
    callback_delivered_at: float | None = None

    @property
    def callback_url(self) -> str | None:
        """Where the completion webhook goes (from the params), or None."""
        url = self.params.get("callback_url")
        return url if isinstance(url, str) and url else None

    @property
    def is_final(self) -> bool:
        """True once the job succeeded, failed or was canceled."""
        return self.status.is_final

    def output_key(self, name: str) -> str:
        """The storage key of output `name` (``mesh.glb``) of the run that succeeded."""
        if self.output_prefix:
            return self.output_prefix + name
        return job_object_key(self.tenant, self.id, name)

    def to_hash(self) -> dict[str, str]:
        """Encode as Redis hash fields (None values are left out)."""
        encoded: dict[str, str] = {}
        for name, value in asdict(self).items():
            if value is None:
                continue
            if name in RAW_FIELDS:
                encoded[name] = str(value)
            elif isinstance(value, bool):
                encoded[name] = "1" if value else "0"
            else:
                encoded[name] = json.dumps(value, separators=(",", ":"))
        return encoded

    @classmethod
    def from_hash(cls, raw: dict[str, str]) -> "JobRecord":
        """Decode the fields written by `to_hash` and by the store's Lua scripts."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, text in raw.items():
            if name not in known:
                continue
            values[name] = text if name in RAW_FIELDS else json.loads(text)
        values["status"] = JobStatus(values["status"])
        values["cancel_requested"] = bool(values.get("cancel_requested", 0))
        return cls(**values)


def encode_value(value: Any) -> str:
    """Encode one field value the way `JobRecord.to_hash` does (for partial updates)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    return json.dumps(value, separators=(",", ":"))
