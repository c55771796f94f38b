"""notification-service as three real replicas sharing one RabbitMQ stream: a notification
posted to any replica reaches every socket of the employee, ids increase across replicas,
replay works anywhere and survives restarting them all, and a stored notification is never
lost with the replica that took it."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError

from devstack.apps import get_service, start_app, stop_process, wait_ready
from services.notification.stream import ID_BASE
from tests.support.auth import as_service, token_for
from tests.support.stack import AMQP_URL, JAEGER_QUERY, TEST_DB, TRACING, free_port
from tests.support.traces import fetch_trace, new_traceparent

REPO = Path(__file__).resolve().parents[2]
REPLICAS = 3
# Employees of this module only: the stream is its own, but ids must not meet other tests'.
_employee_ids = itertools.count(500_001)


def new_employee() -> int:
    return next(_employee_ids)


@dataclass
class Replicas:
    """N notification-service processes on one stream, each on its own port."""

    stream: str
    log_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, replica: int) -> str:
        return f"http://127.0.0.1:{self.ports[replica]}"

    def env(self, replica: int) -> dict[str, str]:
        return {
            **TRACING,
            "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id=replica-{replica}",
            "NOTIFICATION_AMQP_URL": AMQP_URL,
            "NOTIFICATION_STREAM": self.stream,
            "NOTIFICATION_LOG_LEVEL": "WARNING",
            **self.extra_env,
        }

    def start(self, replica: int, *, wait: bool = True) -> None:
        while len(self.ports) <= replica:
            self.ports.append(free_port())
        log_dir = self.log_dir / f"replica-{replica}"
        log_dir.mkdir(parents=True, exist_ok=True)
        service = get_service("notification")
        proc = start_app(
            service, port=self.ports[replica], extra_env=self.env(replica), log_dir=log_dir
        )
        self.procs[replica] = proc
        if wait:
            wait_ready(self.url(replica), timeout=60, proc=proc)

    def stop(self, replica: int) -> None:
        proc = self.procs.pop(replica, None)
        if proc is not None:
            stop_process(proc, grace=10)

    def kill(self, replica: int) -> None:
        proc = self.procs.pop(replica)
        proc.kill()
        proc.wait()

    def stop_all(self) -> None:
        for replica in list(self.procs):
            self.stop(replica)


@pytest.fixture(scope="module")
def replicas(infra: None) -> Iterator[Replicas]:
    log_dir = REPO / ".run" / "test-logs" / "notification-replicas"
    running = Replicas(stream=f"notifications-replicas-{free_port()}", log_dir=log_dir)
    try:
        for replica in range(REPLICAS):
            running.start(replica)
        yield running
    finally:
        running.stop_all()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15, headers=as_service()) as client:
        yield client


def ws_url(base_url: str, employee: int, after: int | None = None) -> str:
    query = f"?token={token_for(employee)}" + (f"&after={after}" if after is not None else "")
    return f"{base_url.replace('http://', 'ws://', 1)}/ws/{employee}{query}"


async def notify(
    http: httpx.AsyncClient, base_url: str, employee: int, title: str, **headers: str
) -> None:
    body = {"employeeId": employee, "type": "approval_result", "title": title}
    response = await http.post(f"{base_url}/notify", json=body, headers=headers)
    assert (response.status_code, response.json()) == (202, {"delivered": True}), response.text


async def next_message(websocket: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(websocket.recv(), timeout))
    return message


async def take(websocket: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [await next_message(websocket) for _ in range(count)]


async def nothing_more(websocket: ClientConnection, within: float = 0.5) -> bool:
    try:
        await asyncio.wait_for(websocket.recv(), within)
    except TimeoutError:
        return True
    return False


async def metrics(http: httpx.AsyncClient, base_url: str) -> dict[str, float]:
    text = (await http.get(f"{base_url}/metrics")).text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("erp_notification_stream_")
    }


async def test_a_notification_posted_to_any_replica_reaches_every_socket_on_every_replica(
    replicas: Replicas, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    async with AsyncExitStack() as sockets:
        opened = [
            await sockets.enter_async_context(connect(ws_url(replicas.url(r), employee)))
            for r in range(REPLICAS)
        ]
        for sender in range(REPLICAS):
            await notify(http, replicas.url(sender), employee, f"from replica {sender}")

        received = [await take(websocket, REPLICAS) for websocket in opened]

    titles = [f"from replica {sender}" for sender in range(REPLICAS)]
    assert [[m["title"] for m in messages] for messages in received] == [titles] * REPLICAS
    # The same notification is the same message everywhere: id, createdAt and all.
    assert received[0] == received[1] == received[2]


async def test_ids_increase_for_an_employee_whichever_replica_took_the_notify(
    replicas: Replicas, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    async with connect(ws_url(replicas.url(0), employee)) as websocket:
        for n in range(9):
            await notify(http, replicas.url(n % REPLICAS), employee, str(n))
        messages = await take(websocket, 9)

    ids = [message["id"] for message in messages]
    assert [message["title"] for message in messages] == [str(n) for n in range(9)]
    assert ids == sorted(set(ids))
    # Above the microsecond ids clients may hold from before, exact in JavaScript.
    assert all(ID_BASE < i < 2**53 for i in ids)


async def test_replay_after_an_id_works_on_any_replica(
    replicas: Replicas, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    async with connect(ws_url(replicas.url(0), employee)) as websocket:
        await notify(http, replicas.url(0), employee, "seen")
        last_seen = (await next_message(websocket))["id"]
    for n in range(3):
        await notify(http, replicas.url(1), employee, f"missed {n}")

    for replica in range(REPLICAS):
        async with connect(ws_url(replicas.url(replica), employee, last_seen)) as websocket:
            replayed = await take(websocket, 3)
            assert await nothing_more(websocket)
        assert [m["title"] for m in replayed] == ["missed 0", "missed 1", "missed 2"], replica


async def test_a_stored_notification_outlives_the_replica_that_took_it(
    replicas: Replicas, http: httpx.AsyncClient
) -> None:
    """202 comes after the broker's confirm: killing the replica right after loses nothing."""
    employee = new_employee()
    async with connect(ws_url(replicas.url(0), employee)) as websocket:
        await notify(http, replicas.url(2), employee, "before the crash")
        replicas.kill(2)
        try:
            assert (await next_message(websocket))["title"] == "before the crash"
        finally:
            replicas.start(2)
    async with connect(ws_url(replicas.url(2), employee, 0)) as websocket:
        assert (await next_message(websocket))["title"] == "before the crash"


