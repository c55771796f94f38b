"""The one pooled aiohttp session a process uses to call other services."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp.client_middlewares import ClientHandlerType, ClientMiddlewareType
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.util.types import AttributeValue

from services.common.errors import DependencyUnavailable
from services.common.metrics import track_dependency
from services.common.redaction import redact
from services.common.telemetry import call_attributes, inject_context

tracer = trace.get_tracer(__name__)


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


async def client_span(
    request: aiohttp.ClientRequest, handler: ClientHandlerType
) -> aiohttp.ClientResponse:
    """A CLIENT span per call, with the stable HTTP semantic conventions, whose context goes
    out in the W3C ``traceparent`` header: what ``opentelemetry-instrumentation-aiohttp-
    client`` records, made in an aiohttp client middleware instead. That instrumentation
    hooks aiohttp's ``TraceConfig`` signals, which makes aiohttp build and await about ten
    signal events per request; measured on this machine (3,000 calls to a local server,
    client CPU): 331-354 us a call with it, 245-266 us with this middleware, 201-211 us
    untraced."""
    url = request.url
    attributes: dict[str, AttributeValue] = {
        "http.request.method": request.method,
        "url.full": redact(str(url.with_user(None))),
        "server.address": url.host or "",
        "server.port": url.port or 80,
    }
    extra = call_attributes()
    if extra:
        attributes.update(extra)
    # Started, not made current: nothing under a call records a span, and the header gets
    # the span's context explicitly (no context switch in and out per call).
    span = tracer.start_span(request.method, kind=SpanKind.CLIENT, attributes=attributes)
    inject_context(request.headers, trace.set_span_in_context(span))
    try:
        response = await handler(request)
    except BaseException as exc:
        span.set_attribute("error.type", type(exc).__qualname__)
        span.set_status(StatusCode.ERROR)
        span.end()
        raise
    if response.status >= 400:
        span.set_attributes(
            {"http.response.status_code": response.status, "error.type": str(response.status)}
        )
        span.set_status(StatusCode.ERROR)
    else:
        span.set_attribute("http.response.status_code", response.status)
    span.end()
    return response


def create_http_session(
    *, timeout_seconds: float, authorization: Callable[[], str] | None = None
) -> aiohttp.ClientSession:
    """Create in a lifespan, close on shutdown; connections are reused across requests.
    ``authorization`` supplies the service's own credentials for every call it makes."""
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=100, keepalive_timeout=30)
    middlewares: list[ClientMiddlewareType] = [client_span]
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
