"""approval-request-service: approval documents on MongoDB, hand-offs over RabbitMQ, and an
outbox relay that delivers every side effect a state change implies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from pymongo import AsyncMongoClient
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError
from tenacity import AsyncRetrying, before_sleep_log, wait_exponential

from services.approval_request import workflow
from services.approval_request.clients.employee import (
    LeaveRefused,
    cancel_leave,
    hold_leave,
    record_approved_leave,
    release_leave,
)
from services.approval_request.clients.notify import NotificationRefused, send_notification
from services.approval_request.db_metrics import CommandTimer
from services.approval_request.outbox import OutboxRelay, PermanentFailure
from services.approval_request.publisher import WorkPublisher
from services.approval_request.repository import ApprovalRepository, BackfillUnderWay
from services.approval_request.router import internal, router
from services.approval_request.schemas import FinalStatus
from services.approval_request.settings import ApprovalRequestSettings
from services.common import build_app, create_http_session

logger = logging.getLogger(__name__)


def _deliverers(app: FastAPI, publisher: WorkPublisher) -> dict[str, Any]:
    settings: ApprovalRequestSettings = app.state.settings

    async def handoff(payload: dict[str, Any], doc: dict[str, Any]) -> list[workflow.Effect]:
        await publisher.publish(payload)
        return []

    async def leave_cancel(payload: dict[str, Any], doc: dict[str, Any]) -> list[workflow.Effect]:
        request_id = payload["requestId"]
        try:
            cancelled = await cancel_leave(
                app.state.http, settings.employee_service_url, request_id
            )
        except LeaveRefused as exc:
            raise PermanentFailure(str(exc)) from exc
        if not cancelled:
            logger.info("request %d had no leave record to cancel", request_id)
        return [workflow.Effect("notify", workflow.leave_cancelled_notification(payload, doc))]

    async def withdrawal(payload: dict[str, Any], doc: dict[str, Any]) -> list[workflow.Effect]:
        await publisher.publish(payload)
        return []

    async def reassignment(payload: dict[str, Any], doc: dict[str, Any]) -> list[workflow.Effect]:
        await publisher.publish(payload)
        return []

    async def notify(payload: dict[str, Any], doc: dict[str, Any]) -> list[workflow.Effect]:
        try:
            await send_notification(app.state.http, settings.notification_service_url, payload)
        except NotificationRefused as exc:
            raise PermanentFailure(str(exc)) from exc
        return []

    async def leave(payload: dict[str, Any], doc: dict[str, Any]) -> list[workflow.Effect]:
        if doc["finalStatus"] == FinalStatus.CANCELLED:
            # Cancelled before this confirmation got through: employee-service has given
            # the days back (or will); recording the leave now would take them again.
            return []
        try:
            await record_approved_leave(app.state.http, settings.employee_service_url, payload)
        except LeaveRefused as exc:
            raise PermanentFailure(str(exc)) from exc
        notification = workflow.leave_confirmed_notification(payload, doc["title"])
        return [workflow.Effect("notify", notification)]

    async def leave_hold(payload: dict[str, Any], doc: dict[str, Any]) -> list[workflow.Effect]:
        if workflow.awaiting_index(doc) is None:
            # Decided already: the confirmation or the release settles the reservation,
            # and a hold after a release would be refused.
            return []
        try:
            await hold_leave(app.state.http, settings.employee_service_url, payload["requestId"])
        except LeaveRefused as exc:
            raise PermanentFailure(str(exc)) from exc
        return []

    async def leave_release(payload: dict[str, Any], doc: dict[str, Any]) -> list[workflow.Effect]:
        request_id = payload["requestId"]
        try:
            released = await release_leave(
                app.state.http, settings.employee_service_url, request_id
            )
        except LeaveRefused as exc:
            raise PermanentFailure(str(exc)) from exc
        if not released:
            logger.info("request %d had no reservation to release", request_id)
        return []

    return {
        "handoff": handoff,
        "notify": notify,
        "leave": leave,
        "leave_hold": leave_hold,
        "leave_release": leave_release,
        "withdrawal": withdrawal,
        "reassignment": reassignment,
        "leave_cancel": leave_cancel,
    }


async def _prepare_database(repository: ApprovalRepository) -> None:
    async for attempt in AsyncRetrying(
        wait=wait_exponential(multiplier=0.2, max=5),
        before_sleep=before_sleep_log(logger, logging.WARNING),
    ):
        with attempt:
            await repository.ensure_indexes()
            filled = await repository.backfill_id_buckets()
            if filled:
                logger.info("idBucket backfilled on %d approval documents", filled)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ApprovalRequestSettings = app.state.settings
    PymongoInstrumentor().instrument()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        serverSelectionTimeoutMS=3000,
        event_listeners=[CommandTimer()],
    )
    repository = ApprovalRepository(
        mongo[settings.mongo_db], relay_lease=timedelta(seconds=settings.outbox_lease_seconds)
    )
    publisher = WorkPublisher(settings.amqp_url)
    app.state.repository = repository
    app.state.http = create_http_session(
        timeout_seconds=settings.http_timeout_seconds,
        authorization=app.state.service_credentials.header,
    )
    app.state.relay = relay = OutboxRelay(
        repository,
        _deliverers(app, publisher),
        poll_seconds=settings.outbox_poll_seconds,
        max_backoff_seconds=settings.outbox_max_backoff_seconds,
        batch=settings.outbox_batch,
    )
    app.state.readiness_checks = {"mongodb": repository.ping, "rabbitmq": publisher.check}
    background = [
        asyncio.create_task(_prepare_database(repository)),
        asyncio.create_task(publisher.start()),
    ]
    relay.start()
    try:
        yield
    finally:
        await relay.stop()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        await publisher.close()
        await app.state.http.close()
        await mongo.close()


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": "Database unavailable, try again shortly"},
        status_code=503,
        headers={"Retry-After": "2"},
    )


async def _backfill_under_way(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": "Database being prepared after an upgrade, try again shortly"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


def create_app(settings: ApprovalRequestSettings | None = None) -> FastAPI:
    app = build_app(
        name="approval-request-service",
        title="approval-request-service",
        description="Creates approval requests, applies decisions, confirms leave.",
        settings=settings or ApprovalRequestSettings(),
        lifespan=lifespan,
        calls_other_services=True,
        routers=[internal, router],
    )
    app.add_exception_handler(ConnectionFailure, _database_down)
    app.add_exception_handler(ServerSelectionTimeoutError, _database_down)
    app.add_exception_handler(BackfillUnderWay, _backfill_under_way)
    if app.state.settings.test_mode:  # provider states for contract verification
        from services.approval_request.testing import router as testing_router

        app.include_router(testing_router)
    return app
