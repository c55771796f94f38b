"""Helpers for end-to-end tests of the approval pipeline: polling, inboxes, WebSockets."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import orjson
from websockets.asyncio.client import connect

from tests.support.auth import token_for

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 15.0, what: str = "condition"
) -> T:
    """Poll ``probe`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def inbox(
    client: httpx.AsyncClient, processing_url: str, approver: int
) -> list[dict[str, Any]]:
    response = await client.get(f"{processing_url}/process/{approver}")
    assert response.status_code == 200, response.text
    return list(response.json())


async def item_arrives(
    client: httpx.AsyncClient, processing_url: str, approver: int, request_id: int
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        items = await inbox(client, processing_url, approver)
        return next((i for i in items if i["requestId"] == request_id), None)

    return await eventually(probe, what=f"request {request_id} in approver {approver}'s inbox")


async def document(
    client: httpx.AsyncClient, approvals_url: str, request_id: int
) -> dict[str, Any]:
    response = await client.get(f"{approvals_url}/approvals/{request_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def final_status(
    client: httpx.AsyncClient, approvals_url: str, request_id: int, expected: str
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        doc = await document(client, approvals_url, request_id)
        return doc if doc["finalStatus"] == expected else None

    return await eventually(probe, what=f"request {request_id} to be {expected}")


async def decide(
    client: httpx.AsyncClient,
    processing_url: str,
    approver: int,
    request_id: int,
    action: str = "approve",
) -> httpx.Response:
    await item_arrives(client, processing_url, approver, request_id)
    return await client.post(
        f"{processing_url}/process/{approver}/{request_id}", json={"action": action}
    )


class Listener:
    """An open WebSocket of one employee, collecting every pushed notification."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def of_request(self, request_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages if m.get("requestId") == request_id]

    async def wait_for(
        self, count: int, request_id: int, timeout: float = 15.0
    ) -> list[dict[str, Any]]:
        async def probe() -> list[dict[str, Any]] | None:
            found = self.of_request(request_id)
            return found if len(found) >= count else None

        return await eventually(
            probe, timeout=timeout, what=f"{count} notifications for request {request_id}"
        )


@contextlib.asynccontextmanager
async def listening(
    notification_url: str, employee_id: int, after: int | None = None
) -> AsyncIterator[Listener]:
    url = notification_url.replace("http://", "ws://") + f"/ws/{employee_id}"
    url += f"?token={token_for(employee_id)}"
    if after is not None:
        url += f"&after={after}"
    listener = Listener()
    async with connect(url) as socket:

        async def collect() -> None:
            with contextlib.suppress(Exception):
                async for text in socket:
                    listener.messages.append(orjson.loads(text))

        task = asyncio.create_task(collect())
        try:
            yield listener
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
