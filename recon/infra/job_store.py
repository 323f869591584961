"""The job store: job records, tenant index, idempotency keys, cancel flags and leases in Redis.

Shared by the API and the workers; nothing lives in process memory, so records survive API
restarts and any number of processes can share one Redis. State changes run as Lua scripts
(compare-and-set on the status), so a final job never becomes running again.

Redis layout (``{p}`` is `Settings.redis_key_prefix`)::

    {p}:job:{id}                hash, one JSON value per field (`JobRecord.to_hash`)
    {p}:tenant:{t}:jobs         zset of job ids scored by created_at (listing)
    {p}:tenant:{t}:active       set of queued/running job ids (quota)
    {p}:running                 zset of running job ids scored by last heartbeat (reaper)
    {p}:queued                  zset of queued job ids scored by when their task was last sent
    {p}:idem:{t}:{sha256(key)}  job id for an Idempotency-Key (expires)
    {p}:lease:{id}              owner of the per-job lease (expires)
"""

import base64
import binascii
import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Any, cast

import redis

from recon.infra import job_scripts
from recon.infra.job_record import INITIAL_PROGRESS, JobRecord, encode_value
from recon.infra.settings import Settings
from recon.schemas import JobProgress, JobStatus

QUEUED, RUNNING = JobStatus.QUEUED.value, JobStatus.RUNNING.value
FINAL_PROGRESS_STAGE = "done"
MAX_RESEND_DOUBLINGS = 5
"""Re-sends of a still-queued job back off 1, 2, 4 ... windows, at most 2**5 = 32 windows, so a
job stuck behind long ones gets few duplicates and a lost message is still re-sent."""


class JobStoreError(Exception):
    """Base of the job store's own errors."""


class QuotaExceeded(JobStoreError):
    """The tenant already has its limit of queued plus running jobs."""

    def __init__(self, active: int, limit: int) -> None:
        super().__init__(f"{active} active jobs; the limit is {limit}")
        self.active = active
        self.limit = limit


class DuplicateIdempotencyKey(JobStoreError):
    """Another job already holds this tenant's Idempotency-Key."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"idempotency key already used by job {job_id}")
        self.job_id = job_id


class InvalidCursor(JobStoreError, ValueError):
    """A listing cursor that this store did not produce."""


@dataclass(frozen=True)
class JobPage:
    """One page of a tenant's jobs, newest first; `next_cursor` is None on the last page."""

    items: list[JobRecord]
    next_cursor: str | None


