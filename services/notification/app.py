"""notification-service app: ``uvicorn --factory services.notification.app:create_app``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.common import build_app
from services.notification.hub import Hub
from services.notification.router import SocketsFirst, router
from services.notification.settings import NotificationSettings
from services.notification.stream import NotificationStream


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
        stream = app.state.stream = NotificationStream(settings, hub)
        # Ready once attached to the stream and read up to its tail: the backlog is whole.
        app.state.readiness_checks = {"notification-stream": stream.check}
        # In the background: a Swarm stack ignores start order, the broker may come later.
        reading = asyncio.create_task(stream.run(), name="notification-stream")
        try:
            yield
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
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
