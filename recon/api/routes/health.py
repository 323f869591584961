"""Liveness (`/healthz`), readiness (`/readyz`: job store, storage, broker) and `/metrics`."""

import asyncio
from collections.abc import Callable

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from recon.api.deps import ContextDep
from recon.schemas import ErrorBody

router = APIRouter(tags=["operations"])

OK = "ok"


async def _check(probe: Callable[[], object]) -> str:
    try:
        await run_in_threadpool(probe)
    except Exception as exc:  # any failure means "not ready"; say which and why
        return f"unavailable: {type(exc).__name__}: {exc}"[:300]
    return OK


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive (no dependency is contacted)."""
    return {"status": OK}


@router.get("/readyz", responses={503: {"model": ErrorBody}})
async def readyz(context: ContextDep) -> JSONResponse:
    """Ready when the job store, the storage and the broker all answer; 503 names the others."""
    probes = {
        "job_store": context.job_store.ping,
        "storage": context.storage.ping,
        "broker": context.queue.ping,
    }
    states = await asyncio.gather(*(_check(probe) for probe in probes.values()))
    checks = dict(zip(probes, states, strict=True))
    down = sorted(name for name, state in checks.items() if state != OK)
    if not down:
        return JSONResponse({"status": "ready", "checks": checks})
    body = {
        "error": {
            "code": "not_ready",
            "message": f"unavailable: {', '.join(down)}",
            "detail": {"checks": checks, "down": down},
        }
    }
    return JSONResponse(body, status_code=503)


@router.get("/metrics", response_class=Response)
async def metrics(context: ContextDep) -> Response:
    """Prometheus exposition: request counts and latency, submissions, queue depth."""
    text = await run_in_threadpool(context.metrics.render, context.queue.depth)
    return Response(text, media_type=context.metrics.content_type)
