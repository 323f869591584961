"""`/reconstructions`: submit, inspect, list, download, cancel, delete and follow jobs."""

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from recon.api.caching import cache_headers, is_fresh
from recon.api.deps import (
    ContextDep,
    CurrentTenant,
    JobStoreDep,
    OwnedJob,
    SettingsDep,
    StorageDep,
)
from recon.api.errors import BadRequest, Conflict, NotFound
from recon.api.events import job_events, parse_last_event_id
from recon.api.input_points import DEFAULT_DISPLAY_POINTS, MAX_DISPLAY_POINTS, input_view
from recon.api.submissions import Submissions, check_idempotency_key
from recon.api.upload_slots import upload_slot
from recon.api.uploads import read_multipart, upload_temp_root
from recon.infra.job_record import JobRecord
from recon.infra.job_store import InvalidCursor, JobStore
from recon.infra.job_views import JOBS_PATH, job_path, to_job_public
from recon.infra.storage import (
    PREVIEW_OBJECT_NAME,
    ObjectNotFound,
    ObjectStorage,
    StorageError,
    is_valid_job_id,
    job_prefix,
    mesh_object_name,
)
from recon.schemas import (
    PARAMS_EXAMPLES,
    ErrorBody,
    JobPublic,
    JobsPublic,
    JobStatus,
    MeshFormat,
)

router = APIRouter(prefix=JOBS_PATH, tags=["reconstructions"])

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (400, 401, 404, 409, 413, 415, 422, 429, 503)
}
UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "Point cloud: PLY, XYZ/PTS text, NPY or LAS/LAZ.",
                        },
                        "params": {
                            "type": "string",
                            "description": "ReconstructionParams as JSON (fields in the "
                            "ReconstructionParams schema).",
                            "examples": [json.dumps(example) for example in PARAMS_EXAMPLES],
                        },
                        "ground_truth": {
                            "type": "string",
                            "format": "binary",
                            "description": "Optional reference mesh/points.",
                        },
                    },
                }
            }
        },
    }
}


def _job_response(record_view: JobPublic, status_code: int) -> JSONResponse:
    return JSONResponse(
        record_view.model_dump(mode="json"),
        status_code=status_code,
        headers={"Location": job_path(record_view.id)},
    )


