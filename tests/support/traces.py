"""Reading traces back from the local Jaeger's query API."""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.stack import JAEGER_QUERY


def new_traceparent() -> tuple[str, dict[str, str]]:
    """A fresh sampled trace id and the header that makes a request join it."""
    trace_id = secrets.token_hex(16)
    return trace_id, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


@dataclass
class Span:
    span_id: str
    name: str
    service: str
    parent: str | None
    tags: dict[str, Any]
    links: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Trace:
    trace_id: str
    spans: dict[str, Span]

    def named(self, service: str, fragment: str) -> list[Span]:
        return [s for s in self.spans.values() if s.service == service and fragment in s.name]

    def one(self, service: str, fragment: str) -> Span:
        found = self.named(service, fragment)
        assert found, f"no {service} span named like {fragment!r}; have:\n{self.describe()}"
        return found[0]

    def ancestors(self, span: Span) -> list[Span]:
        chain = []
        while span.parent and span.parent in self.spans:
            span = self.spans[span.parent]
            chain.append(span)
        return chain

    def descends(self, child: Span, ancestor: Span) -> bool:
        return ancestor in self.ancestors(child)

    def connected(self) -> bool:
        """Every span's parent has arrived, but the root's: the server span of our own
        request, whose parent is the caller's made-up span. An orphan of another kind means
        a batch from some process (with the root, perhaps) has not arrived yet."""
        orphans = [s for s in self.spans.values() if s.parent not in self.spans]
        return len(orphans) == 1 and orphans[0].tags.get("span.kind") == "server"

    def describe(self) -> str:
        return "\n".join(
            f"  {s.service}: {s.name} ({s.span_id} <- {s.parent})" for s in self.spans.values()
        )


def _parse(data: dict[str, Any]) -> Trace:
    processes = {key: value["serviceName"] for key, value in data["processes"].items()}
    spans = {}
    for raw in data["spans"]:
        parent = next(
            (
                r["spanID"]
                for r in raw.get("references", [])
                if r["refType"] == "CHILD_OF" and r["traceID"] == data["traceID"]
            ),
            None,
        )
        links = [
            (r["traceID"], r["spanID"])
            for r in raw.get("references", [])
            if r["traceID"] != data["traceID"] or r["refType"] == "FOLLOWS_FROM"
        ]
        spans[raw["spanID"]] = Span(
            span_id=raw["spanID"],
            name=raw["operationName"],
            service=processes[raw["processID"]],
            parent=parent,
            tags={t["key"]: t["value"] for t in raw.get("tags", [])},
            links=links,
        )
    return Trace(trace_id=data["traceID"], spans=spans)


async def fetch_trace(trace_id: str, *, until: Any = None, timeout: float = 20.0) -> Trace:
    """Poll Jaeger until the trace exists and ``until(trace)`` holds (spans arrive in
    batches from four processes)."""
    deadline = time.monotonic() + timeout
    last: Trace | None = None
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            response = await http.get(f"{JAEGER_QUERY}/api/traces/{trace_id}")
            if response.status_code == 200 and response.json().get("data"):
                last = _parse(response.json()["data"][0])
                if last.connected() and (until is None or until(last)):
                    return last
            await asyncio.sleep(0.3)
    detail = last.describe() if last else "(no trace at all)"
    raise AssertionError(f"trace {trace_id} incomplete after {timeout}s:\n{detail}")
