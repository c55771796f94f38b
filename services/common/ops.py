"""Operational endpoints every service serves: ``/health``, ``/ready`` and ``/metrics``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from opentelemetry import trace
from opentelemetry.propagate import extract
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
    """Readiness: 200 only when every dependency answers; 503 names the failing ones. Why a
    check failed (hosts, ports, driver messages) goes to the log only: /ready is reachable
    through the gateway."""
    checks: dict[str, ReadinessCheck] = getattr(request.app.state, "readiness_checks", {})
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(), READY_TIMEOUT_SECONDS)
            results[name] = "ok"
        except Exception as exc:
            logger.warning(
                "readiness check %s failed: %s: %s",
                name,
                type(exc).__name__,
                exc,
                extra=_caller_trace(request),
            )
            results[name] = "unavailable"
    failing = [name for name, result in results.items() if result != "ok"]
    if failing:
        body = {
            "status": "unavailable",
            "checks": results,
            "detail": f"unavailable: {', '.join(failing)}",
        }
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "checks": results})


def _caller_trace(request: Request) -> dict[str, str]:
    """The trace id the caller sent, if any: probes are not traced (telemetry.UNTRACED_PATHS),
    so a person who asked with a ``traceparent`` finds the reason by their own trace id."""
    context = trace.get_current_span(extract(request.headers)).get_span_context()
    return {"trace_id": format(context.trace_id, "032x")} if context.is_valid else {}


@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
