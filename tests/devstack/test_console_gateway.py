"""The console's gateway (devstack/console.py): the built console at `/`, the API paths
passed to the services on the same origin, the internal endpoints refused, the WebSocket
carried with its token in the subprotocol, Jaeger's traces readable (never writable) for the
trace pages, Prometheus's queries (and nothing else of it) for the pipeline page, and no
credential in its log."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from devstack import console
from tests.support import factories
from tests.support.auth import as_service, token_for
from tests.support.console import serving
from tests.support.layouts import Layout
from tests.support.prometheus import running
from tests.support.stack import Stack

INDEX = "<!doctype html><title>console under test</title>"


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    built = tmp_path / "dist"
    (built / "assets").mkdir(parents=True)
    (built / "index.html").write_text(INDEX)
    (built / "assets" / "index-1.js").write_text("export const loaded = true;")
    return built


@pytest.fixture
def served(layout: Layout, dist: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    work = tmp_path / "work"
    with serving(layout, dist, work) as base:
        yield base, work


async def test_console_and_api_share_one_origin(
    served: tuple[str, Path], client: httpx.AsyncClient, employee_url: str
) -> None:
    base, _ = served
    me = await factories.employee(client, employee_url)
    mine = {"Authorization": f"Bearer {token_for(me['id'])}"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as browser:
        page = await browser.get("/")
        assert page.status_code == 200
        assert page.text == INDEX
        # A page's own path (a bookmark, a reload) is the console too.
        assert (await browser.get("/requests")).text == INDEX
        script = await browser.get("/assets/index-1.js")
        assert script.headers["content-type"] == "application/javascript"
        assert (await browser.get(f"/employees/{me['id']}", headers=mine)).json() == me
        assert (
            await browser.get(f"/approvals?requesterId={me['id']}", headers=mine)
        ).status_code == 200
        assert (await browser.get(f"/process/{me['id']}", headers=mine)).json() == []
        listed = await browser.get("/dev/sign-in/employees")
        assert me["id"] in [e["id"] for e in listed.json()]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/approvals/internal/result"),
        ("GET", "/approvals/internal/waiting"),
        ("POST", "/leaves/internal/approved"),
        ("POST", "/leaves//internal/approved"),
        ("POST", "/leaves/%69nternal/approved"),
    ],
)
async def test_internal_endpoints_are_refused_even_with_a_service_token(
    served: tuple[str, Path], method: str, path: str
) -> None:
    base, _ = served
    async with httpx.AsyncClient(base_url=base, timeout=10) as browser:
        refused = await browser.request(method, path, headers=as_service(), json={})
    assert refused.status_code == 404


async def test_live_notifications_reach_the_console_socket_with_no_token_logged(
    served: tuple[str, Path],
    client: httpx.AsyncClient,
    employee_url: str,
    notification_url: str,
) -> None:
    base, work = served
    me = await factories.employee(client, employee_url)
    token = token_for(me["id"])
    socket_url = f"{base.replace('http', 'ws', 1)}/ws/{me['id']}?after=0"
    async with connect(socket_url, subprotocols=["bearer", token]) as socket:  # type: ignore[list-item]
        assert socket.subprotocol == "bearer"
        sent = {"employeeId": me["id"], "type": "approval_assigned", "requestId": 7, "step": 1}
        stored = await client.post(f"{notification_url}/notify", json=sent)
        assert stored.status_code == 202
        pushed = json.loads(await socket.recv(decode=True))
        assert {k: pushed[k] for k in sent} == sent
    log = (work / "access.log").read_text()
    assert f"/ws/{me['id']}" in log
    assert token not in log
    assert "after=" not in log


async def test_jaeger_traces_are_read_on_the_console_origin_and_nothing_else_of_jaeger(
    served: tuple[str, Path], client: httpx.AsyncClient, employee_url: str
) -> None:
    base, _ = served
    await factories.employee(client, employee_url)
    async with httpx.AsyncClient(base_url=base, timeout=10) as browser:
        # Jaeger ingests in batches: the employee-service's spans show once it has them.
        deadline = time.monotonic() + 30
        while True:
            services = await browser.get("/jaeger/api/services")
            assert services.status_code == 200
            if "employee-service" in (services.json()["data"] or []):
                break
            assert time.monotonic() < deadline, services.text
            await asyncio.sleep(0.5)
        found = await browser.get(
            "/jaeger/api/traces", params={"service": "employee-service", "limit": 1}
        )
        assert found.status_code == 200
        [trace] = found.json()["data"]
        one = await browser.get(f"/jaeger/api/traces/{trace['traceID']}")
        assert one.json()["data"][0]["traceID"] == trace["traceID"]
        assert (await browser.post("/jaeger/api/traces", json={})).status_code == 403
        assert (await browser.get("/jaeger/api/dependencies")).status_code == 404
        assert (await browser.get("/jaeger/search")).status_code == 404


def test_without_a_built_console_nothing_is_served(tmp_path: Path) -> None:
    upstreams = {package: "127.0.0.1:9" for package in set(console.ROUTES.values())}
    assert console.start(upstreams, port=9, dist=tmp_path / "absent", work=tmp_path) is None
    assert not (tmp_path / "nginx.conf").exists()


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running(stack, tmp_path_factory.mktemp("prometheus")) as url:
        yield url


async def test_prometheus_queries_are_read_on_the_console_origin_and_nothing_else_of_it(
    layout: Layout, dist: Path, tmp_path: Path, prometheus: str
) -> None:
    upstream = prometheus.removeprefix("http://")
    with serving(layout, dist, tmp_path / "work", prometheus=upstream) as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as browser:
            now = await browser.get("/prometheus/api/v1/query", params={"query": "vector(7)"})
            assert now.status_code == 200, now.text
            assert now.json()["data"]["result"][0]["value"][1] == "7"
            end = time.time()
            span = {"query": "vector(7)", "start": end - 60, "end": end, "step": 15}
            line = await browser.get("/prometheus/api/v1/query_range", params=span)
            assert line.status_code == 200, line.text
            assert line.json()["data"]["resultType"] == "matrix"
            refused = await browser.post("/prometheus/api/v1/query", data={"query": "vector(7)"})
            assert refused.status_code == 403
            for method, path in [
                ("POST", "/prometheus/api/v1/admin/tsdb/delete_series?match[]=up"),
                ("GET", "/prometheus/api/v1/admin/tsdb/delete_series?match[]=up"),
                ("POST", "/prometheus/api/v1/admin/tsdb/snapshot"),
                ("GET", "/prometheus/api/v1/query_exemplars?query=up"),
                ("GET", "/prometheus/api/v1/series?match[]=up"),
                ("GET", "/prometheus/api/v1/status/config"),
                ("GET", "/prometheus/graph"),
                ("POST", "/prometheus/-/quit"),
            ]:
                answer = await browser.request(method, path)
                assert answer.status_code == 404, (method, path, answer.status_code)


async def test_without_a_prometheus_the_whole_of_its_path_is_refused(
    served: tuple[str, Path],
) -> None:
    base, _ = served
    async with httpx.AsyncClient(base_url=base, timeout=10) as browser:
        answer = await browser.get("/prometheus/api/v1/query", params={"query": "up"})
    assert answer.status_code == 404
