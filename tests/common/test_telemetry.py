"""Server spans: one per request, named after the route template, child of the caller's
``traceparent``; probes, scrapes and sockets stay untraced. Pure in-process: an SDK tracer
provider with an in-memory exporter behind ``ServerSpans`` around a FastAPI app, as the
services' ``ServiceApp`` has it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp

from services.common.app import ServiceApp
from services.common.telemetry import (
    FASTAPI_TELEMETRY_OFF,
    ServerSpans,
    current_traceparent,
    ending,
    traceparent_context,
)

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


def _app(exporter: InMemorySpanExporter) -> ASGIApp:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI(telemetry=FASTAPI_TELEMETRY_OFF)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise HTTPException(404, "no such item")
        trace.get_current_span().set_attribute("erp.request_id", item_id)
        return {"item": item_id}

    @app.get("/boom")
    async def boom() -> None:
        logging.getLogger("test").error("about to fail")
        raise RuntimeError("unexpected")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    @app.get("/ws/{employee_id}")
    async def socket_path(employee_id: int) -> dict[str, int]:
        return {"employee": employee_id}

    return ServerSpans(app, tracer_provider=provider)


async def _get(
    app: ASGIApp,
    path: str,
    headers: dict[str, str] | None = None,
    base_url: str = "http://127.0.0.1:8002",
    method: str = "GET",
) -> int:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as c:
        return (await c.request(method, path, headers=headers)).status_code


def _only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


async def test_a_request_gets_one_server_span_named_after_its_route_template(
    exported: InMemorySpanExporter,
) -> None:
    assert await _get(_app(exported), "/items/4242") == 200
    span = _only(exported)
    assert span.name == "GET /items/{item_id}"
    assert span.kind is SpanKind.SERVER
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["erp.request_id"] == 4242  # the handler's current span


async def test_the_server_span_continues_the_callers_trace(
    exported: InMemorySpanExporter,
) -> None:
    traceparent = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"
    await _get(_app(exported), "/items/7", headers={"traceparent": traceparent})
    span = _only(exported)
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_SPAN_ID


async def test_a_client_error_is_recorded_without_marking_the_span_failed(
    exported: InMemorySpanExporter,
) -> None:
    assert await _get(_app(exported), "/items/0") == 404
    span = _only(exported)
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 404
    assert span.status.status_code is not StatusCode.ERROR


async def test_a_request_span_records_the_stable_http_attributes(
    exported: InMemorySpanExporter,
) -> None:
    await _get(_app(exported), "/items/7?verbose=1")
    span = _only(exported)
    assert span.attributes is not None
    assert dict(span.attributes) == {
        "http.request.method": "GET",
        "url.scheme": "http",
        "url.path": "/items/7",
        "url.query": "verbose=1",
        "network.protocol.version": "1.1",
        "server.address": "127.0.0.1",
        "server.port": 8002,
        "http.route": "/items/{item_id}",
        "http.response.status_code": 200,
        "erp.request_id": 7,
    }


@pytest.mark.parametrize(
    ("base_url", "address", "port"),
    [("http://[::1]:8443", "::1", 8443), ("http://erp.example", "erp.example", 80)],
)
async def test_the_server_address_comes_from_the_host_header(
    exported: InMemorySpanExporter, base_url: str, address: str, port: int
) -> None:
    await _get(_app(exported), "/items/7", base_url=base_url)
    attributes = _only(exported).attributes
    assert attributes is not None
    assert (attributes["server.address"], attributes["server.port"]) == (address, port)


async def test_an_unhandled_error_fails_the_span_and_its_log_line_is_in_the_trace(
    exported: InMemorySpanExporter,
) -> None:
    seen: list[int] = []

    class Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(trace.get_current_span().get_span_context().trace_id)

    spy = Spy()
    logging.getLogger("test").addHandler(spy)
    try:
        assert await _get(_app(exported), "/boom") == 500
    finally:
        logging.getLogger("test").removeHandler(spy)
    span = _only(exported)
    assert span.name == "GET /boom"
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes is not None
    assert span.attributes["error.type"] == "RuntimeError"
    assert span.attributes["http.response.status_code"] == 500
    assert seen == [span.context.trace_id]


async def test_an_unrouted_request_is_named_by_its_method(
    exported: InMemorySpanExporter,
) -> None:
    assert await _get(_app(exported), "/nowhere") == 404
    span = _only(exported)
    assert span.name == "GET"
    assert span.attributes is not None
    assert "http.route" not in span.attributes


async def test_an_unknown_method_is_recorded_as_other(exported: InMemorySpanExporter) -> None:
    await _get(_app(exported), "/items/7", method="PURGE")
    span = _only(exported)
    assert span.name == "HTTP /items/{item_id}"  # routed, and refused there (405)
    assert span.attributes is not None
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "PURGE"


def test_a_service_app_has_the_server_spans_outside_its_error_handling() -> None:
    app = ServiceApp(telemetry=FASTAPI_TELEMETRY_OFF)
    stack = app.build_middleware_stack()
    assert isinstance(stack, ServerSpans)
    assert type(stack.app).__name__ == "ServerErrorMiddleware"


async def test_without_an_sdk_a_request_passes_through_spanless() -> None:
    app = FastAPI(telemetry=FASTAPI_TELEMETRY_OFF)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, bool]:
        return {"recording": trace.get_current_span().is_recording()}

    transport = httpx.ASGITransport(app=ServerSpans(app))  # no provider: the SDK is off
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8002") as c:
        assert (await c.get("/items/1")).json() == {"recording": False}


@pytest.mark.parametrize("path", ["/health", "/ws/42"])
async def test_probes_and_socket_paths_are_not_traced(
    exported: InMemorySpanExporter, path: str
) -> None:
    assert await _get(_app(exported), path) == 200
    assert exported.get_finished_spans() == ()


def test_a_stored_traceparent_names_the_span_that_was_current() -> None:
    provider = TracerProvider()
    with provider.get_tracer("test").start_as_current_span("decide") as span:
        stored = current_traceparent()
        carrier: dict[str, str] = {}
        TraceContextTextMapPropagator().inject(carrier)
    assert stored == carrier["traceparent"]  # the W3C header's own value
    restored = trace.get_current_span(traceparent_context(stored)).get_span_context()
    assert restored.trace_id == span.get_span_context().trace_id
    assert restored.span_id == span.get_span_context().span_id


@pytest.mark.parametrize("stored", [None, "", "00-not-a-traceparent-01"])
def test_a_missing_or_bad_stored_traceparent_gives_no_parent(stored: str | None) -> None:
    assert not trace.get_current_span(traceparent_context(stored)).get_span_context().is_valid


def test_no_current_span_stores_no_traceparent() -> None:
    assert current_traceparent() is None


def test_ending_a_started_span_marks_a_failure_and_lets_it_through() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with ending(tracer.start_span("ws push")):
        pass
    with pytest.raises(ConnectionResetError), ending(tracer.start_span("ws push")):
        raise ConnectionResetError("peer went away")

    fine, failed = exporter.get_finished_spans()
    assert fine.status.status_code is StatusCode.UNSET
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.attributes is not None
    assert failed.attributes["error.type"] == "ConnectionResetError"
