"""employee-service: employees, attendance and leave records on MySQL."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.instrumentation.utils import unwrap
from sqlalchemy import Engine, text
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from services.common import build_app
from services.employee import db_metrics
from services.employee.attendance.router import router as attendance_router
from services.employee.db import create_engine, create_sessionmaker
from services.employee.dev_sign_in.router import mount_if_development
from services.employee.employees.router import router as employees_router
from services.employee.holidays.router import router as holidays_router
from services.employee.leaves.reservations_router import router as reservations_router
from services.employee.leaves.router import router as leaves_router
from services.employee.leaves.sweep import sweep_forever
from services.employee.settings import EmployeeSettings

DATABASE_DOWN = "Database unavailable, try again shortly"
logger = logging.getLogger(__name__)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: EmployeeSettings = app.state.settings
    engine = create_engine(settings)
    # Changes made under a row lock (leave reservations, the expiry sweep) run at READ
    # COMMITTED, in a pool of their own whose connections are set so once.
    locking_engine = create_engine(settings, isolation_level="READ COMMITTED")
    SQLAlchemyInstrumentor().instrument(engines=[engine.sync_engine, locking_engine.sync_engine])
    for each in (engine, locking_engine):
        db_metrics.instrument(each.sync_engine)
    # The instrumentor also wraps Engine.connect in a "connect" span. Here that is a pool
    # checkout, not a connection being made: a span per request that tells nothing the
    # server span does not, ~100 µs of a traced request's CPU. Statements keep their spans.
    unwrap(Engine, "connect")
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.locking_sessionmaker = create_sessionmaker(locking_engine)

    async def database() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    app.state.readiness_checks = {"mysql": database}
    sweeper = asyncio.create_task(
        sweep_forever(app.state.locking_sessionmaker, settings.reservation_sweep_seconds)
    )
    try:
        yield
    finally:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await engine.dispose()
        await locking_engine.dispose()


async def _database_down(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("database unavailable, answered 503: %s", exc)
    return JSONResponse({"detail": DATABASE_DOWN}, status_code=503, headers={"Retry-After": "2"})


def create_app(settings: EmployeeSettings | None = None) -> FastAPI:
    app = build_app(
        name="employee-service",
        title="employee-service",
        description="Employees, attendance check-in/out, leave records, balances and holidays.",
        settings=settings or EmployeeSettings(),
        lifespan=lifespan,
        routers=[
            employees_router,
            attendance_router,
            leaves_router,
            reservations_router,
            holidays_router,
        ],
    )
    app.add_exception_handler(OperationalError, _database_down)
    app.add_exception_handler(PoolTimeout, _database_down)
    app.add_exception_handler(InterfaceError, _database_down)
    mount_if_development(app)
    if app.state.settings.test_mode:  # provider states for contract verification
        from services.employee.testing import router as testing_router

        app.include_router(testing_router)
    return app
