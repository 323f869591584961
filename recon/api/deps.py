"""Typed dependencies for handlers: the service context, the caller's tenant, an owned job.

They are coroutines because none of them blocks (the key check only hashes): FastAPI runs a
plain function dependency in its thread pool, and at hundreds of status polls per second each
such hop adds latency. Job-store reads go to the thread pool explicitly.

async def handler(tenant: CurrentTenant, job: OwnedJob, store: JobStoreDep) -> ...
"""

from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from recon.api.auth import presented_key
from recon.api.context import ServiceContext
from recon.api.errors import NotFound, Unauthorized
from recon.infra.job_record import JobRecord
from recon.infra.job_store import JobStore
from recon.infra.settings import Settings
from recon.infra.storage import ObjectStorage, is_valid_job_id

BEARER_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="recon"'}


async def get_context(request: Request) -> ServiceContext:
    """The process's `ServiceContext`, built by `create_app`."""
    context: ServiceContext = request.app.state.context
    return context


ContextDep = Annotated[ServiceContext, Depends(get_context)]


async def get_settings(context: ContextDep) -> Settings:
    """The process's settings."""
    return context.settings


async def get_job_store(context: ContextDep) -> JobStore:
    """The shared job store."""
    return context.job_store


async def get_storage(context: ContextDep) -> ObjectStorage:
    """The configured object storage backend."""
    return context.storage


SettingsDep = Annotated[Settings, Depends(get_settings)]
JobStoreDep = Annotated[JobStore, Depends(get_job_store)]
StorageDep = Annotated[ObjectStorage, Depends(get_storage)]


async def current_tenant(request: Request, context: ContextDep) -> str:
    """The tenant owning the request's API key (Bearer or X-API-Key); 401 otherwise."""
    key = presented_key(request.headers)
    if key is None:
        raise Unauthorized(
            "send an API key as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
            code="missing_api_key",
            headers=BEARER_CHALLENGE,
        )
    tenant = context.api_keys.tenant_for(key)
    if tenant is None:
        raise Unauthorized(
            "the API key is not valid", code="invalid_api_key", headers=BEARER_CHALLENGE
        )
    return tenant


CurrentTenant = Annotated[str, Depends(current_tenant)]


async def owned_job(job_id: str, tenant: CurrentTenant, store: JobStoreDep) -> JobRecord:
    """The job `job_id` when it belongs to the caller; 404 for malformed, unknown or foreign ids."""
    if not is_valid_job_id(job_id):
        raise NotFound("no such reconstruction", code="job_not_found")
    record = await run_in_threadpool(store.get_for_tenant, job_id, tenant)
    if record is None:
        raise NotFound("no such reconstruction", code="job_not_found")
    return record


OwnedJob = Annotated[JobRecord, Depends(owned_job)]
