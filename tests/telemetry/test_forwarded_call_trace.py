"""A call to an approval-processing replica that does not hold the approver, forwarded to the
one that does (docs/decisions.md D22), is one trace in a real Jaeger: the owner's server
span is a child of the forwarding replica's client span."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from devstack.apps import get_service, start_app, stop_process, wait_ready
from services.common.messaging import partition_of
from tests.support.stack import Stack, free_port
from tests.support.traces import Span, Trace, fetch_trace, new_traceparent

APS = "approval-processing-service"
REPLICAS = 2
# Beside the session's own replica, which stays the active consumer of every partition;
# these two only hold inboxes rebuilt from the request service and answer /process.
NON_OWNER, OWNER = 0, 1


@pytest.fixture(scope="module")
def replica_urls(stack: Stack) -> Iterator[list[str]]:
    ports = [free_port() for _ in range(REPLICAS)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for index, port in enumerate(ports):
            log_dir = stack.log_dir / f"forwarded-trace-replica-{index}"
            log_dir.mkdir(parents=True, exist_ok=True)
            env = {
                **stack.env_for("approval_processing"),
                "APPROVAL_PROCESSING_REPLICAS": str(REPLICAS),
                "APPROVAL_PROCESSING_REPLICA_INDEX": str(index),
                "APPROVAL_PROCESSING_PEER_URLS": ",".join(urls),
            }
            proc = start_app(
                get_service("approval_processing"), port=port, extra_env=env, log_dir=log_dir
            )
            procs.append(proc)
            wait_ready(urls[index], timeout=60, proc=proc)
        yield urls
    finally:
        for proc in procs:
            stop_process(proc)


def approver_held_by(replica: int) -> int:
    return next(a for a in range(1_000_000, 1_000_100) if partition_of(a) % REPLICAS == replica)


def forwarded_once(trace: Trace, route: str) -> tuple[Span, Span, Span]:
    """The non-owner's server span, its client span to the owner and the owner's server span,
    in a trace holding one of each."""
    servers = trace.named(APS, route)
    assert len(servers) == 2, f"expected two {route} server spans:\n{trace.describe()}"
    (entry,) = [s for s in servers if s.parent not in trace.spans]
    (answered,) = [s for s in servers if s is not entry]
    forward = trace.spans[answered.parent]
    return entry, forward, answered


async def test_a_forwarded_read_of_an_inbox_is_one_trace_across_both_replicas(
    client: httpx.AsyncClient, replica_urls: list[str]
) -> None:
    approver = approver_held_by(OWNER)
    trace_id, header = new_traceparent()
    response = await client.get(f"{replica_urls[NON_OWNER]}/process/{approver}", headers=header)
    assert response.status_code == 200, response.text

    route = "GET /process/{approver_id}"
    trace = await fetch_trace(trace_id, until=lambda t: len(t.named(APS, route)) == 2)
    entry, forward, answered = forwarded_once(trace, route)
    assert (forward.service, forward.name, forward.tags["span.kind"]) == (APS, "GET", "client")
    assert forward.parent == entry.span_id
    assert forward.tags["url.full"] == f"{replica_urls[OWNER]}/process/{approver}"
    assert forward.tags["http.response.status_code"] == 200
    assert answered.tags["span.kind"] == "server"


async def test_a_forwarded_decision_is_one_trace_across_both_replicas(
    client: httpx.AsyncClient, replica_urls: list[str]
) -> None:
    approver = approver_held_by(OWNER)
    trace_id, header = new_traceparent()
    # No such item in the owner's inbox: its 404 is relayed, and the call is still traced.
    response = await client.post(
        f"{replica_urls[NON_OWNER]}/process/{approver}/987654321",
        json={"action": "approve"},
        headers=header,
    )
    assert response.status_code == 404, response.text

    route = "POST /process/{approver_id}/{request_id}"
    trace = await fetch_trace(trace_id, until=lambda t: len(t.named(APS, route)) == 2)
    entry, forward, answered = forwarded_once(trace, route)
    assert (forward.name, forward.parent) == ("POST", entry.span_id)
    assert forward.tags["url.full"] == f"{replica_urls[OWNER]}/process/{approver}/987654321"
    assert answered.tags["span.kind"] == "server"
