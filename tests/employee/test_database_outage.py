"""A database that goes away gives clear 503s and a failing /ready; the service recovers by
itself when it returns. The outage is a cut TCP proxy in front of the real MariaDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from devstack.apps import get_service, start_app, stop_process, wait_ready
from tests.support.stack import TEST_DB, free_port
from tests.support.tcp_proxy import TcpProxy

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
async def proxy(infra: None) -> AsyncIterator[TcpProxy]:
    tcp = TcpProxy(upstream_port=3306, listen_port=free_port())
    await tcp.start()
    yield tcp
    await tcp.cut()


@pytest.fixture
def service_behind_proxy(proxy: TcpProxy) -> Iterator[str]:
    port = free_port()
    url = f"mysql+asyncmy://erp:erp@127.0.0.1:{proxy.port}/{TEST_DB}?charset=utf8mb4"
    proc = start_app(
        get_service("employee"),
        port=port,
        log_dir=REPO / ".run" / "test-logs",
        extra_env={
            "EMPLOYEE_DATABASE_URL": url,
            "EMPLOYEE_POOL_TIMEOUT_SECONDS": "2",
            "OTEL_TRACES_EXPORTER": "none",
        },
    )
    base = f"http://127.0.0.1:{port}"
    try:
        yield base
    finally:
        stop_process(proc)


async def _wait_for(client: httpx.AsyncClient, url: str, status: int) -> httpx.Response:
    for _ in range(100):
        response = await client.get(url)
        if response.status_code == status:
            return response
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered {status}")


async def test_database_outage_gives_503_and_service_recovers(
    client: httpx.AsyncClient, proxy: TcpProxy, service_behind_proxy: str
) -> None:
    base = service_behind_proxy
    await asyncio.to_thread(wait_ready, base, 60)
    assert (await client.get(f"{base}/employees")).status_code == 200

    await proxy.cut()
    ready = await _wait_for(client, f"{base}/ready", 503)
    assert "mysql" in ready.json()["detail"]
    assert (await client.get(f"{base}/health")).status_code == 200
    listed = await client.get(f"{base}/employees")
    assert listed.status_code == 503
    assert listed.json() == {"detail": "Database unavailable, try again shortly"}
    created = await client.post(
        f"{base}/employees", json={"name": "정전", "department": "개발", "position": "사원"}
    )
    assert created.status_code == 503

    await proxy.start()
    await _wait_for(client, f"{base}/ready", 200)
    assert (await client.get(f"{base}/employees")).status_code == 200
