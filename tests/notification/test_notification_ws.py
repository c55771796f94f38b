"""notification-service as a real uvicorn process, driven over real HTTP and WebSockets."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from devstack.apps import stop_process
from services.notification.client import watch
from tests.support.auth import as_service, token_for
from tests.support.stack import AMQP_URL, free_port

REPO = Path(__file__).resolve().parents[2]
SEND_QUEUE_SIZE = 32
MAX_CONNECTIONS = 3
# Concurrent /notify calls per burst: below the send queue size, so a client that keeps
# reading is never mistaken for a laggard.
BURST = 8

_employee_ids = itertools.count(1)


def new_employee() -> int:
    return next(_employee_ids)


@pytest.fixture(scope="module")
def base_url(infra: None) -> Iterator[str]:
    """One replica on a stream of its own in the session's vhost (the N=1 case)."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env |= {
        "OTEL_TRACES_EXPORTER": "none",
        "NOTIFICATION_SEND_QUEUE_SIZE": str(SEND_QUEUE_SIZE),
        "NOTIFICATION_MAX_CONNECTIONS_PER_EMPLOYEE": str(MAX_CONNECTIONS),
        "NOTIFICATION_LOG_LEVEL": "WARNING",
        "NOTIFICATION_AMQP_URL": AMQP_URL,
        "NOTIFICATION_STREAM": f"notifications-ws-{port}",
    }
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "services.notification.app:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, proc, log)
            yield url
        finally:
            stop_process(proc, grace=10)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Any) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"notification-service exited on start:\n{log.read().decode()}")
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail("notification-service was not ready in time")


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10, headers=as_service()) as client:
        yield client


def ws_url(base_url: str, path: str) -> str:
    """The socket URL, carrying the token of the employee the path names (if it names one)."""
    url = base_url.replace("http://", "ws://", 1) + path
    employee = path.split("/")[2].split("?")[0]
    if employee.isdigit() and len(employee) <= 19 and int(employee) > 0:
        url += ("&" if "?" in url else "?") + f"token={token_for(int(employee))}"
    return url


async def notify(http: httpx.AsyncClient, employee_id: int, **fields: Any) -> bool:
    body = {"employeeId": employee_id, "type": "approval_result", **fields}
    response = await http.post("/notify", json=body)
    assert response.status_code == 202, response.text
    delivered: bool = response.json()["delivered"]
    return delivered


async def next_message(websocket: ClientConnection, timeout: float = 3) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(websocket.recv(), timeout))
    return message


