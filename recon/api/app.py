"""`create_app(settings)`: the FastAPI application, its routers and its error mapping.

Every non-2xx answer carries one body shape, ``{"error": {"code", "message", "detail"}}``,
including FastAPI's own 404/405/422 and dependency outages (503), whose message never carries
the infrastructure's own text (it goes to the log). `/readyz` alone answers 503 with its
``{"status", "checks"}`` body, as load balancers expect.
"""

import logging
from collections.abc import Mapping
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from recon.api.context import ServiceContext
from recon.api.errors import ApiError
from recon.api.metrics import MetricsMiddleware
from recon.api.routes import health, reconstructions, web
from recon.infra.job_views import API_PREFIX
from recon.infra.settings import Settings
from recon.infra.storage import StorageUnavailable
from recon.infra.task_queue import QueueUnavailable

logger = logging.getLogger(__name__)

API_TITLE = "Point-cloud reconstruction service"
API_VERSION = "1.0.0"
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status_code: int,
    code: str,
    message: str,
    detail: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A response with the single error body."""
    body = {"error": {"code": code, "message": message, "detail": jsonable_encoder(detail)}}
    return JSONResponse(body, status_code=status_code, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, exc.detail, exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    return error_response(exc.status_code, code, str(exc.detail), None, exc.headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
    return error_response(422, "invalid_request", "the request has invalid fields", detail)


async def _dependency_down(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("dependency unavailable during %s %s: %s", request.method, request.url.path, exc)
    return error_response(
        503, "dependency_unavailable", "a backing service is unavailable; retry later"
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("unhandled error during %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "an unexpected error occurred")


def create_app(
    settings: Settings,
    *,
    context: ServiceContext | None = None,
    web_files: web.WebFiles | None = None,
) -> FastAPI:
    """Build the API for `settings` (raises `MissingApiKeys` when no key is configured); the
    page at `/` is served from `web_files` (default: the files shipped with the package)."""
    context = context or ServiceContext.from_settings(settings)
    app = FastAPI(title=API_TITLE, version=API_VERSION, docs_url="/docs", redoc_url=None)
    app.state.context = context
    app.include_router(reconstructions.router, prefix=API_PREFIX)
    # The unversioned paths of before /v1: the same routes, documented in the README as aliases.
    app.include_router(reconstructions.router, include_in_schema=False)
    app.include_router(health.router)
    app.include_router(web.build_router(web_files))
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    for outage in (redis.ConnectionError, redis.TimeoutError, StorageUnavailable, QueueUnavailable):
        app.add_exception_handler(outage, _dependency_down)
    app.add_exception_handler(Exception, _unexpected)
    app.add_middleware(MetricsMiddleware, metrics=context.metrics)
    return app
