"""No bearer token reaches a log or a span, whichever way a client passes it: a notification
service logging as its image does (uvicorn at INFO, which writes each socket's URL), the
gateway's real nginx configuration in front of it, and the spans read back from Jaeger."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from devstack.apps import get_service, start_app, stop_process, wait_ready
from services.notification.client import watch
from tests.deploy.deploy_model import APPS
from tests.deploy.gateway import find_nginx, gateway_config, start_gateway
from tests.support.auth import as_service, token_for
from tests.support.stack import TRACING, Stack, free_port
from tests.support.traces import fetch_trace, new_traceparent

# The image runs uvicorn without --log-level (INFO); the local launcher passes warning.
LOGGED = dataclasses.replace(
    get_service("notification"),
    name="notification-service-info-logs",
    server_args=(*get_service("notification").server_args, "--log-level", "info"),
)
UPSTREAMS = {
    "employee-service": "employee",
    "approval-request-service": "approval_request",
    "approval-processing-service": "approval_processing",
}


@dataclass
class Gateway:
    notification_url: str
    service: Path  # the notification service's log
    proc: subprocess.Popen[bytes]
    public_url: str
    work: Path


@pytest.fixture(scope="module")
def gateway(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port = free_port()
    service = start_app(LOGGED, port=port, extra_env=TRACING, log_dir=stack.log_dir)
    try:
        wait_ready(f"http://127.0.0.1:{port}", timeout=60, proc=service)
        upstreams = {name: stack.ports[package] for name, package in UPSTREAMS.items()}
        ports = {name: free_port() for name in [*APPS, "health"]}
        work = tmp_path_factory.mktemp("gateway")
        config = gateway_config({**upstreams, "notification-service": port}, ports, work)
        nginx = start_gateway(find_nginx(), config, work, ports["health"])
        try:
            yield Gateway(
                notification_url=f"http://127.0.0.1:{port}",
                service=stack.log_dir / f"{LOGGED.name}.log",
                proc=service,
                public_url=f"http://127.0.0.1:{ports['notification-service']}",
                work=work,
            )
        finally:
            nginx.terminate()
            nginx.wait(10)
    finally:
        stop_process(service)


def _eventually_logged(path: Path, fragment: str, count: int) -> str:
    """The log's text once ``fragment`` appears ``count`` times in it (lines are written
    when a socket is accepted, refused or, by nginx, closed)."""
    deadline = time.monotonic() + 15
    while (text := path.read_text()).count(fragment) < count:
        assert time.monotonic() < deadline, f"{path.name} logged fewer {fragment!r}:\n{text}"
        time.sleep(0.1)
    return text


async def test_no_token_reaches_a_log_or_a_span(gateway: Gateway, stack: Stack) -> None:
    employee = 900_000_000 + secrets.randbelow(99_999_999)
    token = token_for(employee)
    public = gateway.public_url.replace("http://", "ws://") + f"/ws/{employee}"
    async with httpx.AsyncClient(timeout=10) as http:
        # The three ways: the query, the header, and the subprotocol (as `erp watch` does).
        async with connect(f"{public}?token={token}") as by_query:
            await by_query.ping()
        async with connect(public, additional_headers={"Authorization": f"Bearer {token}"}):
            pass
        reply = await http.post(
            f"{gateway.notification_url}/notify",
            json={"employeeId": employee, "type": "leave_confirmed"},
            headers=as_service(),
        )
        assert reply.status_code == 202
        async with aclosing(watch(gateway.public_url, employee, after=0, token=token)) as stream:
            assert (await asyncio.wait_for(anext(stream), 5)).employee_id == employee
        # Refused handshakes are logged too: another employee's socket, each way.
        for extra in (
            {"uri": f"{public}1?token={token}"},
            {"uri": f"{public}1", "additional_headers": {"Authorization": f"Bearer {token}"}},
            {"uri": f"{public}1", "subprotocols": [Subprotocol("bearer"), Subprotocol(token)]},
        ):
            with pytest.raises(InvalidStatus):
                async with connect(**extra):  # type: ignore[arg-type]
                    pass
        # A query token on a traced HTTP request, and a header, through the gateway.
        trace_id, traceparent = new_traceparent()
        docs = await http.get(
            f"{gateway.public_url}/docs?token={token}",
            headers={**traceparent, "Authorization": f"Bearer {token}"},
        )
        assert docs.status_code == 200

    span = (await fetch_trace(trace_id, until=lambda t: t.named(LOGGED.name, "GET"))).one(
        LOGGED.name, "GET"
    )
    assert span.tags["url.query"] == "token=REDACTED"
    service_log = _eventually_logged(gateway.service, f'"WebSocket /ws/{employee}', 6)
    access_log = _eventually_logged(gateway.work / "access.log", f"/ws/{employee}", 6)
    assert f"WebSocket /ws/{employee}?token=REDACTED" in service_log
    assert token not in service_log
    assert token not in access_log
    assert token not in (gateway.work / "error.log").read_text()
    for log in stack.log_dir.glob("*.log"):
        assert token not in log.read_text(), log.name
    assert all(token not in str(value) for value in span.tags.values())


async def test_a_failed_upstream_handshake_logs_no_token(gateway: Gateway) -> None:
    """nginx writes the request line as sent with every upstream error."""
    stop_process(gateway.proc)
    employee = 900_000_000 + secrets.randbelow(99_999_999)
    token = token_for(employee)
    public = gateway.public_url.replace("http://", "ws://") + f"/ws/{employee}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(f"{public}?token={token}"):
            pass
    assert refused.value.response.status_code == 502

    _eventually_logged(gateway.work / "access.log", f"/ws/{employee}", 1)
    assert token not in (gateway.work / "error.log").read_text()
