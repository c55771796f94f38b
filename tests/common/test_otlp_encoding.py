"""The OTLP encoder writes what the stock encoder writes: both outputs are decoded with the
official OTLP classes and compared message for message, over spans that use every field
and every kind of attribute value. The exporter built on it delivers to a real HTTP
server on loopback."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as StockExporter,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
    set_span_in_context,
)

from services.common import otlp_encoding
from services.common.otlp_encoding import OTLPSpanExporter, SpanEncoder

REMOTE = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("erp", "a1"), ("vendor", "x")]),
)
LOCAL = SpanContext(trace_id=0x1, span_id=0x2, is_remote=False)


def _decoded(data: bytes) -> ExportTraceServiceRequest:
    message = ExportTraceServiceRequest()
    message.ParseFromString(data)
    return message


def _stock(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    return _decoded(encode_spans(spans).SerializePartialToString())


def _record(provider: TracerProvider) -> None:
    plain = provider.get_tracer("erp.plain")
    scoped = provider.get_tracer(
        "erp.scoped", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.26.0"
    )
    with plain.start_as_current_span(
        "POST /approvals",
        kind=SpanKind.SERVER,
        context=set_span_in_context(NonRecordingSpan(REMOTE)),
        attributes={
            "http.request.method": "POST",
            "server.port": 8002,
            "erp.negative": -5,
            "erp.large": 2**62,
            "erp.zero": 0,
            "erp.ratio": 0.25,
            "erp.flag": True,
            "erp.off": False,
            "erp.empty": "",
            "erp.unicode": "결재 요청",
            "erp.steps": ("1", "2"),
            "erp.numbers": (1, -2, 3),
            "erp.flags": (True, False),
            "erp.ratios": (0.5, 1.5),
            "erp.none_yet": (),
        },
    ) as server:
        server.add_event("decided", {"erp.step": 2, "erp.outcome": "APPROVED"})
        server.add_event("bare")
        with scoped.start_as_current_span(
            "erp.find",
            kind=SpanKind.CLIENT,
            links=[Link(REMOTE, {"erp.relation": "created by"}), Link(LOCAL)],
        ) as child:
            child.set_status(Status(StatusCode.ERROR, "server selection timed out"))
        for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL):
            with plain.start_as_current_span(f"approval {kind.name.lower()}", kind=kind) as s:
                s.set_status(Status(StatusCode.OK))


@pytest.fixture
def spans() -> tuple[ReadableSpan, ...]:
    exporter = InMemorySpanExporter()
    tight = SpanLimits(max_span_attributes=16, max_events=1, max_links=1)
    for name in ("approval-request-service", "approval-processing-service"):
        provider = TracerProvider(
            resource=Resource.create({"service.name": name}, "https://example.test/schema"),
            span_limits=tight,  # so the dropped counts are not all zero
        )
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        _record(provider)
    spans = exporter.get_finished_spans()
    assert len(spans) == 10
    return spans


def test_encoding_decodes_to_the_same_request_as_the_stock_encoder(
    spans: tuple[ReadableSpan, ...],
) -> None:
    assert any(span.dropped_attributes or span.dropped_events for span in spans)
    ours = _decoded(SpanEncoder().encode(spans))

    assert ours == _stock(spans)
    assert len(ours.resource_spans) == 2
    assert {len(r.scope_spans) for r in ours.resource_spans} == {2}


def test_cached_pieces_give_the_same_bytes_on_every_batch(
    spans: tuple[ReadableSpan, ...],
) -> None:
    encoder = SpanEncoder()
    first = encoder.encode(spans)

    assert encoder.encode(spans) == first
    assert encoder.encode(spans[:1]) == SpanEncoder().encode(spans[:1])


def test_the_attribute_cache_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp_encoding, "_CACHE_LIMIT", 8)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("erp")
    for request_id in range(50):
        with tracer.start_as_current_span("decide", attributes={"erp.request_id": request_id}):
            pass
    spans = exporter.get_finished_spans()
    encoder = SpanEncoder()

    assert _decoded(encoder.encode(spans)) == _stock(spans)
    assert len(encoder._pairs) <= 8


def test_values_that_compare_equal_across_types_keep_their_own_type() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("erp")
    for value in (1, True, 1.0, (1,), (True,), (1.0,)):
        with tracer.start_as_current_span("step", attributes={"erp.value": value}):
            pass
    spans = exporter.get_finished_spans()

    assert _decoded(SpanEncoder().encode(spans)) == _stock(spans)


def test_an_empty_batch_is_an_empty_request() -> None:
    assert SpanEncoder().encode([]) == b""


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []
    answer = 200

    def do_POST(self) -> None:  # the http.server hook's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(self.answer)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, type[_Collector]]]:
    handler = type("Collector", (_Collector,), {"received": [], "answer": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/v1/traces", handler
    server.shutdown()
    server.server_close()


def test_the_exporter_posts_the_encoded_batch_as_otlp_protobuf(
    spans: tuple[ReadableSpan, ...], collector: tuple[str, type[_Collector]]
) -> None:
    endpoint, handler = collector
    exporter = OTLPSpanExporter(endpoint=endpoint)

    assert exporter.export(spans) is SpanExportResult.SUCCESS
    ((path, content_type, body),) = handler.received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    assert _decoded(body) == _stock(spans)
    exporter.shutdown()


def test_the_exporter_reports_a_refused_batch_as_a_failure(
    spans: tuple[ReadableSpan, ...], collector: tuple[str, type[_Collector]]
) -> None:
    endpoint, handler = collector
    handler.answer = 400  # not retryable: answered at once
    exporter = OTLPSpanExporter(endpoint=endpoint)

    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert len(handler.received) == 1
    exporter.shutdown()
    assert exporter.export(spans) is SpanExportResult.FAILURE
    assert len(handler.received) == 1


# The stock exporter's private parts OTLPSpanExporter.export uses. They may change in any
# release: pyproject.toml admits only the versions tested, and these tests name what left.
STOCK_PARTS = ("_shutdown", "_max_request_size", "_metrics.export_operation", "_client.export")


def test_the_stock_exporter_still_has_every_private_part_the_encoder_uses() -> None:
    exporter = StockExporter(endpoint="http://127.0.0.1:9/v1/traces")
    missing = [part for part in STOCK_PARTS if not _resolves(exporter, part)]
    assert not missing, f"the stock OTLPSpanExporter no longer has {missing}"
    assert set(otlp_encoding.STOCK_PARTS) == set(STOCK_PARTS)
    exporter.shutdown()


@pytest.mark.parametrize("part", STOCK_PARTS)
def test_an_exporter_without_a_stock_part_refuses_to_be_built(
    monkeypatch: pytest.MonkeyPatch, part: str
) -> None:
    """Built at start-up: a service fails to start, instead of exporting nothing."""
    stock_init = StockExporter.__init__

    def init_without_part(self: StockExporter, *args: Any, **kwargs: Any) -> None:
        stock_init(self, *args, **kwargs)
        owner, _, name = part.partition(".")
        if name:
            setattr(self, owner, object())  # an owner without the method
        else:
            delattr(self, owner)

    monkeypatch.setattr(StockExporter, "__init__", init_without_part)
    with pytest.raises(RuntimeError, match=re.escape(part)):
        OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")


def _resolves(exporter: StockExporter, part: str) -> bool:
    owner, _, name = part.partition(".")
    return hasattr(exporter, owner) and (not name or hasattr(getattr(exporter, owner), name))
