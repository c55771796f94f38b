"""python -m loadtests.encoding_bench: OTLP span encoding, stock encoder against ours.

Records spans shaped like the pipeline's (a server span with the HTTP attributes and a
MongoDB client span under it) with the SDK, then encodes the same batch with
``encode_spans(...).SerializePartialToString()`` and with
``services.common.otlp_encoding.SpanEncoder``, in one run, and prints the CPU time a span
and whether both produced the same request (docs/decisions.md D14).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from services.common.otlp_encoding import SpanEncoder


def pipeline_like_spans(pairs: int) -> Sequence[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": "approval-request-service"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")
    for n in range(pairs):
        server_attributes = {
            "http.request.method": "POST",
            "url.path": "/approvals",
            "url.scheme": "http",
            "http.route": "/approvals",
            "server.address": "127.0.0.1",
            "server.port": 8002,
            "network.protocol.version": "1.1",
            "client.address": "127.0.0.1",
            "client.port": 40000 + n % 20000,
            "user_agent.original": "python/aiohttp",
        }
        with tracer.start_as_current_span(
            "POST /approvals", kind=SpanKind.SERVER, attributes=server_attributes
        ) as server:
            mongo_attributes = {
                "db.system": "mongodb",
                "db.name": "erp",
                "db.operation": "find",
                "db.mongodb.collection": "approvals",
                "net.peer.name": "127.0.0.1",
                "net.peer.port": 27017,
                "db.statement": "find",
            }
            with tracer.start_as_current_span(
                "erp.find", kind=SpanKind.CLIENT, attributes=mongo_attributes
            ):
                pass
            server.set_attribute("erp.request_id", n)
            server.set_attribute("http.response.status_code", 201)
    return exporter.get_finished_spans()


def cpu_per_span(encode: Callable[[], bytes], spans: int, rounds: int) -> float:
    encode()  # warm caches and imports
    start = time.process_time()
    for _ in range(rounds):
        encode()
    return (time.process_time() - start) / rounds / spans * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.encoding_bench")
    parser.add_argument("--spans", type=int, default=2000, help="spans in the batch")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    spans = pipeline_like_spans(args.spans // 2)
    encoder = SpanEncoder()

    def stock() -> bytes:
        return encode_spans(spans).SerializePartialToString()

    def ours() -> bytes:
        return encoder.encode(spans)

    stock_us = cpu_per_span(stock, len(spans), args.rounds)
    ours_us = cpu_per_span(ours, len(spans), args.rounds)
    decoded = [ExportTraceServiceRequest.FromString(encode()) for encode in (stock, ours)]
    print(f"stock encoder  {stock_us:6.1f} µs a span")
    print(f"SpanEncoder    {ours_us:6.1f} µs a span  (x{stock_us / ours_us:.1f})")
    print(f"same request   {decoded[0] == decoded[1]} ({len(ours())} bytes, {len(spans)} spans)")


if __name__ == "__main__":
    main()
