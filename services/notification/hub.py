"""In-memory fan-out of notifications to each employee's open WebSockets, fed in stream order
(``stream.py``) with ids that increase for each employee.

Every connection gets its own bounded send queue and sender task, so one slow
client never delays another; a client that falls a whole queue behind is
closed and can catch up from the per-employee backlog with ``?after=``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import orjson
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, TraceFlags
from opentelemetry.util.types import AttributeValue

from services.common.telemetry import ending
from services.notification.metrics import (
    DROPPED_CONNECTIONS,
    NOTIFICATIONS,
    PUSH_DURATION,
    WEBSOCKET_CONNECTIONS,
)

logger = logging.getLogger(__name__)

# A stuck peer never reads our close frame; give up on a clean close after this long.
CLOSE_TIMEOUT_SECONDS = 5.0


class Connection(Protocol):
    """What the hub needs of a socket; Starlette's ``WebSocket`` fits."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


@dataclass(frozen=True, slots=True)
class Closure:
    """Why the server closes a connection: WebSocket close code and reason, metric label."""

    code: int
    reason: str
    label: str | None = None


TOO_SLOW = Closure(1013, "too slow", "too_slow")
SHUTTING_DOWN = Closure(1001, "server shutting down")


class TooManyConnections(Exception):
    """The employee already holds the allowed number of connections."""


class Delivery(NamedTuple):
    """One published notification, serialised once and shared by every connection.

    Plain values only: one object per backlog entry for the garbage collector to visit
    instead of three (entry, span context, trace state). With thousands of sockets open a
    full collection takes 300-400 ms, which is what the push latency's p99 is made of."""

    id: int
    employee_id: int
    type: str
    request_id: int | None
    text: str
    # The publishing span's identity (maybe another replica's), so the push span is its
    # child (not the span, which held its attributes and events: ~4.5 KB per entry).
    trace_id: int
    span_id: int
    trace_flags: int
    published_at: float  # seconds since the epoch: the publisher may be another process

    @property
    def parent(self) -> otel_context.Context:
        identity = trace.SpanContext(
            self.trace_id, self.span_id, is_remote=True, trace_flags=TraceFlags(self.trace_flags)
        )
        return trace.set_span_in_context(trace.NonRecordingSpan(identity))