async def metric_value(http: httpx.AsyncClient, name: str, **labels: str) -> float:
    text = (await http.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


async def test_health_ready_and_metrics_answer(http: httpx.AsyncClient) -> None:
    health = await http.get("/health")
    ready = await http.get("/ready")
    metrics = await http.get("/metrics")

    assert (health.status_code, health.json()) == (200, {"status": "healthy"})
    assert ready.status_code == 200
    assert metrics.status_code == 200
    for name in (
        "erp_websocket_connections",
        "erp_notifications_total",
        "erp_websocket_dropped_connections_total",
        "erp_notification_push_duration_seconds",
        "erp_notification_stream_offset",
        "erp_notification_stream_lag_seconds",
        "erp_notification_stream_caught_up",
    ):
        assert f"# TYPE {name} " in metrics.text


async def test_notify_without_an_open_connection_is_stored_for_replay(
    base_url: str, http: httpx.AsyncClient
) -> None:
    """``delivered`` means stored in the stream: a client connecting later replays it."""
    employee = new_employee()
    assert await notify(http, employee, title="nobody listening") is True

    async with connect(ws_url(base_url, f"/ws/{employee}?after=0")) as websocket:
        assert (await next_message(websocket))["title"] == "nobody listening"


async def test_every_connection_of_an_employee_receives_each_notification(
    base_url: str, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    async with (
        connect(ws_url(base_url, f"/ws/{employee}")) as first,
        connect(ws_url(base_url, f"/ws/{employee}")) as second,
    ):
        assert await notify(http, employee, requestId=7, title="approved") is True

        received = [await next_message(first), await next_message(second)]

    assert received[0] == received[1]
    assert received[0]["requestId"] == 7


async def test_another_employees_connection_receives_nothing(
    base_url: str, http: httpx.AsyncClient
) -> None:
    mine, theirs = new_employee(), new_employee()
    async with (
        connect(ws_url(base_url, f"/ws/{mine}")) as my_socket,
        connect(ws_url(base_url, f"/ws/{theirs}")) as their_socket,
    ):
        await notify(http, mine, title="only for me")
        await notify(http, theirs, title="marker")

        assert (await next_message(my_socket))["title"] == "only for me"
        # Pushes to one socket keep their order, so the marker coming first proves
        # nothing was sent to it before.
        assert (await next_message(their_socket))["title"] == "marker"


async def test_pushed_message_carries_the_fields_an_id_and_created_at(
    base_url: str, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    async with connect(ws_url(base_url, f"/ws/{employee}")) as websocket:
        await notify(
            http,
            employee,
            type="approval_assigned",
            requestId=3,
            step=2,
            approverId=employee,
            title="please decide",
        )
        message = await next_message(websocket)

    assert message.keys() == {
        "id",
        "employeeId",
        "type",
        "requestId",
        "step",
        "approverId",
        "title",
        "traceparent",
        "createdAt",
    }
    assert message["type"] == "approval_assigned"
    assert message["employeeId"] == employee
    assert message["createdAt"].endswith("+00:00")


async def test_korean_title_round_trips_unchanged(base_url: str, http: httpx.AsyncClient) -> None:
    employee = new_employee()
    title = "연차 휴가 신청 (2일) — 김철수 부장님 결재 요청드립니다 ✅"
    async with connect(ws_url(base_url, f"/ws/{employee}")) as websocket:
        await notify(http, employee, type="leave_confirmed", title=title)

        assert (await next_message(websocket))["title"] == title


async def test_ids_increase(base_url: str, http: httpx.AsyncClient) -> None:
    employee = new_employee()
    async with connect(ws_url(base_url, f"/ws/{employee}")) as websocket:
        for n in range(5):
            await notify(http, employee, title=str(n))
        ids = [(await next_message(websocket))["id"] for _ in range(5)]

    assert ids == sorted(set(ids))


async def test_reconnecting_with_after_receives_exactly_what_was_missed_in_order(
    base_url: str, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    async with connect(ws_url(base_url, f"/ws/{employee}")) as websocket:
        await notify(http, employee, title="seen")
        last_seen = (await next_message(websocket))["id"]
    for title in ("missed 1", "missed 2", "missed 3"):
        await notify(http, employee, title=title)

    async with connect(ws_url(base_url, f"/ws/{employee}?after={last_seen}")) as websocket:
        replayed = [await next_message(websocket) for _ in range(3)]
        await notify(http, employee, title="live")
        live = await next_message(websocket)

    assert [message["title"] for message in replayed] == ["missed 1", "missed 2", "missed 3"]
    assert live["title"] == "live"
    ids = [last_seen] + [message["id"] for message in [*replayed, live]]
    assert ids == sorted(set(ids))


async def test_a_connection_without_after_receives_only_live_notifications(
    base_url: str, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    await notify(http, employee, title="before connecting")
    async with connect(ws_url(base_url, f"/ws/{employee}")) as websocket:
        await notify(http, employee, title="after connecting")

        assert (await next_message(websocket))["title"] == "after connecting"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(
            '{"employeeId": 1, "type": "party_invite"}', "application/json", id="unknown type"
        ),
        pytest.param(
            '{"employeeId": 0, "type": "approval_result"}', "application/json", id="employeeId 0"
        ),
        pytest.param('{"type": "approval_result"}', "application/json", id="no employeeId"),
        pytest.param(
            '{"employeeId": 1, "type": "approval_result", "title": "' + "x" * 201 + '"}',
            "application/json",
            id="title over 200",
        ),
        pytest.param("employeeId=1&type=approval_result", "application/json", id="not JSON"),
    ],
)
async def test_invalid_notify_bodies_are_rejected_with_422(
    http: httpx.AsyncClient, body: str, content_type: str
) -> None:
    response = await http.post("/notify", content=body, headers={"content-type": content_type})

    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "path",
    [
        "/ws/0",
        "/ws/-1",
        "/ws/abc",
        "/ws/1?after=-5",
        "/ws/1?after=1e3",
        "/ws/99999999999999999999",
        "/ws/" + "9" * 5000,
    ],
)
async def test_an_invalid_employee_id_or_after_is_refused_at_the_handshake(
    base_url: str, path: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(base_url, path)):
            pass

    assert refused.value.response.status_code == 403


async def test_an_authorization_header_authenticates_the_socket(
    base_url: str, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    url = f"{base_url.replace('http://', 'ws://')}/ws/{employee}"
    headers = {"Authorization": f"Bearer {token_for(employee)}"}
    async with connect(url, additional_headers=headers) as websocket:
        await notify(http, employee, title="by header")

        assert (await next_message(websocket))["title"] == "by header"


async def test_the_header_wins_over_the_subprotocol_and_the_query(base_url: str) -> None:
    employee = new_employee()
    url = f"{base_url.replace('http://', 'ws://')}/ws/{employee}"
    own, other = token_for(employee), token_for(employee + 1000)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"{url}?token={own}",
            additional_headers={"Authorization": f"Bearer {other}"},
            subprotocols=[Subprotocol("bearer"), Subprotocol(own)],
        ):
            pass
    assert refused.value.response.status_code == 403

    async with connect(
        f"{url}?token={other}",
        additional_headers={"Authorization": f"Bearer {own}"},
        subprotocols=[Subprotocol("bearer"), Subprotocol(other)],
    ) as websocket:
        # A browser fails a handshake that selects none of the subprotocols it offered.
        assert websocket.subprotocol == "bearer"


async def test_the_subprotocol_wins_over_the_query(base_url: str) -> None:
    employee = new_employee()
    url = f"{base_url.replace('http://', 'ws://')}/ws/{employee}"
    own, other = token_for(employee), token_for(employee + 1000)
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            f"{url}?token={own}", subprotocols=[Subprotocol("bearer"), Subprotocol(other)]
        ):
            pass
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    "headers",
    [{"Authorization": "Bearer "}, {"Authorization": "Bearer garbage"}, {"Authorization": "x"}],
)
async def test_a_missing_or_invalid_header_token_is_refused_at_the_handshake(
    base_url: str, headers: dict[str, str]
) -> None:
    url = f"{base_url.replace('http://', 'ws://')}/ws/{new_employee()}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers=headers):
            pass

    assert refused.value.response.status_code == 403


