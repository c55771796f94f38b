"""A real approval-processing process while its inboxes are rebuilt at start-up, fed by a
slow source of waiting steps of the test's own: it answers 503 with ``Retry-After`` until
the rebuild has finished, never a partial inbox, then serves what was rebuilt."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from devstack.apps import get_service, start_app, stop_process
from tests.support.pipeline import eventually
from tests.support.stack import free_port

APPROVER = 7
WAITING = {
    "requestId": 41,
    "step": 1,
    "requesterId": 6,
    "approverId": APPROVER,
    "title": "휴가",
    "content": "하루",
}


@dataclass
class SlowSource:
    """Serves ``GET /approvals/internal/waiting`` only once ``release`` is set."""

    url: str = ""
    release: asyncio.Event = field(default_factory=asyncio.Event)
    asked: asyncio.Event = field(default_factory=asyncio.Event)

    async def waiting(self, request: web.Request) -> web.Response:
        self.asked.set()
        await self.release.wait()
        return web.json_response([WAITING])


@pytest.fixture
async def slow_source() -> AsyncIterator[SlowSource]:
    source = SlowSource()
    app = web.Application()
    app.router.add_get("/approvals/internal/waiting", source.waiting)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    source.url = f"http://127.0.0.1:{port}"
    try:
        yield source
    finally:
        source.release.set()
        await runner.cleanup()


@pytest.fixture
async def processing(slow_source: SlowSource, tmp_path: Path) -> AsyncIterator[str]:
    """approval-processing on its own port, rebuilding from the slow source. Its broker
    address is a closed port: it must not take hand-offs from the test stack's queue."""
    port = free_port()
    proc = start_app(
        get_service("approval_processing"),
        port=port,
        extra_env={
            "APPROVAL_PROCESSING_APPROVAL_REQUEST_SERVICE_URL": slow_source.url,
            "APPROVAL_PROCESSING_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/",
            "APPROVAL_PROCESSING_NOTIFICATION_SERVICE_URL": f"http://127.0.0.1:{free_port()}",
            "OTEL_TRACES_EXPORTER": "none",
        },
        log_dir=tmp_path,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


async def test_the_inbox_answers_503_with_retry_after_until_rebuilt_then_serves_it(
    client: httpx.AsyncClient, slow_source: SlowSource, processing: str
) -> None:
    await asyncio.wait_for(slow_source.asked.wait(), timeout=60)  # the rebuild has begun

    listed = await client.get(f"{processing}/process/{APPROVER}")
    decided = await client.post(
        f"{processing}/process/{APPROVER}/{WAITING['requestId']}", json={"action": "approve"}
    )

    for response in (listed, decided):
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "2"
        assert "being rebuilt" in response.json()["detail"]

    slow_source.release.set()

    async def served() -> list[dict[str, object]] | None:
        response = await client.get(f"{processing}/process/{APPROVER}")
        return response.json() if response.status_code == 200 else None

    (item,) = await eventually(served, timeout=30, what="the rebuilt inbox")
    assert item == {**WAITING, "status": "pending"}
