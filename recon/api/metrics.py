"""Prometheus metrics of the API: requests by route and status, latency, submissions, queue depth.

Each app gets its own registry (tests build many apps in one process). Routes are labelled by
their template (``/reconstructions/{job_id}``), never by the raw path, so ids cannot blow up
the label cardinality; unmatched paths share one label.
"""

import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "<unmatched>"
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    """The API's Prometheus collectors in a private registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "recon_http_requests_total",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "recon_http_request_duration_seconds",
            "Time to the response's first byte, by route template and method.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.jobs_submitted = Counter(
            "recon_jobs_submitted_total",
            "Reconstruction jobs accepted, by method.",
            ["method"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "recon_queue_depth",
            "Messages waiting in the reconstruction queue (NaN when the broker is down).",
            registry=self.registry,
        )

    def render(self, queue_depth: int | None) -> bytes:
        """The exposition text with `queue_depth` (None, when the broker is down, gives NaN).

        The depth comes from the readiness cache, so a scrape never opens a broker connection.
        """
        self.queue_depth.set(float("nan") if queue_depth is None else queue_depth)
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI middleware counting every HTTP request (streaming responses included)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.metrics.latency.labels(_route(scope), scope["method"]).observe(
                    time.perf_counter() - started
                )
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.requests.labels(_route(scope), scope["method"], str(status)).inc()


def _route(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE
