"""Prometheus metrics every service exports: RED per route template and dependency calls."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "http_server_requests_total",
    "HTTP requests served, by route template and status code.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "http_server_request_duration_seconds",
    "Time to serve an HTTP request, by route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
DEPENDENCY_LATENCY = Histogram(
    "erp_dependency_call_duration_seconds",
    "Calls to databases, brokers and other services, by target, operation and outcome.",
    ["target", "operation", "outcome"],
    buckets=LATENCY_BUCKETS,
)
DEPENDENCY_ERRORS = Counter(
    "erp_dependency_errors_total",
    "Failed calls to databases, brokers and other services, by target and operation.",
    ["target", "operation"],
)


class MetricsMiddleware:
    """Counts and times each request under its route template (bounded label values)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


@asynccontextmanager
async def track_dependency(target: str, operation: str) -> AsyncIterator[None]:
    """Time one call to ``target``; any exception counts as an error and propagates."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except BaseException:
        outcome = "error"
        DEPENDENCY_ERRORS.labels(target, operation).inc()
        raise
    finally:
        DEPENDENCY_LATENCY.labels(target, operation, outcome).observe(time.perf_counter() - started)


def observe_dependency(target: str, operation: str, seconds: float, *, ok: bool) -> None:
    """For callers that learn of a call's end through a callback (database event hooks)."""
    if not ok:
        DEPENDENCY_ERRORS.labels(target, operation).inc()
    DEPENDENCY_LATENCY.labels(target, operation, "ok" if ok else "error").observe(seconds)