async def test_an_oversized_header_token_is_refused_at_the_handshake(base_url: str) -> None:
    url = f"{base_url.replace('http://', 'ws://')}/ws/{new_employee()}"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, additional_headers={"Authorization": "Bearer " + "a" * 5000}):
            pass

    assert refused.value.response.status_code == 403


async def test_text_from_the_client_within_limits_is_ignored(
    base_url: str, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    async with connect(ws_url(base_url, f"/ws/{employee}")) as websocket:
        await websocket.send("hello server")
        await notify(http, employee, title="still here")

        assert (await next_message(websocket))["title"] == "still here"


async def test_an_oversized_client_message_closes_the_connection_with_1009(
    base_url: str, http: httpx.AsyncClient
) -> None:
    async with connect(ws_url(base_url, f"/ws/{new_employee()}")) as websocket:
        await websocket.send("x" * 5000)

        with pytest.raises(ConnectionClosedError):
            await next_message(websocket)

    assert websocket.close_code == 1009
    assert (
        await metric_value(
            http, "erp_websocket_dropped_connections_total", reason="message_too_big"
        )
        >= 1
    )


async def test_a_client_sending_too_fast_is_closed_with_1008(base_url: str) -> None:
    async with connect(ws_url(base_url, f"/ws/{new_employee()}")) as websocket:
        with suppress(ConnectionClosed):
            for _ in range(50):
                await websocket.send("ping")
        await asyncio.wait_for(websocket.wait_closed(), 3)

    assert websocket.close_code == 1008


async def test_connections_over_the_per_employee_limit_are_closed_with_1013(
    base_url: str, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    url = ws_url(base_url, f"/ws/{employee}")
    async with (
        connect(url) as first,
        connect(url) as second,
        connect(url) as third,
        connect(url) as extra,
    ):
        with pytest.raises(ConnectionClosedError):
            await next_message(extra)
        assert extra.close_code == 1013

        await notify(http, employee, title="to the first three")
        for websocket in (first, second, third):
            assert (await next_message(websocket))["title"] == "to the first three"


async def test_the_pushed_traceparent_continues_the_callers_trace(
    base_url: str, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    trace_id, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with connect(ws_url(base_url, f"/ws/{employee}")) as websocket:
        response = await http.post(
            "/notify",
            json={"employeeId": employee, "type": "approval_result"},
            headers={"traceparent": f"00-{trace_id}-{caller_span}-01"},
        )
        assert response.status_code == 202
        version, pushed_trace, pushed_span, _flags = (await next_message(websocket))[
            "traceparent"
        ].split("-")

    assert (version, pushed_trace) == ("00", trace_id)
    assert pushed_span != caller_span


def _raw_handshake(base_url: str, path: str) -> tuple[socket.socket, ClientProtocol]:
    """A WebSocket that will never read: a tiny receive buffer and segment size keep the
    kernel from soaking up megabytes before the server notices."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    sock.settimeout(5)
    sock.connect((host, int(port)))
    protocol = ClientProtocol(parse_uri(ws_url(base_url, path)))
    protocol.send_request(protocol.connect())
    sock.sendall(b"".join(protocol.data_to_send()))
    while protocol.handshake_exc is None and not protocol.events_received():
        protocol.receive_data(sock.recv(4096))
    assert protocol.handshake_exc is None
    return sock, protocol


def _read_until_close(sock: socket.socket, protocol: ClientProtocol) -> list[Frame]:
    frames: list[Frame] = []
    while not frames or frames[-1].opcode is not Opcode.CLOSE:
        data = sock.recv(65536)
        if not data:
            break
        protocol.receive_data(data)
        frames.extend(event for event in protocol.events_received() if isinstance(event, Frame))
    return frames


async def test_a_stuck_client_is_dropped_while_a_healthy_one_gets_every_message(
    base_url: str, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    stuck, stuck_protocol = _raw_handshake(base_url, f"/ws/{employee}")
    received: list[dict[str, Any]] = []
    dropped_before = await metric_value(
        http, "erp_websocket_dropped_connections_total", reason="too_slow"
    )
    async with connect(ws_url(base_url, f"/ws/{employee}")) as healthy:

        async def read_healthy() -> None:
            async for text in healthy:
                received.append(json.loads(text))

        reader = asyncio.create_task(read_healthy())
        posted: list[str] = []
        while (
            await metric_value(http, "erp_websocket_dropped_connections_total", reason="too_slow")
            == dropped_before
        ):
            assert len(posted) < 5000, "the stuck client was never dropped"
            titles = [f"{len(posted) + n:05d} {'가' * 150}" for n in range(BURST)]
            delivered = await asyncio.gather(*(notify(http, employee, title=t) for t in titles))
            assert all(delivered)
            posted += titles

        with stuck:
            frames = await asyncio.to_thread(_read_until_close, stuck, stuck_protocol)
        deadline = time.monotonic() + 5
        while len(received) < len(posted) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        reader.cancel()

    assert stuck_protocol.close_rcvd is not None
    assert (stuck_protocol.close_rcvd.code, stuck_protocol.close_rcvd.reason) == (1013, "too slow")
    assert len(posted) > SEND_QUEUE_SIZE
    assert sorted(message["title"] for message in received) == sorted(posted)
    healthy_ids = [message["id"] for message in received]
    assert healthy_ids == sorted(set(healthy_ids))
    stuck_ids = [
        json.loads(bytes(frame.data))["id"] for frame in frames if frame.opcode is Opcode.TEXT
    ]
    assert stuck_ids == healthy_ids[: len(stuck_ids)]


async def test_watch_yields_the_employees_notifications(
    base_url: str, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    await notify(http, employee, title="already there")

    async with aclosing(
        watch(base_url, employee, after=0, token=token_for(employee))
    ) as notifications:
        first = await asyncio.wait_for(anext(notifications), 3)
        await notify(http, employee, type="leave_confirmed", title="연차 확정")
        second = await asyncio.wait_for(anext(notifications), 3)

    assert (first.title, second.title, second.type) == (
        "already there",
        "연차 확정",
        "leave_confirmed",
    )
    assert second.employee_id == employee
    assert second.id > first.id