class JobStore:
    """Job records and their indexes over a redis-py client (``decode_responses=True``)."""

    def __init__(self, client: "redis.Redis", *, prefix: str = "recon") -> None:
        self.redis = client
        self.prefix = prefix
        self._create = client.register_script(job_scripts.CREATE)
        self._transition = client.register_script(job_scripts.TRANSITION)
        self._heartbeat = client.register_script(job_scripts.HEARTBEAT)
        self._request_cancel = client.register_script(job_scripts.REQUEST_CANCEL)
        self._delete = client.register_script(job_scripts.DELETE)
        self._claim_stale_queued = client.register_script(job_scripts.CLAIM_STALE_QUEUED)
        self._renew = client.register_script(job_scripts.RENEW_LEASE)
        self._release = client.register_script(job_scripts.RELEASE_LEASE)

    @classmethod
    def from_settings(cls, settings: Settings) -> "JobStore":
        """A store on `settings.redis_url` with the configured key prefix and timeouts."""
        client = redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_timeout=settings.redis_socket_timeout_s,
            socket_connect_timeout=settings.redis_socket_timeout_s,
        )
        return cls(client, prefix=settings.redis_key_prefix)

    # --- keys --------------------------------------------------------------------------------
    def _job_key(self, job_id: str) -> str:
        return f"{self.prefix}:job:{job_id}"

    def _tenant_jobs_key(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}:jobs"

    def _tenant_active_key(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}:active"

    def _running_key(self) -> str:
        return f"{self.prefix}:running"

    def _queued_key(self) -> str:
        return f"{self.prefix}:queued"

    def _lease_key(self, job_id: str) -> str:
        return f"{self.prefix}:lease:{job_id}"

    def _idempotency_key(self, tenant: str, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
        return f"{self.prefix}:idem:{tenant}:{digest}"

    # --- records -----------------------------------------------------------------------------
    def ping(self) -> None:
        """Raise a redis `ConnectionError`/`TimeoutError` unless Redis answers."""
        self.redis.ping()

    def create(
        self,
        record: JobRecord,
        *,
        max_active: int | None = None,
        idempotency_key: str | None = None,
        idempotency_ttl_s: int = 24 * 3600,
    ) -> JobRecord:
        """Store a new queued job atomically with its tenant index entries; return it.

        Raises `QuotaExceeded` when the tenant has `max_active` queued/running jobs, and
        `DuplicateIdempotencyKey` when `idempotency_key` already maps to a live job.
        """
        idem = self._idempotency_key(record.tenant, idempotency_key) if idempotency_key else ""
        record.idempotency_key = idem or None
        outcome, value = self._create(
            keys=[
                self._job_key(record.id),
                self._tenant_jobs_key(record.tenant),
                self._tenant_active_key(record.tenant),
                idem,
                self._queued_key(),
            ],
            args=[
                record.id,
                -1 if max_active is None else max_active,
                repr(record.created_at),
                int(idempotency_ttl_s * 1000),
                json.dumps(record.to_hash()),
            ],
        )
        if outcome == "duplicate":
            raise DuplicateIdempotencyKey(value)
        if outcome == "quota":
            raise QuotaExceeded(int(value), int(max_active or 0))
        return record

    def get(self, job_id: str) -> JobRecord | None:
        """The job, or None when unknown."""
        raw = cast(dict[str, str], self.redis.hgetall(self._job_key(job_id)))
        return JobRecord.from_hash(raw) if raw else None

    def get_for_tenant(self, job_id: str, tenant: str) -> JobRecord | None:
        """The job when it exists and belongs to `tenant`, else None."""
        record = self.get(job_id)
        return record if record is not None and record.tenant == tenant else None

    def find_idempotent(self, tenant: str, key: str) -> JobRecord | None:
        """The live job this tenant created with Idempotency-Key `key`, if any."""
        job_id = cast(str | None, self.redis.get(self._idempotency_key(tenant, key)))
        return self.get_for_tenant(job_id, tenant) if job_id else None

    def active_count(self, tenant: str) -> int:
        """How many queued or running jobs `tenant` has."""
        return int(self.redis.scard(self._tenant_active_key(tenant)))

    def list_for_tenant(self, tenant: str, *, limit: int, cursor: str | None = None) -> JobPage:
        """A page of `tenant`'s jobs, newest first. Raises `InvalidCursor` on a foreign cursor."""
        key = self._tenant_jobs_key(tenant)
        entries: list[tuple[str, float]]
        if cursor is None:
            entries = self._scored(key, "+inf", "-inf", limit + 1)
        else:
            score, last_id = _decode_cursor(cursor)
            # Ties on the score are ordered by member, descending; take those after last_id.
            ties = [(m, s) for m, s in self._scored(key, score, score, None) if m < last_id]
            rest = self._scored(key, f"({score!r}", "-inf", limit + 1)
            entries = (ties + rest)[: limit + 1]
        page, more = entries[:limit], len(entries) > limit
        pipe = self.redis.pipeline(transaction=False)
        for member, _ in page:
            pipe.hgetall(self._job_key(member))
        items = [JobRecord.from_hash(raw) for raw in pipe.execute() if raw]
        next_cursor = _encode_cursor(page[-1][1], page[-1][0]) if more and page else None
        return JobPage(items=items, next_cursor=next_cursor)

    def _scored(
        self, key: str, high: float | str, low: float | str, count: int | None
    ) -> list[tuple[str, float]]:
        """Members with scores between `high` and `low`, highest first, at most `count`."""
        if count is None:
            found = self.redis.zrevrangebyscore(key, high, low, withscores=True)
        else:
            found = self.redis.zrevrangebyscore(key, high, low, 0, count, withscores=True)
        return [(str(m), float(s)) for m, s in cast(list[tuple[str, float]], found)]

    def delete(self, job_id: str) -> bool:
        """Remove the record, its index entries, idempotency key and lease; True if it existed."""
        keys = [
            self._job_key(job_id),
            self._running_key(),
            self._lease_key(job_id),
            self._queued_key(),
        ]
        return bool(self._delete(keys=keys, args=[self.prefix, job_id]))

    # --- transitions -------------------------------------------------------------------------
    def _apply(
        self,
        job_id: str,
        allowed: tuple[str, ...],
        new: JobStatus,
        *,
        set_fields: dict[str, Any] | None = None,
        delete_fields: tuple[str, ...] = (),
        increment_attempts: bool = False,
        refuse_if_cancel_requested: bool = False,
        refuse_if_leased: bool = False,
    ) -> bool:
        now = time.time()
        values = {name: encode_value(v) for name, v in (set_fields or {}).items()}
        if new.is_final:
            values["finished_at"] = encode_value(now)
        result = self._transition(
            keys=[
                self._job_key(job_id),
                self._running_key(),
                self._queued_key(),
                self._lease_key(job_id) if refuse_if_leased else "",
            ],
            args=[
                self.prefix,
                job_id,
                json.dumps(list(allowed)),
                new.value,
                json.dumps(values),
                json.dumps(list(delete_fields)),
                "1" if increment_attempts else "0",
                repr(now),
                "1" if refuse_if_cancel_requested else "0",
            ],
        )
        return not str(result).startswith("!")

    def mark_running(self, job_id: str, worker_id: str) -> JobRecord | None:
        """Queued (or running, for a redelivery under the caller's lease) -> running.

        Increments `attempts` and records `worker_id`. Returns the updated record, or None
        when the job is unknown, final or has a pending cancel request (then the caller
        should `mark_canceled`). The caller must hold the job's lease.
        """
        now = time.time()
        applied = self._apply(
            job_id,
            (QUEUED, RUNNING),
            JobStatus.RUNNING,
            set_fields={"worker_id": worker_id, "started_at": now, "heartbeat_at": now},
            increment_attempts=True,
            refuse_if_cancel_requested=True,
        )
        return self.get(job_id) if applied else None

    def update_progress(self, job_id: str, progress: JobProgress) -> bool:
        """Record progress and refresh the heartbeat; False when the job is no longer running."""
        return self._beat(job_id, progress.model_dump_json())

    def heartbeat(self, job_id: str) -> bool:
        """Refresh the heartbeat of a running job; False when it is no longer running."""
        return self._beat(job_id, "")

    def _beat(self, job_id: str, progress_json: str) -> bool:
        keys = [self._job_key(job_id), self._running_key()]
        return bool(self._heartbeat(keys=keys, args=[job_id, repr(time.time()), progress_json]))

    def mark_succeeded(
        self,
        job_id: str,
        *,
        metrics: dict[str, Any],
        warnings: list[str],
        formats: list[str],
    ) -> bool:
        """Running -> succeeded with the run's metrics, warnings and produced mesh formats."""
        progress = {**INITIAL_PROGRESS, "stage": FINAL_PROGRESS_STAGE, "fraction": 1.0}
        fields = {"metrics": metrics, "warnings": warnings, "formats": formats}
        return self._apply(
            job_id,
            (RUNNING,),
            JobStatus.SUCCEEDED,
            set_fields={**fields, "progress": progress},
            delete_fields=("error_code", "error_message"),
        )

    def mark_failed(self, job_id: str, code: str, message: str) -> bool:
        """Queued or running -> failed with a stable error `code` and a sentence for people."""
        fields = {"error_code": code, "error_message": message}
        return self._apply(job_id, (QUEUED, RUNNING), JobStatus.FAILED, set_fields=fields)

    def mark_canceled(self, job_id: str, *, also_queued: bool = False) -> bool:
        """Running (`also_queued`: or queued) -> canceled, once a worker saw the cancel flag.

        A stopped run must not cancel a queued job: that one was requeued behind its back and
        belongs to the re-sent message. `also_queued` is for a delivery refused at start.
        """
        allowed = (QUEUED, RUNNING) if also_queued else (RUNNING,)
        return self._apply(job_id, allowed, JobStatus.CANCELED)

    def requeue(self, job_id: str) -> bool:
        """Running -> queued (the reaper's answer to a lost worker); the caller re-enqueues.

        Refused while anyone holds the job's lease, checked in the same atomic step: a worker
        back from an outage that re-took its lease after the reaper looked keeps its job.
        """
        return self._apply(
            job_id,
            (RUNNING,),
            JobStatus.QUEUED,
            set_fields={"progress": INITIAL_PROGRESS},
            delete_fields=("worker_id", "heartbeat_at"),
            refuse_if_leased=True,
        )

    def request_cancel(self, job_id: str) -> JobStatus | None:
        """Cancel a queued job at once or flag a running one for its worker.

        Returns the status after the call (`canceled` or `running`), or None when the job is
        unknown or already final.
        """
        keys = [self._job_key(job_id), self._queued_key()]
        args = [repr(time.time()), self.prefix]
        result = str(self._request_cancel(keys=keys, args=args))
        return None if result.startswith("!") else JobStatus(result)

    def is_cancel_requested(self, job_id: str) -> bool:
        """True once a cancel was requested (or the job vanished: stop working on it)."""
        value = self.redis.hget(self._job_key(job_id), "cancel_requested")
        exists = value is not None or bool(self.redis.exists(self._job_key(job_id)))
        return value == "1" or not exists

    def stale_running(self, heartbeat_timeout_s: float) -> list[str]:
        """Ids of running jobs whose last heartbeat is older than `heartbeat_timeout_s`."""
        cutoff = time.time() - heartbeat_timeout_s
        found = self.redis.zrangebyscore(self._running_key(), "-inf", cutoff)
        return [str(job_id) for job_id in cast(list[str], found)]

    def claim_stale_queued(self, unsent_for_s: float, limit: int) -> list[str]:
        """Claim up to `limit` queued jobs whose task was last sent `unsent_for_s` ago or more.

        Such a job's message was never published (the API died between creating the record
        and sending it) or was lost by the broker, or the job is merely waiting behind long
        ones. Jobs under a lease are being started and are skipped. The n-th claim of a job
        makes it due again 2**n windows later (at most `MAX_RESEND_DOUBLINGS` doublings), so
        a long wait costs few duplicate messages; among any number of callers only one gets
        a given claim. The caller must send the task of every claimed job.
        """
        now = time.time()
        args: list[str | int] = [self.prefix, repr(now - unsent_for_s), repr(now), limit,
                                 repr(unsent_for_s), MAX_RESEND_DOUBLINGS]
        claimed = self._claim_stale_queued(keys=[self._queued_key()], args=args)
        return [str(job_id) for job_id in cast(list[str], claimed)]

    # --- leases ------------------------------------------------------------------------------
    def acquire_lease(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Take the per-job lease for `owner` unless someone holds it (SET NX PX)."""
        ttl_ms = max(1, int(ttl_s * 1000))
        return bool(self.redis.set(self._lease_key(job_id), owner, nx=True, px=ttl_ms))

    def renew_lease(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Extend the lease when `owner` still holds it; False when it was lost."""
        ttl_ms = max(1, int(ttl_s * 1000))
        return bool(self._renew(keys=[self._lease_key(job_id)], args=[owner, ttl_ms]))

    def release_lease(self, job_id: str, owner: str) -> bool:
        """Drop the lease when `owner` holds it (compare-and-delete); True when dropped."""
        return bool(self._release(keys=[self._lease_key(job_id)], args=[owner]))

    def lease_owner(self, job_id: str) -> str | None:
        """Who holds the job's lease now, if anyone."""
        owner = self.redis.get(self._lease_key(job_id))
        return str(owner) if owner is not None else None


def _encode_cursor(score: float, job_id: str) -> str:
    raw = json.dumps([score, job_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        score, job_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(job_id, str) or not isinstance(score, int | float):
            raise ValueError("bad cursor shape")
        if not math.isfinite(score):  # json accepts NaN/Infinity; Redis refuses a NaN score
            raise ValueError("non-finite cursor score")
        return float(score), job_id
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("the cursor is not one this server produced") from exc
