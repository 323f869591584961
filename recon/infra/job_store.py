"""The job store: job records, tenant index, idempotency keys, cancel flags and leases in Redis.

Shared by the API and the workers; nothing lives in process memory, so records survive API
restarts and any number of processes can share one Redis. State changes run as Lua scripts
(compare-and-set on the status and the guard), so a final job never becomes running again.

Redis layout (``{p}`` is `Settings.redis_key_prefix`)::

    {p}:job:{id}                hash, one JSON value per field (`JobRecord.to_hash`)
    {p}:tenant:{t}:jobs         zset of job ids scored by created_at (listing)
    {p}:tenant:{t}:active       set of queued/running job ids (quota)
    {p}:running                 zset of running job ids scored by last heartbeat (reaper)
    {p}:queued                  zset of queued job ids scored by when their task was last sent
    {p}:finished                zset of final job ids scored by finished_at (retention)
    {p}:deleting                zset of job ids whose DELETE the sweeper has to finish
    {p}:webhooks                zset of final job ids whose webhook is due, scored by due time
    {p}:idem:{t}:{sha256(key)}  job id for an Idempotency-Key (expires)
    {p}:lease:{id}              owner of the per-job lease (expires); also the run's token
    {p}:draining:{node}         set while worker `node` shuts down (expires)

Status changes follow the one table in `recon.infra.job_states`; the worker-side ones are fenced
by the run token, so a run that lost the job can never write to it.
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
from recon.infra.job_states import TRANSITIONS
from recon.infra.settings import Settings
from recon.infra.webhooks.outbox import outbox_key
from recon.schemas import JobProgress, JobStatus

QUEUED = JobStatus.QUEUED.value
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


@dataclass(frozen=True)
class Applied:
    """The outcome of a transition: truthy when applied; `reason` says why not otherwise
    (or holds the previous status when applied)."""

    applied: bool
    reason: str

    def __bool__(self) -> bool:
        return self.applied


class JobStore:
    """Job records and their indexes over a redis-py client (``decode_responses=True``)."""

    def __init__(self, client: "redis.Redis", *, prefix: str = "recon") -> None:
        self.redis = client
        self.prefix = prefix
        self._create = client.register_script(job_scripts.CREATE)
        self._transition = client.register_script(job_scripts.TRANSITION)
        self._heartbeat = client.register_script(job_scripts.HEARTBEAT)
        self._keep_lease = client.register_script(job_scripts.KEEP_LEASE)
        self._request_cancel = client.register_script(job_scripts.REQUEST_CANCEL)
        self._mark_deleted = client.register_script(job_scripts.MARK_DELETED)
        self._purge = client.register_script(job_scripts.PURGE)
        self._claim_stale_queued = client.register_script(job_scripts.CLAIM_STALE_QUEUED)
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

    def _finished_key(self) -> str:
        return f"{self.prefix}:finished"

    def _deleting_key(self) -> str:
        return f"{self.prefix}:deleting"

    def _draining_key(self, node: str) -> str:
        return f"{self.prefix}:draining:{node}"

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
        record.version = 1  # as the script stored it
        return record

    def get(self, job_id: str) -> JobRecord | None:
        """The job, or None when unknown."""
        raw = cast(dict[str, str], self.redis.hgetall(self._job_key(job_id)))
        return JobRecord.from_hash(raw) if raw else None

    def version(self, job_id: str) -> int | None:
        """The record's version (a single field read), or None when the job is unknown."""
        value = self.redis.hget(self._job_key(job_id), "version")
        if value is None:
            return None if not self.redis.exists(self._job_key(job_id)) else 0
        return int(cast(str, value))

    def get_for_tenant(self, job_id: str, tenant: str) -> JobRecord | None:
        """The job when it exists, belongs to `tenant` and is not being deleted, else None."""
        record = self.get(job_id)
        if record is None or record.tenant != tenant or record.deleted_at is not None:
            return None
        return record

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

    # --- transitions -------------------------------------------------------------------------
    def transition(
        self,
        job_id: str,
        name: str,
        *,
        token: str = "",
        set_fields: dict[str, Any] | None = None,
        delete_fields: tuple[str, ...] = (),
        increment: tuple[str, ...] = (),
    ) -> Applied:
        """Apply transition `name` of `recon.infra.job_states.TRANSITIONS` atomically.

        `token` is the guard's proof: the run token (guard ``run``) or the lease owner (guard
        ``lease``). Returns an `Applied` that is truthy when the change was made and otherwise
        says why not (``missing``, ``fenced``, ``leased``, ``cancel_requested`` or the status).
        """
        if name not in TRANSITIONS:
            raise ValueError(f"unknown transition {name!r}")
        now = time.time()
        values = {field: encode_value(v) for field, v in (set_fields or {}).items()}
        result = str(
            self._transition(
                keys=[
                    self._job_key(job_id),
                    self._running_key(),
                    self._queued_key(),
                    self._lease_key(job_id),
                    self._finished_key(),
                    outbox_key(self.prefix),
                ],
                args=[
                    self.prefix,
                    job_id,
                    name,
                    token,
                    repr(now),
                    json.dumps(values),
                    json.dumps(list(delete_fields)),
                    json.dumps(list(increment)),
                ],
            )
        )
        if result.startswith("!"):
            return Applied(False, result[1:])
        return Applied(True, result)

    def start_run(self, job_id: str, lease_owner: str, worker_id: str) -> JobRecord | None:
        """Queued -> running under the caller's lease; the lease owner becomes the run token.

        Returns the updated record, or None when the job is not queued, has a pending cancel
        request, or the caller does not hold the lease.
        """
        now = time.time()
        applied = self.transition(
            job_id,
            "start",
            token=lease_owner,
            set_fields={"worker_id": worker_id, "started_at": now, "heartbeat_at": now},
            increment=("attempts",),
        )
        return self.get(job_id) if applied else None

    def succeed(
        self,
        job_id: str,
        token: str,
        *,
        metrics: dict[str, Any],
        warnings: list[str],
        formats: list[str],
        output_prefix: str,
    ) -> Applied:
        """Running -> succeeded, publishing the run's outputs (under `output_prefix`) with it."""
        progress = {**INITIAL_PROGRESS, "stage": FINAL_PROGRESS_STAGE, "fraction": 1.0}
        fields = {
            "metrics": metrics,
            "warnings": warnings,
            "formats": formats,
            "output_prefix": output_prefix,
            "progress": progress,
        }
        return self.transition(
            job_id, "succeed", token=token, set_fields=fields,
            delete_fields=("error_code", "error_message"),
        )

    def fail(self, job_id: str, token: str, code: str, message: str) -> Applied:
        """Running -> failed by the run holding `token`, with a stable code and a sentence."""
        fields = {"error_code": code, "error_message": message}
        return self.transition(job_id, "fail", token=token, set_fields=fields)

    def cancel_run(self, job_id: str, token: str) -> Applied:
        """Running -> canceled by the run holding `token`, once it saw the cancel flag."""
        return self.transition(job_id, "cancel", token=token)

    def hand_back(self, job_id: str, token: str, *, retry: bool) -> Applied:
        """Running -> queued by its own run (`retry`: after an infrastructure error, counted).

        The caller sends the job's task again.
        """
        return self.transition(
            job_id, "hand_back", token=token,
            set_fields={"progress": INITIAL_PROGRESS},
            delete_fields=("worker_id", "heartbeat_at"),
            increment=("retries",) if retry else (),
        )

    def refuse_start(self, job_id: str, lease_owner: str) -> Applied:
        """Queued -> canceled by a worker that found the cancel flag set before starting."""
        return self.transition(job_id, "refuse_start", token=lease_owner)

    def give_up_at_start(
        self, job_id: str, lease_owner: str, code: str, message: str
    ) -> Applied:
        """Queued -> failed by a worker that found the job out of tries before starting."""
        fields = {"error_code": code, "error_message": message}
        return self.transition(job_id, "give_up_at_start", token=lease_owner, set_fields=fields)

    def requeue_lost(self, job_id: str) -> Applied:
        """Running -> queued for a run whose worker is gone (refused while anyone holds the
        lease, checked in the same atomic step); counts a lost run. The caller re-enqueues."""
        return self.transition(
            job_id, "requeue_lost",
            set_fields={"progress": INITIAL_PROGRESS},
            delete_fields=("worker_id", "heartbeat_at"),
            increment=("lost_runs",),
        )

    def fail_lost(self, job_id: str, code: str, message: str) -> Applied:
        """Running -> failed for a run whose worker is gone (refused while leased)."""
        fields = {"error_code": code, "error_message": message}
        return self.transition(
            job_id, "fail_lost", set_fields=fields, increment=("lost_runs",)
        )

    def cancel_lost(self, job_id: str) -> Applied:
        """Running -> canceled for a job whose cancel was asked after its worker died."""
        return self.transition(job_id, "cancel_lost")

    def request_cancel(self, job_id: str) -> JobStatus | None:
        """Cancel a queued job at once or flag a running one for its worker.

        Returns the status after the call (`canceled` or `running`), or None when the job is
        unknown or already final.
        """
        result = str(self._request_cancel(keys=[self._job_key(job_id)], args=[repr(time.time())]))
        if result.startswith("!"):
            return None
        if result == QUEUED and self.transition(job_id, "cancel_queued"):
            return JobStatus.CANCELED
        record = self.get(job_id)  # started meanwhile: its worker sees the flag
        if record is None:
            return None
        return None if record.is_final and record.status != JobStatus.CANCELED else record.status

    def mark_deleted(self, job_id: str) -> JobStatus | None:
        """Record a DELETE: hide the job from its tenant, stop it, leave the rest to the sweeper.

        A queued job is canceled at once; a running one stops at its worker's next check.
        Returns the job's status now, or None when it is unknown or already being deleted.
        """
        keys = [self._job_key(job_id), "", self._deleting_key()]
        record = self.get(job_id)
        if record is None:
            return None
        keys[1] = self._tenant_jobs_key(record.tenant)
        result = str(self._mark_deleted(keys=keys, args=[job_id, repr(time.time())]))
        if result.startswith("!"):
            return None
        if result == QUEUED:
            self.transition(job_id, "cancel_queued")
        current = self.get(job_id)
        return None if current is None else current.status

    def purge(self, job_id: str) -> bool:
        """Remove the record, its index entries (webhook outbox included), idempotency key and
        lease; True if it existed.

        Only the sweeper calls this, after the job's objects are gone.
        """
        keys = [
            self._job_key(job_id),
            self._running_key(),
            self._lease_key(job_id),
            self._queued_key(),
            self._finished_key(),
            self._deleting_key(),
            outbox_key(self.prefix),
        ]
        return bool(self._purge(keys=keys, args=[self.prefix, job_id]))

    # --- the run's side ------------------------------------------------------------------------
    def heartbeat(self, job_id: str, token: str, progress: JobProgress | None = None) -> bool:
        """Refresh the run's heartbeat (and progress); False when the run no longer owns the job."""
        keys = [self._job_key(job_id), self._running_key()]
        progress_json = "" if progress is None else progress.model_dump_json()
        args = [job_id, repr(time.time()), progress_json, token]
        return bool(self._heartbeat(keys=keys, args=args))

    def is_cancel_requested(self, job_id: str) -> bool:
        """True once a cancel was requested (or the job vanished: stop working on it)."""
        value = self.redis.hget(self._job_key(job_id), "cancel_requested")
        exists = value is not None or bool(self.redis.exists(self._job_key(job_id)))
        return value == "1" or not exists

    def set_draining(self, node: str, ttl_s: float) -> None:
        """Say that worker `node` is shutting down: its runs hand their jobs back."""
        self.redis.set(self._draining_key(node), "1", px=max(1, int(ttl_s * 1000)))

    def is_draining(self, node: str) -> bool:
        """True while worker `node` is shutting down."""
        return bool(self.redis.exists(self._draining_key(node)))

    # --- the reaper's and sweeper's side ----------------------------------------------------
    def stale_running(self, heartbeat_timeout_s: float) -> list[str]:
        """Ids of running jobs whose last heartbeat is older than `heartbeat_timeout_s`."""
        cutoff = time.time() - heartbeat_timeout_s
        found = self.redis.zrangebyscore(self._running_key(), "-inf", cutoff)
        return [str(job_id) for job_id in cast(list[str], found)]

    def deleting(self, limit: int) -> list[str]:
        """Ids of jobs whose deletion was recorded and is not finished, oldest first."""
        found = self.redis.zrange(self._deleting_key(), 0, limit - 1)
        return [str(job_id) for job_id in cast(list[str], found)]

    def finished_before(self, cutoff: float, limit: int) -> list[str]:
        """Ids of final jobs that finished before `cutoff` (UNIX seconds), oldest first."""
        found = self.redis.zrangebyscore(self._finished_key(), "-inf", cutoff, 0, limit)
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

    def keep_lease(self, job_id: str, owner: str, ttl_s: float) -> bool:
        """Extend `owner`'s lease, or take it again after a stall while its run still owns the
        job; False when the run lost the job (requeued, replaced or final)."""
        ttl_ms = max(1, int(ttl_s * 1000))
        keys = [self._lease_key(job_id), self._job_key(job_id)]
        return bool(self._keep_lease(keys=keys, args=[owner, ttl_ms]))

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
