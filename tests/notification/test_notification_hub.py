"""The hub's fan-out, backlog and laggard rules, driven directly with in-memory sockets."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from services.notification.hub import Hub, TooManyConnections

# Ids come from the stream's offsets (stream.py): increasing, with gaps.
_ids = itertools.count(10, 3)


class FakeSocket:
    """Records what the hub sends; a stuck one never completes a send or a close."""

    def __init__(self, *, stuck: bool = False, broken: bool = False) -> None:
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.close_requested: tuple[int, str | None] | None = None
        self._broken = broken
        self._flowing = asyncio.Event()
        if not stuck:
            self._flowing.set()

    async def send_text(self, data: str) -> None:
        if self._broken:
            raise ConnectionResetError("peer went away")
        await self._flowing.wait()
        self.messages.put_nowait(json.loads(data))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.close_requested = (code, reason)
        await self._flowing.wait()

    async def next(self) -> dict[str, Any]:
        return await asyncio.wait_for(self.messages.get(), 1)

    async def take(self, count: int) -> list[dict[str, Any]]:
        return [await self.next() for _ in range(count)]


def make_hub(**overrides: Any) -> Hub:
    options: dict[str, Any] = {
        "backlog_per_employee": 50,
        "send_queue_size": 16,
        "max_connections_per_employee": 5,
        "close_timeout": 0.05,
    }
    return Hub(**(options | overrides))


@pytest.fixture
async def hub() -> AsyncIterator[Hub]:
    hub = make_hub()
    yield hub
    await hub.close_all()


def connect(hub: Hub, employee_id: int, *, after: int | None = None, **kind: bool) -> FakeSocket:
    socket = FakeSocket(**kind)
    hub.subscribe(employee_id, socket, after=after).start()
    return socket


def publish(hub: Hub, notification: dict[str, Any]) -> bool:
    return hub.publish(notification, notification_id=next(_ids))


def note(employee_id: int, title: str = "t", **fields: Any) -> dict[str, Any]:
    return {"employeeId": employee_id, "type": "approval_result", "title": title, **fields}


async def test_publish_without_connections_is_undelivered_but_kept_for_replay(hub: Hub) -> None:
    assert publish(hub, note(1, "while away")) is False

    socket = connect(hub, 1, after=0)

    assert (await socket.next())["title"] == "while away"


async def test_every_connection_of_an_employee_receives_each_notification(hub: Hub) -> None:
    first, second = connect(hub, 1), connect(hub, 1)

    assert publish(hub, note(1, "hello")) is True

    assert await first.next() == await second.next()


async def test_another_employees_connection_receives_nothing(hub: Hub) -> None:
    mine, theirs = connect(hub, 1), connect(hub, 2)

    publish(hub, note(1, "for 1"))
    publish(hub, note(2, "for 2"))

    assert (await mine.next())["title"] == "for 1"
    assert (await theirs.next())["title"] == "for 2"
    assert mine.messages.empty()
    assert theirs.messages.empty()


async def test_pushed_message_has_the_fields_an_id_and_a_utc_created_at(hub: Hub) -> None:
    socket = connect(hub, 1)

    publish(hub, note(1, "결재 요청", requestId=7, step=2, approverId=3, finalStatus=None))

    message = await socket.next()
    assert set(message) == {
        "id",
        "employeeId",
        "type",
        "title",
        "requestId",
        "step",
        "approverId",
        "createdAt",
    }
    assert message["title"] == "결재 요청"
    assert datetime.fromisoformat(message["createdAt"]).utcoffset() == timedelta(0)


async def test_a_connection_is_never_pushed_an_id_at_or_below_what_it_has_seen(
    hub: Hub,
) -> None:
    """A replica that reads the stream behind the one the client came from must not push
    again what the client has already received there."""
    socket = connect(hub, 1, after=100)

    hub.publish(note(1, "seen elsewhere"), notification_id=99)
    hub.publish(note(1, "also seen"), notification_id=100)
    hub.publish(note(1, "new"), notification_id=101)
    hub.publish(note(1, "new again"), notification_id=102)

    assert [message["title"] for message in await socket.take(2)] == ["new", "new again"]
    await asyncio.sleep(0.01)
    assert socket.messages.empty()


async def test_the_push_span_continues_the_span_that_published_elsewhere() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    hub = make_hub(tracer=provider.get_tracer("test"))
    socket = connect(hub, 1)
    publisher = SpanContext(
        0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, True, TraceFlags(1)
    )

    hub.publish(note(1), notification_id=7, parent=publisher)
    await socket.next()
    await hub.close_all()

    (push,) = exporter.get_finished_spans()
    assert push.parent is not None
    assert (push.context.trace_id, push.parent.span_id) == (
        publisher.trace_id,
        publisher.span_id,
    )


async def test_reconnecting_after_an_id_replays_exactly_the_missed_ones_in_order(
    hub: Hub,
) -> None:
    first = connect(hub, 1)
    for n in range(5):
        publish(hub, note(1, str(n)))
    seen = await first.take(5)
    await hub.close_all()

    again = connect(hub, 1, after=seen[1]["id"])
    publish(hub, note(1, "live"))

    titles = [message["title"] for message in await again.take(4)]
    assert titles == ["2", "3", "4", "live"]
    assert again.messages.empty()


async def test_replay_is_bounded_by_the_backlog() -> None:
    hub = make_hub(backlog_per_employee=3)
    for n in range(5):
        publish(hub, note(1, str(n)))

    socket = connect(hub, 1, after=0)

    assert [message["title"] for message in await socket.take(3)] == ["2", "3", "4"]
    await hub.close_all()


async def test_the_backlog_is_bounded_in_all_trimming_the_least_recently_notified_first() -> None:
    hub = make_hub(backlog_per_employee=3, backlog_total=4)
    publish(hub, note(1, "a1"))
    publish(hub, note(2, "b1"))
    publish(hub, note(1, "a2"))
    publish(hub, note(3, "c1"))
    publish(hub, note(3, "c2"))  # five kept would be one too many: employee 2 was idlest
    for n in range(3, 6):
        publish(hub, note(1, f"a{n}"))  # employee 1's own bound replaces, never adds

    replays = {employee: connect(hub, employee, after=0) for employee in (1, 2, 3)}
    await asyncio.sleep(0.05)
    titles = {
        employee: [message["title"] for message in await socket.take(socket.messages.qsize())]
        for employee, socket in replays.items()
    }

    assert titles == {1: ["a3", "a4", "a5"], 2: [], 3: ["c2"]}
    await hub.close_all()


async def test_a_stuck_connection_is_dropped_while_the_others_keep_receiving() -> None:
    hub = make_hub(send_queue_size=2)
    stuck, healthy = connect(hub, 1, stuck=True), connect(hub, 1)

    for n in range(10):
        assert publish(hub, note(1, str(n))) is True
        await asyncio.sleep(0)

    assert [message["title"] for message in await healthy.take(10)] == [str(n) for n in range(10)]
    assert stuck.close_requested == (1013, "too slow")
    assert hub.connection_count(1) == 1
    await hub.close_all()


async def test_closing_a_stuck_connection_does_not_hang_the_hub() -> None:
    hub = make_hub()
    stuck = connect(hub, 1, stuck=True)
    publish(hub, note(1))

    await asyncio.wait_for(hub.close_all(), 1)

    assert stuck.close_requested == (1001, "server shutting down")


async def test_connections_over_the_per_employee_limit_are_refused() -> None:
    hub = make_hub(max_connections_per_employee=2)
    connect(hub, 1)
    connect(hub, 1)

    with pytest.raises(TooManyConnections):
        connect(hub, 1)
    connect(hub, 2)
    await hub.close_all()


async def test_a_connection_whose_send_fails_is_forgotten(hub: Hub) -> None:
    connect(hub, 1, broken=True)

    assert publish(hub, note(1)) is True
    await asyncio.sleep(0.01)

    assert hub.connection_count(1) == 0
    assert publish(hub, note(1)) is False


async def test_closing_the_hub_closes_every_connection_as_going_away(hub: Hub) -> None:
    sockets = [connect(hub, 1), connect(hub, 1), connect(hub, 2)]

    await hub.close_all()

    assert [socket.close_requested for socket in sockets] == [(1001, "server shutting down")] * 3
    assert hub.connection_count() == 0


async def test_the_push_span_is_a_child_of_the_request_that_published() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    hub = make_hub(tracer=tracer)
    socket = connect(hub, 1)

    with tracer.start_as_current_span("POST /notify") as request_span:
        publish(hub, note(1, requestId=7))
    await socket.next()
    await hub.close_all()

    push = next(span for span in exporter.get_finished_spans() if span.name == "ws push")
    assert push.kind is SpanKind.PRODUCER
    assert push.parent is not None
    assert push.parent.span_id == request_span.get_span_context().span_id
    assert push.attributes is not None
    assert push.attributes["erp.employee_id"] == 1
    assert push.attributes["erp.request_id"] == 7
    assert push.attributes["erp.notification_type"] == "approval_result"