async def test_the_backlog_is_refilled_from_the_stream_when_every_replica_restarts(
    replicas: Replicas, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    for n in range(3):
        await notify(http, replicas.url(n), employee, f"before {n}")
    async with connect(ws_url(replicas.url(0), employee, 0)) as websocket:
        before = await take(websocket, 3)

    replicas.stop_all()
    for replica in range(REPLICAS):
        replicas.start(replica, wait=False)
    for replica in range(REPLICAS):
        wait_ready(replicas.url(replica), timeout=60, proc=replicas.procs[replica])
    await notify(http, replicas.url(1), employee, "after")

    for replica in range(REPLICAS):
        async with connect(ws_url(replicas.url(replica), employee, before[0]["id"])) as websocket:
            replayed = await take(websocket, 3)
        assert replayed[:2] == before[1:], replica
        assert replayed[2]["title"] == "after"
        assert replayed[2]["id"] > before[-1]["id"]


async def test_a_replica_is_ready_and_takes_sockets_only_once_it_has_caught_up(
    replicas: Replicas, http: httpx.AsyncClient
) -> None:
    """A late replica answers /ready 200 only with the whole backlog read from the stream."""
    employee = new_employee()
    posted = 400
    for start in range(0, posted, 50):
        await asyncio.gather(
            *(
                notify(http, replicas.url(n % REPLICAS), employee, f"{n:03d}")
                for n in range(start, start + 50)
            )
        )
    late = REPLICAS
    replicas.start(late, wait=False)
    try:
        while not await _ready(http, replicas.url(late)):
            assert replicas.procs[late].poll() is None, "the late replica exited"
            await asyncio.sleep(0.01)
        async with connect(ws_url(replicas.url(late), employee, 0)) as websocket:
            replayed = await take(websocket, 200)  # the per-employee backlog bound
        late_metrics = await metrics(http, replicas.url(late))
    finally:
        replicas.stop(late)

    assert sorted(m["title"] for m in replayed) == [f"{n:03d}" for n in range(200, posted)]
    # Entries read while catching up are old by nature: they are no lag.
    assert late_metrics["erp_notification_stream_lag_seconds"] == 0
    assert late_metrics["erp_notification_stream_caught_up"] == 1


async def test_a_replica_that_cannot_read_the_stream_is_not_ready_and_refuses_sockets(
    replicas: Replicas, http: httpx.AsyncClient
) -> None:
    """Its backlog would be incomplete, and entries it read late would be pushed as new."""
    cut_off = Replicas(
        stream=replicas.stream,
        log_dir=replicas.log_dir / "cut-off",
        extra_env={"NOTIFICATION_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/"},
    )
    cut_off.start(0, wait=False)
    try:
        employee = new_employee()
        deadline = time.monotonic() + 30
        while True:
            try:
                async with connect(ws_url(cut_off.url(0), employee, 0)) as websocket:
                    with pytest.raises(ConnectionClosedError) as refused:
                        await next_message(websocket)
                break
            except OSError:
                assert time.monotonic() < deadline, "the replica never listened"
                await asyncio.sleep(0.1)
        ready = await http.get(f"{cut_off.url(0)}/ready")
        stored = await http.post(
            f"{cut_off.url(0)}/notify", json={"employeeId": employee, "type": "approval_result"}
        )
    finally:
        cut_off.stop_all()

    assert refused.value.rcvd is not None
    assert (refused.value.rcvd.code, refused.value.rcvd.reason) == (
        1013,
        "catching up, try again later",
    )
    assert ready.status_code == 503
    assert stored.status_code == 503
    assert stored.headers["retry-after"]


async def _ready(http: httpx.AsyncClient, base_url: str) -> bool:
    try:
        return (await http.get(f"{base_url}/ready", timeout=2)).status_code == 200
    except httpx.TransportError:
        return False


async def test_a_replica_reattaches_after_a_forced_close_without_a_gap_or_a_repeat(
    replicas: Replicas, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    async with connect(ws_url(replicas.url(1), employee)) as websocket:
        await notify(http, replicas.url(0), employee, "before")
        assert (await next_message(websocket))["title"] == "before"

        closed = await asyncio.to_thread(_close_amqp_connections_of, replicas.procs[1].pid)
        assert closed >= 1
        for n in range(5):
            await notify(http, replicas.url(0), employee, f"during {n}")
        messages = await take(websocket, 5)
        assert await nothing_more(websocket)

    assert [m["title"] for m in messages] == [f"during {n}" for n in range(5)]


def _close_amqp_connections_of(pid: int) -> int:
    """Close, from the broker's side, the AMQP connections of process ``pid`` (its
    connection name carries the pid)."""
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_connections", "-p", TEST_DB, "pid", "client_properties"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    owned = [line.split("\t", 1)[0] for line in listed.splitlines() if f'pid {pid}"' in line]
    for connection in owned:
        subprocess.run(
            ["rabbitmqctl", "-q", "close_connection", connection, "forced by a test"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    return len(owned)


async def test_every_replica_reports_its_stream_position_and_that_it_has_caught_up(
    replicas: Replicas, http: httpx.AsyncClient
) -> None:
    await notify(http, replicas.url(0), new_employee(), "to move the stream")
    deadline = time.monotonic() + 10
    while True:
        seen = [await metrics(http, replicas.url(r)) for r in range(REPLICAS)]
        offsets = {m["erp_notification_stream_offset"] for m in seen}
        if len(offsets) == 1 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)

    assert len(offsets) == 1, "every replica reads the same stream to the same offset"
    assert all(m["erp_notification_stream_caught_up"] == 1 for m in seen)
    assert all(m["erp_notification_stream_lag_seconds"] < 5 for m in seen)


async def test_a_notify_on_one_replica_and_the_push_on_another_are_one_trace(
    replicas: Replicas, http: httpx.AsyncClient
) -> None:
    employee = new_employee()
    trace_id, headers = new_traceparent()
    async with connect(ws_url(replicas.url(1), employee)) as websocket:
        await notify(http, replicas.url(0), employee, "traced", **headers)
        await next_message(websocket)

    def pushed(trace: Any) -> bool:
        return any(
            s.name == "ws push" and s.tags.get("erp.employee_id") == employee
            for s in trace.spans.values()
        )

    trace = await fetch_trace(trace_id, until=pushed)
    notify_span = trace.one("notification-service", "POST /notify")
    push = next(
        s
        for s in trace.named("notification-service", "ws push")
        if s.tags.get("erp.employee_id") == employee
    )
    assert push.parent == notify_span.span_id
    instances = await _instances(trace_id)
    assert instances[notify_span.span_id] == "replica-0"
    assert instances[push.span_id] == "replica-1"


async def _instances(trace_id: str) -> dict[str, str]:
    """span id -> the service.instance.id of the process that recorded it."""
    async with httpx.AsyncClient(timeout=5) as client:
        data = (await client.get(f"{JAEGER_QUERY}/api/traces/{trace_id}")).json()["data"][0]
    processes = {
        key: {tag["key"]: tag["value"] for tag in value.get("tags", [])}
        for key, value in data["processes"].items()
    }
    return {
        span["spanID"]: str(processes[span["processID"]].get("service.instance.id"))
        for span in data["spans"]
    }
