"""Builds a service's FastAPI app with the parts every service shares."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from fastapi import APIRouter, FastAPI
from starlette.types import ASGIApp

from services.common.auth import AuthSettings, ServiceCredentials, TokenVerifier
from services.common.errors import install_error_handlers
from services.common.limits import BodySizeLimitMiddleware
from services.common.logging import configure_logging
from services.common.metrics import MetricsMiddleware
from services.common.ops import router as ops_router
from services.common.settings import ServiceSettings
from services.common.telemetry import (
    FASTAPI_TELEMETRY_OFF,
    ServerSpans,
    setup_tracing,
    shutdown_tracing,
)


class ServiceApp(FastAPI):
    """A service's app: FastAPI with a server span around every request (``ServerSpans``),
    outside the error handling so that an unhandled error's log line is in the trace."""

    def build_middleware_stack(self) -> ASGIApp:
        return ServerSpans(super().build_middleware_stack())


class Lifespan(Protocol):
    def __call__(self, app: FastAPI) -> AbstractAsyncContextManager[Any]: ...


def settle_garbage_collector(*, young: int, full_every: int) -> None:
    """Once started: everything loaded so far (modules, schemas, routes) lives as long as the
    process, so it leaves the collector's sight and a full collection no longer walks it; a
    young collection comes after ``young`` net new container objects, and a full one every
    ``full_every`` collections of the middle generation."""
    gc.collect()
    gc.freeze()
    _, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, full_every)


def build_app(
    *,
    name: str,
    title: str,
    settings: ServiceSettings,
    lifespan: Lifespan,
    routers: Sequence[APIRouter],
    description: str = "",
    calls_other_services: bool = False,
) -> FastAPI:
    """``calls_other_services``: the service presents credentials to the others' internal
    endpoints (``app.state.service_credentials``), checked here so that a configuration
    that cannot provide them stops the start."""
    configure_logging(name, settings.log_level)
    auth = AuthSettings()
    auth.refuse_unsafe(settings.environment)
    setup_tracing(name)

    @asynccontextmanager
    async def lifespan_then_flush(app: FastAPI) -> AsyncIterator[Any]:
        try:
            async with lifespan(app) as state:
                settle_garbage_collector(
                    young=settings.gc_young_collection_threshold,
                    full_every=settings.gc_full_collection_every,
                )
                yield state
        finally:
            shutdown_tracing()  # spans of the last requests still reach the collector

    app = ServiceApp(
        title=title,
        description=description,
        version="1.0.0",
        lifespan=lifespan_then_flush,
        telemetry=FASTAPI_TELEMETRY_OFF,
    )
    app.state.settings = settings
    app.state.token_verifier = TokenVerifier(auth)
    if calls_other_services:
        app.state.service_credentials = ServiceCredentials(auth, name)
    app.state.readiness_checks = {}
    install_error_handlers(app)
    app.include_router(ops_router)
    for router in routers:
        app.include_router(router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware)
    return app
