"""The notification stream: every replica publishes each ``/notify`` to one RabbitMQ stream and
reads the whole stream back, pushing to the sockets it holds and keeping the replay backlog.

A notification's id is ``ID_BASE + its stream offset``: the broker gives offsets in one order
without reuse, so ids increase for every employee whichever replica took the ``/notify``.
aio-pika's robust consumer would re-attach at the offset it first asked for, and a stream
refuses ``nack``/``reject`` by closing the whole connection, so this module reconnects on its
own, re-attaches after the last offset read and never does either (docs/decisions.md D20).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq
import orjson
from aio_pika.abc import (
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)
from opentelemetry import trace

from services.common import (
    DependencyUnavailable,
    extract_context,
    inject_context,
    track_dependency,
)
from services.notification.hub import Hub
from services.notification.metrics import (
    STREAM_CAUGHT_UP,
    STREAM_LAG,
    STREAM_OFFSET,
)
from services.notification.settings import NotificationSettings

logger = logging.getLogger(__name__)

# Above the microsecond timestamps ids were before (~1.8e15), below 2**53 (exact in
# JavaScript) for the first 4.5e15 entries. Never delete the stream: offsets would restart.
ID_BASE = 2**52
OFFSET = "x-stream-offset"
# Headers of a stream entry: its creation time, the replica and call that published it,
# and, on a replica's catch-up markers, nothing else (they are never pushed).
CREATED_US = "x-erp-created-us"
PUBLISHED_BY = "x-erp-published-by"
MARKER = "x-erp-marker"
RECONNECT_MAX_SECONDS = 5.0
# Who holds a connection, as the broker's connection list shows it.
CONNECTION_NAME = f"notification-service {socket.gethostname()} pid {os.getpid()}"


def notification_id(offset: int) -> int:
    return ID_BASE + offset


def stream_arguments(settings: NotificationSettings) -> dict[str, Any]:
    return {
        "x-queue-type": "stream",
        "x-max-age": settings.stream_max_age,
        "x-max-length-bytes": settings.stream_max_length_bytes,
        "x-stream-max-segment-size-bytes": settings.stream_max_segment_size_bytes,
    }


async def declare_stream(
    connection: AbstractConnection, settings: NotificationSettings
) -> AbstractQueue:
    """The stream, created with the configured retention if it does not exist yet. One that
    exists with other retention is used as it is (a redeclare cannot change it)."""
    channel = await connection.channel()
    try:
        return await channel.declare_queue(
            settings.stream, durable=True, arguments=stream_arguments(settings)
        )
    except aiormq.exceptions.ChannelPreconditionFailed as exc:
        logger.warning(
            "stream %s exists with other arguments than configured, using it as it is: %s",
            settings.stream,
            exc,
        )
    channel = await connection.channel()
    return await channel.declare_queue(settings.stream, passive=True)


class NotificationStream:
    """Publishes notifications to the stream and feeds everything read from it to the hub."""

    def __init__(self, settings: NotificationSettings, hub: Hub) -> None:
        self.settings = settings
        self.hub = hub
        self.replica = uuid.uuid4().hex
        self._calls = itertools.count()
        self._exchange: AbstractExchange | None = None
        self._last: int | None = None  # the last offset read, kept across reconnects
        self._target: int | None = None  # caught up once the offset read reaches it
        self._unacked = 0
        # Calls of this replica waiting to see their entry read back, by publish id.
        self._read_back: dict[str, asyncio.Future[None]] = {}
        self._probe: asyncio.Future[int] | None = None
        self._probe_marker: str | None = None

    @property
    def caught_up(self) -> bool:
        return (
            self._exchange is not None
            and self._target is not None
            and self._last is not None
            and self._last >= self._target
        )

    async def check(self) -> None:
        """Readiness: connected, and read up to the marker published on (re)attaching."""
        if not self.caught_up:
            raise ConnectionError("not connected to the notification stream or still catching up")

    async def run(self) -> None:
        """Attach, read until the connection or a channel is lost, attach again; forever."""
        backoff = 0.2
        while True:
            connection: AbstractConnection | None = None
            try:
                connection = await aio_pika.connect(
                    self.settings.amqp_url,
                    client_properties={"connection_name": CONNECTION_NAME},
                )
                lost = asyncio.get_running_loop().create_future()
                await self._attach(connection, lost)
                backoff = 0.2
                reason = await lost
                logger.warning("notification stream lost (%s), attaching again", reason)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning(
                    "notification stream unavailable (%r), retrying in %.1fs", exc, backoff
                )
            finally:
                self._detached()
                if connection is not None and not connection.is_closed:
                    await asyncio.shield(_close_quietly(connection))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)

    async def _attach(self, connection: AbstractConnection, lost: asyncio.Future[Any]) -> None:
        def on_lost(_: object, exc: BaseException | None = None) -> None:
            if not lost.done():
                lost.set_result(repr(exc))

        connection.close_callbacks.add(on_lost)
        await declare_stream(connection, self.settings)
        publishing = await connection.channel(publisher_confirms=True, on_return_raises=True)
        reading = await connection.channel(publisher_confirms=False)
        for channel in (publishing, reading):
            channel.close_callbacks.add(on_lost)
        await reading.set_qos(prefetch_count=self.settings.stream_prefetch)
        queue = await reading.get_queue(self.settings.stream, ensure=False)
        exchange = publishing.default_exchange
        tail = await self._find_tail(queue, exchange)
        start = tail + 1 - self.settings.backlog_total if self._last is None else self._last + 1
        self._target = tail
        self._unacked = 0
        await queue.consume(self._on_entry, arguments={OFFSET: max(0, start)})
        self._exchange = exchange
        logger.info("reading notification stream from offset %d, tail %d", max(0, start), tail)

    async def _find_tail(self, queue: AbstractQueue, exchange: AbstractExchange) -> int:
        """The offset of a marker published now: what a replica must read to be caught up.
        (A passive declare's message count is neither the last offset nor the entry count.)"""
        self._probe = asyncio.get_running_loop().create_future()
        self._probe_marker = uuid.uuid4().hex
        tag = await queue.consume(self._on_probe, arguments={OFFSET: "next"})
        try:
            await self._publish_marker(exchange, self._probe_marker)
            return await asyncio.wait_for(self._probe, self.settings.publish_timeout_seconds)
        finally:
            self._probe = self._probe_marker = None
            await queue.cancel(tag)

    async def _publish_marker(self, exchange: AbstractExchange, marker: str) -> None:
        message = aio_pika.Message(
            b"", headers={MARKER: marker}, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
        )
        await self._send(exchange, message)

    async def _on_probe(self, message: AbstractIncomingMessage) -> None:
        headers = message.headers
        offset = headers.get(OFFSET)
        probe = self._probe
        if (
            probe is not None
            and not probe.done()
            and isinstance(offset, int)
            and headers.get(MARKER) == self._probe_marker
        ):
            probe.set_result(offset)
        await _ack(message, multiple=False)

    def _detached(self) -> None:
        self._exchange = None
        self._target = None
        STREAM_CAUGHT_UP.set(0)
        for waiter in self._read_back.values():
            if not waiter.done():
                waiter.set_result(None)

    async def _on_entry(self, message: AbstractIncomingMessage) -> None:
        # Runs up to the ack without awaiting: entries reach the hub in the stream's order.
        headers = message.headers
        offset = headers.get(OFFSET)
        if isinstance(offset, int) and (self._last is None or offset > self._last):
            self._last = offset
            STREAM_OFFSET.set(offset)
            if MARKER not in headers:
                self._deliver(offset, headers, message.body)
            if self._target is not None and offset >= self._target:
                STREAM_CAUGHT_UP.set(1)
        self._unacked += 1
        if self._unacked * 4 >= self.settings.stream_prefetch:
            self._unacked = 0
            await _ack(message, multiple=True)

    def _deliver(self, offset: int, headers: Any, body: bytes) -> None:
        try:
            fields = orjson.loads(body)
            created_us = headers.get(CREATED_US)
            created = created_us / 1e6 if isinstance(created_us, int) else time.time()
            parent = trace.get_current_span(extract_context(headers)).get_span_context()
            self.hub.publish(
                fields,
                notification_id=notification_id(offset),
                created_at=datetime.fromtimestamp(created, UTC),
                parent=parent,
                published_at=created,
            )
            if self._target is not None and offset > self._target:
                # Past the catch-up: the age of entries read while catching up says nothing.
                STREAM_LAG.set(max(0.0, time.time() - created))
        except Exception:
            logger.exception("stream entry %d is not a notification, skipped", offset)
        waiter = self._read_back.pop(str(headers.get(PUBLISHED_BY)), None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def publish(self, fields: dict[str, Any]) -> None:
        """Store one notification in the stream (confirmed by the broker), then wait, within
        the timeout, for this replica to have read it back, so its own sockets have it."""
        exchange = self._exchange
        if exchange is None:
            raise DependencyUnavailable("rabbitmq", detail="notification stream unavailable")
        publish_id = f"{self.replica}-{next(self._calls)}"
        read_back = asyncio.get_running_loop().create_future()
        self._read_back[publish_id] = read_back
        timeout = self.settings.publish_timeout_seconds
        try:
            await self._store(exchange, fields, publish_id)
            try:
                await asyncio.wait_for(asyncio.shield(read_back), timeout)
            except TimeoutError:
                logger.warning("stored notification not read back within %.1fs", timeout)
        finally:
            self._read_back.pop(publish_id, None)

    async def _store(
        self, exchange: AbstractExchange, fields: dict[str, Any], publish_id: str
    ) -> None:
        # The entry carries the current span (the /notify request's): every replica's push
        # span is its child, and no span wraps this one publish (docs/decisions.md D15).
        headers: dict[str, Any] = dict(inject_context({}))
        headers[CREATED_US] = time.time_ns() // 1000
        headers[PUBLISHED_BY] = publish_id
        message = aio_pika.Message(
            orjson.dumps(fields),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=headers,
        )
        try:
            async with track_dependency("rabbitmq", "publish"):
                await self._send(exchange, message)
        except (
            aiormq.exceptions.AMQPError,
            aiormq.exceptions.ChannelInvalidStateError,
            ConnectionError,
            TimeoutError,
        ) as exc:
            raise DependencyUnavailable(
                "rabbitmq", detail="notification stream did not store it, try again"
            ) from exc

    async def _send(self, exchange: AbstractExchange, message: aio_pika.Message) -> None:
        """Append one entry to the stream; returns once the broker has confirmed it."""
        await exchange.publish(
            message, routing_key=self.settings.stream, timeout=self.settings.publish_timeout_seconds
        )


async def _ack(message: AbstractIncomingMessage, *, multiple: bool) -> None:
    # A failed ack means the channel is gone; the reconnect re-reads from the last offset.
    try:
        await message.ack(multiple=multiple)
    except Exception as exc:
        logger.debug("ack on a closed channel: %r", exc)


async def _close_quietly(connection: AbstractConnection) -> None:
    try:
        await connection.close()
    except Exception as exc:
        logger.debug("closing the stream connection failed: %r", exc)
