"""The client module: parsing pushed messages and watching a stream across reconnects."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from services.notification.client import Notification, parse_notification, socket_url, watch


def pushed(notification_id: int, **fields: Any) -> str:
    return json.dumps(
        {
            "id": notification_id,
            "employeeId": 7,
            "type": "approval_result",
            "createdAt": "2025-03-01T09:00:00.000+00:00",
            **fields,
        }
    )


def port_of(server: Server) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


def test_parse_notification_reads_the_pushed_fields() -> None:
    notification = parse_notification(pushed(5, requestId=3, finalStatus="approved", title="승인"))

    assert (notification.id, notification.employee_id, notification.request_id) == (5, 7, 3)
    assert notification.final_status == "approved"
    assert notification.title == "승인"
    assert notification.created_at.utcoffset() is not None


def test_parse_notification_tolerates_unknown_fields_and_types() -> None:
    notification = parse_notification(pushed(5, type="meeting_moved", room="B-201"))

    assert notification.type == "meeting_moved"
    assert notification.model_extra == {"room": "B-201"}


@pytest.mark.parametrize(
    ("base_url", "after", "expected"),
    [
        ("http://localhost:8004", None, "ws://localhost:8004/ws/7"),
        ("https://erp.example/notify/", 12, "wss://erp.example/notify/ws/7?after=12"),
        ("ws://127.0.0.1:9000", 0, "ws://127.0.0.1:9000/ws/7?after=0"),
    ],
)
def test_socket_url_points_at_the_employees_stream(
    base_url: str, after: int | None, expected: str
) -> None:
    assert socket_url(base_url, 7, after) == expected


async def test_watch_reconnects_after_the_last_id_seen_and_skips_repeats() -> None:
    paths: list[str] = []

    async def handler(connection: ServerConnection) -> None:
        paths.append(connection.request.path if connection.request else "")
        if len(paths) == 1:
            await connection.send(pushed(101))
            await connection.send(pushed(102))
            await connection.close(1011, "restarting")
        else:
            await connection.send(pushed(102))
            await connection.send(pushed(103))
            await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        base_url = f"http://127.0.0.1:{port_of(server)}"
        seen: list[Notification] = []
        async with aclosing(watch(base_url, 7, initial_backoff=0.01)) as notifications:
            async for notification in notifications:
                seen.append(notification)
                if len(seen) == 3:
                    break

    assert [notification.id for notification in seen] == [101, 102, 103]
    assert paths == ["/ws/7", "/ws/7?after=102"]


async def test_watch_keeps_retrying_while_the_service_is_unavailable() -> None:
    attempts = 0

    def unavailable_twice(connection: ServerConnection, request: Request) -> Response | None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "starting\n")
        return None

    async def handler(connection: ServerConnection) -> None:
        await connection.send(pushed(1))
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0, process_request=unavailable_twice) as server:
        base_url = f"http://127.0.0.1:{port_of(server)}"
        async with aclosing(watch(base_url, 7, initial_backoff=0.01)) as notifications:
            first = await asyncio.wait_for(anext(notifications), 3)

    assert first.id == 1
    assert attempts == 3


async def test_watch_gives_up_when_the_service_refuses_the_employee() -> None:
    def refuse(connection: ServerConnection, request: Request) -> Response:
        return connection.respond(HTTPStatus.FORBIDDEN, "no\n")

    async def handler(connection: ServerConnection) -> None:
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0, process_request=refuse) as server:
        base_url = f"http://127.0.0.1:{port_of(server)}"
        with pytest.raises(InvalidStatus):
            async with aclosing(watch(base_url, 7)) as notifications:
                await anext(notifications)


async def test_watch_sends_the_token_as_the_bearer_subprotocol_never_in_the_url() -> None:
    requests: list[Request] = []

    def record(connection: ServerConnection, request: Request) -> None:
        requests.append(request)

    async def handler(connection: ServerConnection) -> None:
        await connection.send(pushed(1))
        await connection.wait_closed()

    async with serve(
        handler,
        "127.0.0.1",
        0,
        process_request=record,
        subprotocols=[Subprotocol("bearer")],
    ) as server:
        base_url = f"http://127.0.0.1:{port_of(server)}"
        async with aclosing(watch(base_url, 7, token="the-token")) as notifications:
            await asyncio.wait_for(anext(notifications), 3)

    (request,) = requests
    assert "token" not in request.path
    assert request.headers["Sec-WebSocket-Protocol"] == "bearer, the-token"
    assert "Authorization" not in request.headers