@router.post(
    "", status_code=202, response_model=JobPublic, responses=ERRORS, openapi_extra=UPLOAD_SCHEMA
)
async def submit_reconstruction(
    request: Request,
    tenant: CurrentTenant,
    context: ContextDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Upload a point cloud; answers 202 with the queued job.

    A repeated Idempotency-Key answers 200 with its job when the request (params, file and
    ground truth, hashed as they stream in) is the same, 409 when it is not; the body must be
    read to tell, and a known key skips the job quota so that a retry still gets its job.
    Limits checked before the body is read: the job quota, then the uploads in flight.
    """
    key = check_idempotency_key(idempotency_key)
    submissions = Submissions(context)
    existing = None
    if key is not None:
        existing = await run_in_threadpool(context.job_store.find_idempotent, tenant, key)
    if existing is None:
        await run_in_threadpool(submissions.check_quota, tenant)
    settings = context.settings
    async with upload_slot(context, tenant):
        upload = await read_multipart(
            request, max_bytes=settings.max_upload_bytes, temp_dir=upload_temp_root(settings)
        )
        with upload:
            outcome = await run_in_threadpool(submissions.submit, tenant, upload, key, existing)
    return _job_response(to_job_public(outcome.record), 202 if outcome.created else 200)


@router.get("", response_model=JobsPublic, responses=ERRORS)
def list_reconstructions(
    tenant: CurrentTenant,
    store: JobStoreDep,
    settings: SettingsDep,
    limit: Annotated[
        int | None, Query(ge=1, description="Page size (capped by the server).")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JobsPublic:
    """The caller's jobs, newest first; pass `next_cursor` back as `cursor` for the next page."""
    size = min(limit or settings.list_default_limit, settings.list_max_limit)
    try:
        page = store.list_for_tenant(tenant, limit=size, cursor=cursor)
    except InvalidCursor as exc:
        raise BadRequest(str(exc), code="invalid_cursor") from exc
    return JobsPublic(items=[to_job_public(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/{job_id}", response_model=JobPublic, responses=ERRORS)
async def get_reconstruction(job: OwnedJob) -> JobPublic:
    """One job: status, progress, timestamps, metrics, warnings, error and links."""
    return to_job_public(job)


def _require_succeeded(job: JobRecord, what: str) -> None:
    """409 `job_not_finished` unless the job succeeded (its outputs exist only then)."""
    if job.status is not JobStatus.SUCCEEDED:
        raise Conflict(
            f"the job is {job.status.value}; {what} exists once it succeeded",
            code="job_not_finished",
            detail={"status": job.status.value},
        )


@router.get("/{job_id}/mesh", responses={**ERRORS, 307: {"description": "Presigned URL."}})
def download_mesh(
    job: OwnedJob,
    storage: StorageDep,
    format: MeshFormat = MeshFormat.GLB,
    redirect: Annotated[
        bool,
        Query(description="false: the API sends the bytes itself on S3 too (for a web page, "
              "which fetches with its key header; a presigned URL would need CORS)."),
    ] = True,
) -> Response:
    """The mesh bytes (local storage, or `redirect=false`) or a redirect to a short-lived
    presigned URL (S3)."""
    _require_succeeded(job, "the mesh")
    if format.value not in job.formats:
        raise NotFound(
            f"the job did not produce a {format.value} mesh",
            code="format_not_produced",
            detail={"formats": job.formats},
        )
    key = job.output_key(mesh_object_name(format.value))
    filename, media_type = f"reconstruction-{job.id}.{format.value}", format.media_type
    if not storage.exists(key):
        raise NotFound("the mesh file is missing from storage", code="artifact_missing")
    url = None
    if redirect:
        url = storage.presigned_url(key, filename=filename, content_type=media_type)
    if url is not None:
        return RedirectResponse(url, status_code=307)
    path = storage.local_path(key)
    if path is not None:
        return FileResponse(path, media_type=media_type, filename=filename)
    try:
        size, chunks = storage.size(key), storage.iter_bytes(key)
    except ObjectNotFound as exc:
        raise NotFound("the mesh file is missing from storage", code="artifact_missing") from exc
    headers = {"Content-Disposition": f'attachment; filename="{filename}"',
               "Content-Length": str(size)}
    return StreamingResponse(chunks, media_type=media_type, headers=headers)


@router.get(
    "/{job_id}/preview.png",
    responses={**ERRORS, 200: {"content": {"image/png": {}}}, 304: {"description": "Unchanged."}},
    response_class=Response,
)
def download_preview(
    job: OwnedJob,
    storage: StorageDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """A PNG picture of the mesh (transparent background, fixed camera), sent by the API on
    every storage backend so that a page can fetch it with its key header."""
    _require_succeeded(job, "the preview")
    key = job.output_key(PREVIEW_OBJECT_NAME)
    headers = cache_headers(key)
    if is_fresh(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    try:
        body = storage.get_bytes(key)
    except ObjectNotFound as exc:
        raise NotFound(
            "the job has no preview image (see its warnings)", code="preview_missing"
        ) from exc
    return Response(body, media_type="image/png", headers=headers)


@router.get(
    "/{job_id}/input",
    responses={**ERRORS, 200: {"content": {MeshFormat.GLB.media_type: {},
                                           MeshFormat.PLY.media_type: {}}},
               304: {"description": "Unchanged."}},
    response_class=Response,
)
async def download_input(
    job: OwnedJob,
    context: ContextDep,
    max_points: Annotated[
        int, Query(ge=1, le=MAX_DISPLAY_POINTS, description="At most this many points.")
    ] = DEFAULT_DISPLAY_POINTS,
    format: Annotated[
        Literal["glb", "ply"],
        Query(description="glb: one POINTS primitive in the mesh GLB's frame (metres, Y-up), "
              "COLOR_0 when the upload had colours; ply: the upload's own frame and units."),
    ] = "glb",
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The uploaded points for display over the mesh: a seeded uniform subset (the same on
    every request), in any status of the job."""
    headers = cache_headers(job.input_key, str(max_points), format)
    if is_fresh(if_none_match, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    body = await run_in_threadpool(input_view, context, job, max_points, format)
    headers["Content-Disposition"] = f'inline; filename="input-{job.id}.{format}"'
    return Response(body, media_type=MeshFormat(format).media_type, headers=headers)


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=ERRORS)
def cancel_reconstruction(job: OwnedJob, store: JobStoreDep) -> JSONResponse:
    """Cancel a job: at once when queued (200), cooperatively when running (202)."""
    status = None if job.is_final else store.request_cancel(job.id)
    if status is None:
        current = store.get(job.id)
        now = current.status.value if current else "deleted"
        raise Conflict(
            f"the job is already {now}", code="job_already_final", detail={"status": now}
        )
    record = store.get(job.id) or job
    code = 200 if status is JobStatus.CANCELED else 202
    return JSONResponse(to_job_public(record).model_dump(mode="json"), status_code=code)


@router.delete(
    "/{job_id}", status_code=204,
    responses={**ERRORS, 202: {"description": "Deletion recorded; it completes shortly."}},
)
def delete_reconstruction(
    job_id: str, tenant: CurrentTenant, store: JobStoreDep, storage: StorageDep
) -> Response:
    """Delete a job: stop it if it runs, then remove its files and its record.

    The deletion is recorded first (the job disappears for its tenant at once), then carried
    out: 204 when the files and the record are gone now, 202 when the job still has to stop or
    storage did not answer; the worker's sweeper then finishes it, so nothing is orphaned.
    Repeating the request while it is pending answers 202 again.
    """
    record = store.get(job_id) if is_valid_job_id(job_id) else None
    if record is None or record.tenant != tenant:
        raise NotFound("no such reconstruction", code="job_not_found")
    store.mark_deleted(job_id)
    if finish_deletion(store, storage, job_id):
        return Response(status_code=204)
    return Response(status_code=202)


def finish_deletion(store: JobStore, storage: ObjectStorage, job_id: str) -> bool:
    """Remove a stopped job's objects, then its record; False when it must wait for the sweeper."""
    record = store.get(job_id)
    if record is None:
        return True
    if not record.is_final:
        return False
    try:
        storage.delete_prefix(job_prefix(record.tenant, job_id))
    except StorageError:
        return False
    store.purge(job_id)
    return True


@router.get(
    "/{job_id}/events",
    responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}},
    response_class=StreamingResponse,
)
def follow_reconstruction(
    job: OwnedJob,
    store: JobStoreDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-sent events: `progress` while the job runs, then its final status, then close.

    Event ids are the job's version: a client reconnecting with `Last-Event-ID` gets only
    what changed since (the final event is always sent).
    """
    events = job_events(
        store,
        job.id,
        poll_interval_s=settings.events_poll_interval_s,
        max_duration_s=settings.events_max_duration_s,
        last_event_id=parse_last_event_id(last_event_id),
    )
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)