class Subscription:
    """One open connection: its send queue, its sender task and how it ends."""

    def __init__(
        self,
        *,
        employee_id: int,
        connection: Connection,
        replay: list[Delivery],
        after: int,
        queue_size: int,
        tracer: trace.Tracer,
        close_timeout: float,
        on_send_failure: Callable[[Subscription], None],
    ) -> None:
        self.employee_id = employee_id
        self._connection = connection
        self._replay = replay
        # What the client has seen already: a replica that reads the stream behind the one
        # the client came from must not push it again.
        self._after = max([after, *(d.id for d in replay)])
        # A deque and a wake-up future rather than an asyncio.Queue (four deques of ~600
        # bytes each): thousands of these are open at once.
        self._pending: deque[Delivery] = deque()
        self._queue_size = queue_size
        self._wakeup: asyncio.Future[None] | None = None
        self._tracer = tracer
        self._close_timeout = close_timeout
        self._on_send_failure = on_send_failure
        self._sender: asyncio.Task[None] | None = None
        self._ending = False
        self._ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def start(self) -> None:
        """Begin sending: the backlog replay first, then live notifications."""
        if self._sender is None and not self._ending:
            self._sender = asyncio.create_task(
                self._send_all(), name=f"ws-sender-employee-{self.employee_id}"
            )

    def offer(self, delivery: Delivery) -> bool:
        """False when the send queue is full (the connection has fallen behind)."""
        if delivery.id <= self._after:
            return True
        if len(self._pending) >= self._queue_size:
            return False
        self._after = delivery.id
        self._pending.append(delivery)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
        return True

    @property
    def ended(self) -> asyncio.Future[None]:
        """Done once the subscription has stopped sending (awaiting it never cancels it)."""
        return self._ended

    async def wait_ended(self) -> None:
        await asyncio.shield(self._ended)

    def _mark_ended(self) -> None:
        if not self._ended.done():
            self._ended.set_result(None)

    async def _next(self) -> Delivery:
        while not self._pending:
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        return self._pending.popleft()

    async def close(self, closure: Closure) -> None:
        """Stop sending and close the socket; bounded in time even for a peer that never reads."""
        if self._ending:
            await self.wait_ended()
            return
        self._ending = True
        try:
            await self._stop_sender()
            await asyncio.wait_for(
                self._connection.close(closure.code, closure.reason), self._close_timeout
            )
        except TimeoutError:
            logger.warning("gave up closing a connection of employee %s cleanly", self.employee_id)
        except Exception as exc:
            logger.debug("closing a connection of employee %s failed: %r", self.employee_id, exc)
        finally:
            self._mark_ended()

    async def abandon(self) -> None:
        """The peer is gone: stop sending, there is nothing left to close."""
        if self._ending:
            await self.wait_ended()
            return
        self._ending = True
        try:
            await self._stop_sender()
        finally:
            self._mark_ended()

    async def _stop_sender(self) -> None:
        sender = self._sender
        if sender is not None and sender is not asyncio.current_task():
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    async def _send_all(self) -> None:
        try:
            replay, self._replay = self._replay, []
            for delivery in replay:
                await self._push(delivery, live=False)
            while True:
                await self._push(await self._next(), live=True)
        except Exception as exc:
            logger.info("push to employee %s failed, dropping it: %r", self.employee_id, exc)
            self._ending = True
            self._mark_ended()
            self._on_send_failure(self)

    async def _push(self, delivery: Delivery, *, live: bool) -> None:
        attributes: dict[str, AttributeValue] = {
            "erp.employee_id": delivery.employee_id,
            "erp.notification_type": delivery.type,
            "erp.notification_id": delivery.id,
            "erp.replayed": not live,
        }
        if delivery.request_id is not None:
            attributes["erp.request_id"] = delivery.request_id
        # Started, not made current: a push records nothing under it.
        span = self._tracer.start_span(
            "ws push", context=delivery.parent, kind=SpanKind.PRODUCER, attributes=attributes
        )
        with ending(span):
            await self._connection.send_text(delivery.text)
        if live:
            PUSH_DURATION.observe(max(0.0, time.time() - delivery.published_at))


def build_message(
    notification: Mapping[str, Any], *, notification_id: int, created_at: datetime
) -> dict[str, Any]:
    """The JSON object pushed to clients: the notification's non-null fields plus ``id`` and
    ``createdAt``. Contract verification (``contracts/``) checks this very function."""
    message: dict[str, Any] = {"id": notification_id}
    message.update((key, value) for key, value in notification.items() if value is not None)
    message["id"] = notification_id
    message["createdAt"] = created_at.isoformat(timespec="milliseconds")
    return message


