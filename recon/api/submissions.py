"""Accepting a reconstruction: validate the upload, store it, create the job, then enqueue.

The order is what keeps accepted jobs from being lost: the input is in storage and the record
in the job store before the message is published, and both before 202 is answered. If the
broker refuses the message, the job is removed again and the client gets 503 (not 202).
"""

import time
import uuid
from dataclasses import dataclass

from recon.api.callbacks import check_callback
from recon.api.context import ServiceContext
from recon.api.errors import BadRequest, Conflict, ServiceUnavailable, TooManyRequests
from recon.api.uploads import MultipartUpload
from recon.api.validation import parse_params, validate_ground_truth, validate_point_cloud
from recon.infra.job_record import JobRecord
from recon.infra.job_store import DuplicateIdempotencyKey, QuotaExceeded
from recon.infra.storage import (
    ground_truth_object_name,
    input_object_name,
    job_object_key,
    job_prefix,
)
from recon.infra.task_queue import QueueUnavailable
from recon.schemas import JobStatus

MAX_IDEMPOTENCY_KEY_CHARS = 255


@dataclass(frozen=True)
class Submission:
    """The job answering a submission, and whether this request created it."""

    record: JobRecord
    created: bool


def check_idempotency_key(key: str | None) -> str | None:
    """The Idempotency-Key header when usable; 400 for an empty, long or non-ASCII one."""
    if key is None:
        return None
    if (
        not key
        or len(key) > MAX_IDEMPOTENCY_KEY_CHARS
        or not key.isascii()
        or not key.isprintable()
    ):
        raise BadRequest(
            f"Idempotency-Key must be 1-{MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII characters",
            code="bad_idempotency_key",
        )
    return key


def replay(existing: JobRecord, fingerprint: str | None) -> Submission:
    """The answer to a request whose Idempotency-Key already names `existing`.

    The same request (same params text, file and ground-truth bytes) gets the job back; any
    other request is refused (409), since answering it with another request's job would hide
    that it was never run. Jobs stored before fingerprints existed match any request.
    """
    if existing.request_fingerprint not in (None, fingerprint):
        raise Conflict(
            "this Idempotency-Key was already used with a different request (other file, "
            "ground truth or params); use a new key for a new request",
            code="idempotency_key_reused",
            detail={"job_id": existing.id},
        )
    return Submission(existing, created=False)


class Submissions:
    """The submission use case over one process's `ServiceContext` (blocking calls)."""

    def __init__(self, context: ServiceContext) -> None:
        self.context = context

    def too_many_jobs(self, active: int) -> TooManyRequests:
        """The 429 error for a tenant at its concurrent-job limit."""
        limit = self.context.settings.max_concurrent_jobs_per_tenant
        return TooManyRequests(
            f"{active} jobs are queued or running; the limit is {limit} per tenant",
            detail={"active": active, "limit": limit},
            headers={"Retry-After": str(self.context.settings.retry_after_s)},
        )

    def check_quota(self, tenant: str) -> None:
        """Refuse (429) before the body is read when the tenant is already at its limit."""
        active = self.context.job_store.active_count(tenant)
        if active >= self.context.settings.max_concurrent_jobs_per_tenant:
            raise self.too_many_jobs(active)

    def submit(
        self,
        tenant: str,
        upload: MultipartUpload,
        idempotency_key: str | None,
        existing: JobRecord | None = None,
    ) -> Submission:
        """Validate, store and enqueue one upload; return the job that answers it.

        `existing` is the job the Idempotency-Key already names, when the caller found one: it
        answers the request (nothing is parsed again) when the request is the same one.
        """
        settings, storage = self.context.settings, self.context.storage
        point_file = upload.files.get("file")
        if point_file is None:
            raise BadRequest(
                "the form has no 'file' part with the point cloud", code="missing_file"
            )
        if existing is not None:
            return replay(existing, upload.fingerprint)
        params = parse_params(upload.fields.get("params"))
        check_callback(params, settings)
        # The worker's seed: a subsampling warning stored now says what the worker will do.
        fmt, cloud = validate_point_cloud(
            point_file.path, point_file.filename, max_points=settings.max_points, seed=params.seed
        )
        gt_file = upload.files.get("ground_truth")
        gt_fmt = validate_ground_truth(gt_file.path, gt_file.filename) if gt_file else None

        job_id, now = uuid.uuid4().hex, time.time()
        record = JobRecord(
            id=job_id,
            tenant=tenant,
            status=JobStatus.QUEUED,
            params=params.model_dump(mode="json"),
            input_key=job_object_key(tenant, job_id, input_object_name(fmt)),
            input_filename=point_file.filename,
            created_at=now,
            updated_at=now,
            warnings=list(cloud.warnings),
            request_fingerprint=upload.fingerprint,
        )
        try:
            storage.put_file(record.input_key, point_file.path)
            if gt_file is not None and gt_fmt is not None:
                record.ground_truth_key = job_object_key(
                    tenant, job_id, ground_truth_object_name(gt_fmt)
                )
                storage.put_file(record.ground_truth_key, gt_file.path)
            return self._create_and_enqueue(record, idempotency_key)
        except BaseException:
            storage.delete_prefix(job_prefix(tenant, job_id))
            raise

    def _create_and_enqueue(self, record: JobRecord, idempotency_key: str | None) -> Submission:
        settings, store = self.context.settings, self.context.job_store
        try:
            store.create(
                record,
                max_active=settings.max_concurrent_jobs_per_tenant,
                idempotency_key=idempotency_key,
                idempotency_ttl_s=settings.idempotency_ttl_s,
            )
        except QuotaExceeded as exc:
            raise self.too_many_jobs(exc.active) from exc
        except DuplicateIdempotencyKey as exc:
            existing = store.get_for_tenant(exc.job_id, record.tenant)
            if existing is None:  # deleted in between: the key is free again next time
                raise ServiceUnavailable("please retry the request", code="retry") from exc
            self.context.storage.delete_prefix(job_prefix(record.tenant, record.id))
            return replay(existing, record.request_fingerprint)
        try:
            self.context.queue.enqueue(record.id, record.tenant)
        except QueueUnavailable as exc:
            store.purge(record.id)
            raise ServiceUnavailable(
                "the job queue is unavailable; nothing was accepted, please retry",
                code="broker_unavailable",
            ) from exc
        self.context.metrics.jobs_submitted.labels(record.params["method"]).inc()
        return Submission(record, created=True)
