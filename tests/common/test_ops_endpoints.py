"""/health, /ready and /metrics on every running service."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from devstack.apps import get_service, start_app, stop_process
from tests.support.logs import logged
from tests.support.stack import Stack, free_port
from tests.support.traces import new_traceparent

PACKAGES = ["employee", "approval_request", "approval_processing", "notification"]


@pytest.mark.parametrize("package", PACKAGES)
async def test_health_is_healthy_without_touching_dependencies(
    client: httpx.AsyncClient, stack: Stack, package: str
) -> None:
    response = await client.get(f"{stack.url(package)}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


@pytest.mark.parametrize("package", PACKAGES)
async def test_ready_reports_each_dependency(
    client: httpx.AsyncClient, stack: Stack, package: str
) -> None:
    response = await client.get(f"{stack.url(package)}/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"
    assert all(v == "ok" for v in response.json()["checks"].values())


async def test_metrics_label_requests_by_route_template_not_raw_path(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    await client.get(f"{employee_url}/employees/424242")
    await client.get(f"{employee_url}/employees/434343")
    await client.get(f"{employee_url}/no/such/path/4242")
    text = (await client.get(f"{employee_url}/metrics")).text
    assert 'route="/employees/{employee_id}"' in text
    assert "424242" not in text
    assert "434343" not in text
    assert "/no/such" not in text
    assert 'route="unmatched"' in text
    assert "http_server_request_duration_seconds_bucket" in text


@pytest.mark.parametrize("package", PACKAGES)
async def test_every_service_exports_prometheus_text(
    client: httpx.AsyncClient, stack: Stack, package: str
) -> None:
    response = await client.get(f"{stack.url(package)}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "http_server_requests_total" in response.text


async def test_oversized_body_is_a_413(client: httpx.AsyncClient, employee_url: str) -> None:
    response = await client.post(
        f"{employee_url}/employees",
        content=b"x" * 70_000,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert "too large" in response.json()["detail"]


async def test_database_calls_are_timed_as_dependencies(
    client: httpx.AsyncClient, employee_url: str, approvals_url: str, processing_url: str
) -> None:
    await client.get(f"{employee_url}/employees")
    await client.get(f"{approvals_url}/approvals")
    employee_metrics = (await client.get(f"{employee_url}/metrics")).text
    assert 'operation="SELECT",outcome="ok",target="mysql"' in employee_metrics
    approval_metrics = (await client.get(f"{approvals_url}/metrics")).text
    assert 'operation="find",outcome="ok",target="mongodb"' in approval_metrics
    processing_metrics = (await client.get(f"{processing_url}/metrics")).text
    assert "erp_amqp_consumer_connected 1.0" in processing_metrics


@pytest.mark.parametrize(
    ("package", "path"),
    [
        ("employee", "/employees/99999999999999999999999"),
        ("employee", "/employees?offset=7261865983819893329044176896"),
        ("employee", "/attendance/me?employeeId=99999999999999999999999"),
        ("approval_request", "/approvals/99999999999999999999999"),
        ("approval_request", "/approvals?requesterId=99999999999999999999999"),
    ],
)
async def test_numbers_beyond_64_bits_are_a_422_not_a_500(
    client: httpx.AsyncClient, stack: Stack, package: str, path: str
) -> None:
    response = await client.get(stack.url(package) + path)
    assert response.status_code == 422


async def test_ready_names_the_failing_dependency_and_logs_why(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """The body says which dependency fails, never the exception (it names hosts, and /ready
    is reachable through the gateway); the log line has it, with the caller's trace id."""
    nothing_listens = free_port()
    port = free_port()
    proc = start_app(
        get_service("employee"),
        port=port,
        log_dir=tmp_path,
        extra_env={
            "EMPLOYEE_DATABASE_URL": f"mysql+asyncmy://erp:erp@127.0.0.1:{nothing_listens}/erp",
            "OTEL_TRACES_EXPORTER": "none",
        },
    )
    try:
        trace_id, traceparent = new_traceparent()
        response = await _answer(client, f"http://127.0.0.1:{port}/ready", traceparent)
        assert response.status_code == 503
        assert response.json() == {
            "status": "unavailable",
            "checks": {"mysql": "unavailable"},
            "detail": "unavailable: mysql",
        }
        line = await logged(
            tmp_path / "employee-service.log", f'"trace_id":"{trace_id}"', "readiness check"
        )
        assert "readiness check mysql failed" in line
        assert "Connection refused" in line
    finally:
        stop_process(proc)


async def _answer(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> httpx.Response:
    """The first answer of a server that is still starting."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return await client.get(url, headers=headers)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
