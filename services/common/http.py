"""The one pooled aiohttp session a process uses to call other services."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp.client_middlewares import ClientHandlerType, ClientMiddlewareType

from services.common.errors import DependencyUnavailable
from services.common.metrics import track_dependency


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def create_http_session(
    *, timeout_seconds: float, authorization: Callable[[], str] | None = None
) -> aiohttp.ClientSession:
    """Create in a lifespan, close on shutdown; connections are reused across requests.
    ``authorization`` supplies the service's own credentials for every call it makes."""
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=100, keepalive_timeout=30)
    middlewares: list[ClientMiddlewareType] = []
    if authorization is not None:
        header = authorization

        async def authorize(
            request: aiohttp.ClientRequest, handler: ClientHandlerType
        ) -> aiohttp.ClientResponse:
            request.headers["Authorization"] = header()
            return await handler(request)

        middlewares.append(authorize)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=timeout_seconds),
        json_serialize=_dumps,
        raise_for_status=False,
        middlewares=middlewares,
    )


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    target: str,
    operation: str,
    json: object = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any]:
    """One call to another service. 4xx answers are returned for the caller to interpret;
    a 5xx, a timeout or a refused connection raise ``DependencyUnavailable`` (502)."""
    async with track_dependency(target, operation):
        try:
            async with session.request(
                method, url, json=json, params=params, headers=headers
            ) as response:
                if response.status >= 500:
                    raise DependencyUnavailable(
                        target,
                        status_code=502,
                        detail=f"{target} failed to answer ({response.status})",
                    )
                body = None
                if response.status != 204:
                    raw = await response.read()
                    body = orjson.loads(raw) if raw else None
                return response.status, body
        except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
            raise DependencyUnavailable(
                target, status_code=502, detail=f"{target} unavailable"
            ) from exc