class Hub:
    """Open connections and a bounded backlog per employee, for one process."""

    def __init__(
        self,
        *,
        backlog_per_employee: int,
        backlog_total: int = 20_000,
        send_queue_size: int,
        max_connections_per_employee: int,
        tracer: trace.Tracer | None = None,
        close_timeout: float = CLOSE_TIMEOUT_SECONDS,
    ) -> None:
        self._backlog_size = backlog_per_employee
        self._queue_size = send_queue_size
        self._max_connections = max_connections_per_employee
        self._tracer = tracer or trace.get_tracer(__name__)
        self._close_timeout = close_timeout
        self._backlog_total = backlog_total
        # Least recently notified employee first: the total bound trims there.
        self._backlogs: OrderedDict[int, deque[Delivery]] = OrderedDict()
        self._backlog_count = 0
        self._subscriptions: dict[int, set[Subscription]] = {}
        self._closing_tasks: set[asyncio.Task[None]] = set()

    def connection_count(self, employee_id: int | None = None) -> int:
        if employee_id is not None:
            return len(self._subscriptions.get(employee_id, ()))
        return sum(len(subs) for subs in self._subscriptions.values())

    def subscribe(
        self, employee_id: int, connection: Connection, *, after: int | None = None
    ) -> Subscription:
        """Register a connection; it will replay the backlog after ``after`` once started.

        Registering before the WebSocket is accepted means a client never sees its
        handshake complete before the hub routes that employee's notifications to it.
        """
        if self.connection_count(employee_id) >= self._max_connections:
            raise TooManyConnections(employee_id)
        replay: list[Delivery] = []
        if after is not None:
            replay = [d for d in self._backlogs.get(employee_id, ()) if d.id > after]
        subscription = Subscription(
            employee_id=employee_id,
            connection=connection,
            replay=replay,
            after=after or 0,
            queue_size=self._queue_size,
            tracer=self._tracer,
            close_timeout=self._close_timeout,
            on_send_failure=self._forget,
        )
        self._subscriptions.setdefault(employee_id, set()).add(subscription)
        WEBSOCKET_CONNECTIONS.inc()
        return subscription

    def publish(
        self,
        notification: Mapping[str, Any],
        *,
        notification_id: int,
        created_at: datetime | None = None,
        parent: trace.SpanContext | None = None,
        published_at: float | None = None,
    ) -> bool:
        """Record a notification (needs ``employeeId`` and ``type``) under ``notification_id``,
        above every id published before, and queue it for each open connection of that
        employee. True when at least one connection here took it. ``parent`` is the span
        the push spans continue (the current one by default)."""
        employee_id: int = notification["employeeId"]
        kind: str = notification["type"]
        created_at = created_at or datetime.now(UTC)
        message = build_message(
            notification, notification_id=notification_id, created_at=created_at
        )
        request_id = notification.get("requestId")
        if parent is None:
            parent = trace.get_current_span().get_span_context()
        delivery = Delivery(
            id=notification_id,
            employee_id=employee_id,
            type=kind,
            request_id=request_id if isinstance(request_id, int) else None,
            # decoded: orjson's bytes keep their 4 KB buffer, the str is exact
            text=orjson.dumps(message).decode(),
            trace_id=parent.trace_id,
            span_id=parent.span_id,
            trace_flags=parent.trace_flags,
            published_at=created_at.timestamp() if published_at is None else published_at,
        )
        self._remember(delivery)
        delivered = False
        for subscription in list(self._subscriptions.get(employee_id, ())):
            if subscription.offer(delivery):
                delivered = True
            else:
                logger.warning("employee %s connection fell behind, closing it", employee_id)
                self._forget(subscription)
                self._count_drop(TOO_SLOW)
                task = asyncio.create_task(subscription.close(TOO_SLOW))
                self._closing_tasks.add(task)
                task.add_done_callback(self._closing_tasks.discard)
        NOTIFICATIONS.labels(kind, "true" if delivered else "false").inc()
        return delivered

    def _remember(self, delivery: Delivery) -> None:
        """Keep ``delivery`` for replay: at most ``backlog_per_employee`` per employee and
        ``backlog_total`` in all (the oldest of the least recently notified employee go
        first), so memory stays bounded however many employees are notified."""
        backlog = self._backlogs.get(delivery.employee_id)
        if backlog is None:
            backlog = self._backlogs[delivery.employee_id] = deque(maxlen=self._backlog_size)
        else:
            self._backlogs.move_to_end(delivery.employee_id)
        if len(backlog) < self._backlog_size:
            self._backlog_count += 1
        backlog.append(delivery)
        while self._backlog_count > self._backlog_total:
            employee_id, oldest = next(iter(self._backlogs.items()))
            oldest.popleft()
            self._backlog_count -= 1
            if not oldest:
                del self._backlogs[employee_id]

    async def drop(self, subscription: Subscription, closure: Closure) -> None:
        """Close a connection on the server's initiative (a client broke a limit)."""
        self._forget(subscription)
        self._count_drop(closure)
        await subscription.close(closure)

    async def release(self, subscription: Subscription) -> None:
        """The connection's handler is finishing: unregister it and stop its sender."""
        self._forget(subscription)
        await subscription.abandon()

    async def close_all(self) -> None:
        subscriptions = [s for subs in self._subscriptions.values() for s in subs]
        for subscription in subscriptions:
            self._forget(subscription)
        await asyncio.gather(
            *(s.close(SHUTTING_DOWN) for s in subscriptions),
            *self._closing_tasks,
            return_exceptions=True,
        )

    def _forget(self, subscription: Subscription) -> None:
        subs = self._subscriptions.get(subscription.employee_id)
        if subs is None or subscription not in subs:
            return
        subs.remove(subscription)
        if not subs:
            del self._subscriptions[subscription.employee_id]
        WEBSOCKET_CONNECTIONS.dec()

    @staticmethod
    def _count_drop(closure: Closure) -> None:
        if closure.label is not None:
            DROPPED_CONNECTIONS.labels(closure.label).inc()
