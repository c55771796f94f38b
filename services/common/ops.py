"""Operational endpoints every service serves: ``/health``, ``/ready`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

logger = logging.getLogger(__name__)

ReadinessCheck = Callable[[], Awaitable[object]]
READY_TIMEOUT_SECONDS = 2.0

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]


@router.get("/health", response_model=Health)
async def health() -> Health:
    """Liveness: the process answers. Touches no dependency."""
    return Health(status="healthy")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def ready(request: Request) -> Response:
    """Readiness: 200 only when every dependency answers; 503 names the failing ones."""
    checks: dict[str, ReadinessCheck] = getattr(request.app.state, "readiness_checks", {})
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), READY_TIMEOUT_SECONDS)
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"unavailable: {type(exc).__name__}: {exc}"[:300]
    failing = [name for name, result in results.items() if result != "ok"]
    if failing:
        logger.warning("not ready: %s", ", ".join(failing))
        body = {
            "status": "unavailable",
            "checks": results,
            "detail": f"unavailable: {', '.join(failing)}",
        }
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "checks": results})


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
