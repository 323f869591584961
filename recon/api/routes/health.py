"""Liveness (`/healthz`), readiness (`/readyz`: job store, storage, broker) and `/metrics`.

Readiness and the queue depth come from the process's `ReadinessCache`, so however often these
are polled the backends see at most one check per `readiness_cache_s`. `/readyz` says which
check failed, never why: the reason (hostnames, client errors) goes to the log. `/metrics`
requires `Authorization: Bearer <metrics_token>` when that setting is set.
"""

import hashlib
import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from recon.api.deps import ContextDep, SettingsDep
from recon.api.errors import Unauthorized
from recon.api.readiness import OK, ReadinessCache
from recon.schemas import ErrorBody

router = APIRouter(tags=["operations"])

METRICS_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="metrics"'}


class ReadinessBody(BaseModel):
    """The `/readyz` answer, 200 and 503 alike: each check's state, nothing more."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, Literal["ok", "unavailable"]]


async def get_readiness(request: Request, context: ContextDep) -> ReadinessCache:
    """The app's readiness cache, built on first use (on the event loop: no race)."""
    cache: ReadinessCache | None = getattr(request.app.state, "readiness", None)
    if cache is None:
        cache = ReadinessCache.for_context(context)
        request.app.state.readiness = cache
    return cache


ReadinessDep = Annotated[ReadinessCache, Depends(get_readiness)]


def require_metrics_token(request: Request, settings: SettingsDep) -> None:
    """401 unless the request carries the configured metrics token (when one is set)."""
    token = settings.metrics_token
    if token is None:
        return
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    # Digests first: compare_digest then also hides the presented token's length.
    expected = hashlib.sha256(token.get_secret_value().encode()).digest()
    given = hashlib.sha256(presented.strip().encode()).digest()
    if not (hmac.compare_digest(given, expected) and scheme.lower() == "bearer"):
        raise Unauthorized(
            "send the metrics token as 'Authorization: Bearer TOKEN'",
            code="invalid_metrics_token",
            headers=METRICS_CHALLENGE,
        )


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (no dependency is contacted)."""
    return {"status": OK}


@router.get("/readyz", response_model=ReadinessBody, responses={503: {"model": ReadinessBody}})
async def readyz(cache: ReadinessDep) -> JSONResponse:
    """200 when the job store, the storage and the broker answer; 503 names those that do not."""
    snapshot = await cache.current()
    status = "ready" if snapshot.ready else "not_ready"
    body = ReadinessBody.model_validate({"status": status, "checks": snapshot.checks})
    return JSONResponse(body.model_dump(), status_code=200 if snapshot.ready else 503)


@router.get(
    "/metrics",
    response_class=Response,
    responses={401: {"model": ErrorBody}},
    dependencies=[Depends(require_metrics_token)],
)
async def metrics(context: ContextDep, cache: ReadinessDep) -> Response:
    """Prometheus exposition: request counts and latency, submissions, queue depth."""
    snapshot = await cache.current()
    text = await run_in_threadpool(context.metrics.render, snapshot.queue_depth)
    return Response(text, media_type=context.metrics.content_type)
