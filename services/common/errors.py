"""One error body shape, ``{"detail": ...}``, for every failure a service answers with."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

logger = logging.getLogger(__name__)


class DependencyUnavailable(Exception):
    """A database, broker or peer this request needs cannot answer; maps to 503 or 502."""

    def __init__(self, dependency: str, *, status_code: int = 503, detail: str | None = None):
        super().__init__(dependency)
        self.dependency = dependency
        self.status_code = status_code
        self.detail = detail or f"{dependency} is unavailable, try again shortly"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DependencyUnavailable)
    async def _unavailable(request: Request, exc: DependencyUnavailable) -> JSONResponse:
        logger.warning(
            "dependency %s unavailable for %s %s", exc.dependency, request.method, request.url.path
        )
        headers = {"Retry-After": "2"} if exc.status_code == 503 else None
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": "Internal server error"}, status_code=500)
