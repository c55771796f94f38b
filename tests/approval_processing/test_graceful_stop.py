"""A real approval-processing process stopped with SIGTERM while it is still telling an
approver of a hand-off (its notification-service, here the test's own, has not answered
yet): the stop waits for that delivery to be settled, so the hand-off is acked, not left to
be redelivered and told a second time by whoever consumes the partition next."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import pytest
from aiohttp import web

from devstack.apps import get_service, start_app, stop_process, wait_ready
from services.common.messaging import (
    EXCHANGE,
    json_message,
    partition_of,
    partition_queue,
    partition_routing_key,
)
from tests.support.pipeline import eventually
from tests.support.settled import queue_depths
from tests.support.stack import TEST_DB, amqp_url, create_databases, drop_databases, free_port

APPROVER = 7
HANDOFF = {
    "requestId": 41,
    "requesterId": 6,
    "title": "휴가",
    "content": "하루",
    "steps": [{"step": 1, "approverId": APPROVER, "status": "pending"}],
}


@dataclass
class SlowNotifications:
    """Stands in for notification-service (nothing waits in the request service either):
    ``POST /notify`` is answered only once ``release`` is set."""

    url: str = ""
    told: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def notify(self, request: web.Request) -> web.Response:
        self.told.append(await request.json())
        await self.release.wait()
        return web.json_response({"delivered": True}, status=202)

    async def waiting(self, request: web.Request) -> web.Response:
        return web.json_response([])


@pytest.fixture
async def notifications() -> AsyncIterator[SlowNotifications]:
    sink = SlowNotifications()
    app = web.Application()
    app.router.add_post("/notify", sink.notify)
    app.router.add_get("/approvals/internal/waiting", sink.waiting)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sink.url = f"http://127.0.0.1:{port}"
    try:
        yield sink
    finally:
        sink.release.set()
        await runner.cleanup()


@pytest.fixture
def vhost(infra: None) -> Iterator[str]:
    db = f"{TEST_DB}_graceful"
    create_databases(db)
    try:
        yield db
    finally:
        drop_databases(db)


async def _consumers(vhost: str, queue: str) -> int:
    listing = await asyncio.create_subprocess_exec(
        *("rabbitmqctl", "-q", "list_queues", "--no-table-headers", "-p", vhost),
        *("name", "consumers"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await listing.communicate()
    rows = dict(line.split("\t") for line in out.decode().splitlines() if "\t" in line)
    return int(rows[queue])


async def test_sigterm_while_telling_an_approver_settles_the_hand_off_first(
    notifications: SlowNotifications, vhost: str, tmp_path: Path
) -> None:
    port = free_port()
    proc = start_app(
        get_service("approval_processing"),
        port=port,
        extra_env={
            "APPROVAL_PROCESSING_AMQP_URL": amqp_url(vhost),
            "APPROVAL_PROCESSING_APPROVAL_REQUEST_SERVICE_URL": notifications.url,
            "APPROVAL_PROCESSING_NOTIFICATION_SERVICE_URL": notifications.url,
            "OTEL_TRACES_EXPORTER": "none",
        },
        log_dir=tmp_path,
    )
    try:
        await asyncio.to_thread(wait_ready, f"http://127.0.0.1:{port}", 60, proc)
        connection = await aio_pika.connect(amqp_url(vhost))
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(EXCHANGE)
            await exchange.publish(
                json_message(HANDOFF), routing_key=partition_routing_key(partition_of(APPROVER))
            )

        async def told() -> list[dict[str, Any]]:
            return notifications.told

        await eventually(told, timeout=30, what="the approver being told")

        os.kill(proc.pid, signal.SIGTERM)
        # Answered only once the partition has lost its consumer: the stop is under way.
        queue = partition_queue(partition_of(APPROVER))

        async def unconsumed() -> bool:
            return await _consumers(vhost, queue) == 0

        await eventually(unconsumed, timeout=30, what="the consumer being cancelled")
        notifications.release.set()
        # uvicorn ends by raising the signal again once its shutdown has run.
        assert await asyncio.to_thread(proc.wait, 30) == -signal.SIGTERM
    finally:
        with contextlib.suppress(ProcessLookupError):
            stop_process(proc)

    depths = await queue_depths(vhost)
    assert depths[queue] == 0, depths
    assert [n["requestId"] for n in notifications.told] == [HANDOFF["requestId"]]
