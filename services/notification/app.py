"""notification-service app: ``uvicorn --factory services.notification.app:create_app``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common import build_app
from services.notification.hub import Hub
from services.notification.router import SocketsFirst, router
from services.notification.settings import NotificationSettings


def create_app(settings: NotificationSettings | None = None) -> SocketsFirst:
    settings = settings or NotificationSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub = Hub(
            backlog_per_employee=settings.backlog_per_employee,
            backlog_total=settings.backlog_total,
            send_queue_size=settings.send_queue_size,
            max_connections_per_employee=settings.max_connections_per_employee,
        )
        app.state.hub = hub
        # The hub lives in this process: there is no dependency to be ready for.
        app.state.readiness_checks = {}
        try:
            yield
        finally:
            await hub.close_all()

    app = build_app(
        name="notification-service",
        title="Notification Service",
        description="Live approval and leave notifications for employees over WebSockets.",
        settings=settings,
        lifespan=lifespan,
        routers=[router],
    )
    return SocketsFirst(app)
