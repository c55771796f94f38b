"""Server spans: one per request, named after the route template, child of the caller's
``traceparent``; probes, scrapes and sockets stay untraced. Pure in-process: an SDK tracer
provider with an in-memory exporter behind FastAPI's own telemetry, as the services use it."""

from __future__ import annotations

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

from services.common.telemetry import current_traceparent, server_telemetry, traceparent_context

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN_ID = "b7ad6b7169203331"


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


def _app(exporter: InMemorySpanExporter) -> FastAPI:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FastAPI(telemetry=server_telemetry(tracer_provider=provider))

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise HTTPException(404, "no such item")
        trace.get_current_span().set_attribute("erp.request_id", item_id)
        return {"item": item_id}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "healthy"}

    @app.get("/ws/{employee_id}")
    async def socket_path(employee_id: int) -> dict[str, int]:
        return {"employee": employee_id}

    return app


async def _get(app: FastAPI, path: str, headers: dict[str, str] | None = None) -> int:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8002") as c:
        return (await c.get(path, headers=headers)).status_code


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
