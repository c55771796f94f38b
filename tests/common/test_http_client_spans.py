"""Calls to other services: one CLIENT span each, whose context reaches the peer in the
``traceparent`` header. A real aiohttp server on loopback answers; the spans go to an
in-memory exporter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry import context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from services.common import http
from services.common.errors import DependencyUnavailable
from services.common.http import create_http_session, request_json
from services.common.telemetry import traceparent_context, with_call_attributes


@pytest.fixture
def exported(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(http, "tracer", provider.get_tracer("test"))
    return exporter


@pytest.fixture
async def peer() -> AsyncIterator[TestServer]:
    async def notify(request: web.Request) -> web.Response:
        return web.json_response({"traceparent": request.headers.get("traceparent")}, status=202)

    async def missing(request: web.Request) -> web.Response:
        return web.json_response({"detail": "Employee not found"}, status=404)

    app = web.Application()
    app.router.add_post("/notify", notify)
    app.router.add_get("/employees/{employee_id}", missing)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def _call(method: str, url: str, *, json: object = None) -> tuple[int, Any]:
    async with create_http_session(timeout_seconds=5) as session:
        return await request_json(session, method, url, target="peer", operation="call", json=json)


def _only(exporter: InMemorySpanExporter) -> ReadableSpan:
    (span,) = exporter.get_finished_spans()
    return span


async def test_a_call_gets_a_client_span_whose_context_reaches_the_peer(
    peer: TestServer, exported: InMemorySpanExporter
) -> None:
    status, body = await _call("POST", str(peer.make_url("/notify")), json={"employeeId": 7})
    assert status == 202
    span = _only(exported)
    assert span.name == "POST"
    assert span.kind is SpanKind.CLIENT
    assert span.attributes is not None
    assert span.attributes["http.request.method"] == "POST"
    assert span.attributes["url.full"] == str(peer.make_url("/notify"))
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["server.port"] == peer.port
    assert span.attributes["http.response.status_code"] == 202
    trace_id, span_id = body["traceparent"].split("-")[1:3]
    assert trace_id == format(span.context.trace_id, "032x")
    assert span_id == format(span.context.span_id, "016x")


async def test_a_token_in_the_called_url_is_not_recorded(
    peer: TestServer, exported: InMemorySpanExporter
) -> None:
    url = peer.make_url("/employees/7").with_query(token="s3cr3t-t0ken-value-of-length")
    await _call("GET", str(url))
    span = _only(exported)
    assert span.attributes is not None
    assert span.attributes["url.full"] == str(peer.make_url("/employees/7")) + "?token=REDACTED"


async def test_a_4xx_answer_marks_the_client_span_failed(
    peer: TestServer, exported: InMemorySpanExporter
) -> None:
    status, _ = await _call("GET", str(peer.make_url("/employees/4242")))
    assert status == 404
    span = _only(exported)
    assert span.attributes is not None
    assert span.attributes["error.type"] == "404"
    assert span.status.status_code is StatusCode.ERROR


async def test_a_refused_connection_is_recorded_on_the_span_and_raised(
    exported: InMemorySpanExporter,
) -> None:
    with pytest.raises(DependencyUnavailable):
        await _call("POST", "http://127.0.0.1:9/notify")  # the discard port: nothing listens
    span = _only(exported)
    assert span.attributes is not None
    assert span.attributes["error.type"] == "ClientConnectorError"
    assert span.status.status_code is StatusCode.ERROR


async def test_a_call_in_a_labelled_context_is_a_child_of_it_and_carries_its_labels(
    peer: TestServer, exported: InMemorySpanExporter
) -> None:
    """How the outbox relay delivers: in the stored trace, its call's span labelled."""
    stored = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    labels = {"erp.effect": "notify", "erp.attempt": 2}
    token = context.attach(with_call_attributes(traceparent_context(stored), labels))
    try:
        await _call("POST", str(peer.make_url("/notify")), json={"employeeId": 7})
    finally:
        context.detach(token)
    await _call("POST", str(peer.make_url("/notify")), json={"employeeId": 7})

    labelled, plain = exported.get_finished_spans()
    assert labelled.parent is not None
    assert format(labelled.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
    assert format(labelled.parent.span_id, "016x") == "b7ad6b7169203331"
    assert labelled.attributes is not None
    assert (labelled.attributes["erp.effect"], labelled.attributes["erp.attempt"]) == ("notify", 2)
    assert plain.parent is None
    assert plain.attributes is not None
    assert "erp.effect" not in plain.attributes
