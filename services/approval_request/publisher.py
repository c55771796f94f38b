"""Publishes approval hand-offs (and withdrawals, on the same route) to RabbitMQ with
publisher confirms and trace context, each to the partition of the approver it waits for
(docs/decisions.md D22)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aio_pika.abc import AbstractExchange, AbstractRobustConnection
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.util.types import AttributeValue

from services.approval_request.metrics import AMQP_PUBLISHED
from services.common import DependencyUnavailable, inject_context, track_dependency
from services.common.messaging import (
    EXCHANGE,
    WORK_ROUTING_KEY,
    connect,
    declare_partitions,
    declare_topology,
    json_message,
    message_partition,
    partition_routing_key,
)
from services.common.telemetry import call_attributes, ending

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class WorkPublisher:
    def __init__(self, url: str) -> None:
        self.url = url
        self.connection: AbstractRobustConnection | None = None
        self.exchange: AbstractExchange | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Runs in the background: the service serves (and stores work) while it connects."""
        self.connection = await connect(self.url)
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        self.exchange, _ = await declare_topology(channel)
        # Every partition exists before the first publish: a mandatory publish to a key no
        # queue is bound to yet would be returned (and raise) until its consumer declared it.
        await declare_partitions(channel)
        self._ready.set()
        logger.info("publisher connected to RabbitMQ")

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def check(self) -> None:
        if self.connection is None or self.connection.is_closed or not self._ready.is_set():
            raise ConnectionError("not connected to RabbitMQ")

    async def publish(self, body: dict[str, Any]) -> None:
        if self.exchange is None:
            raise DependencyUnavailable("rabbitmq")
        routing_key = partition_routing_key(message_partition(body))
        attributes: dict[str, AttributeValue] = {
            "messaging.system": "rabbitmq",
            "messaging.destination.name": EXCHANGE,
            "messaging.rabbitmq.destination.routing_key": routing_key,
            "erp.request_id": body["requestId"],
        }
        extra = call_attributes()
        if extra:
            attributes.update(extra)
        # Started, not made current: nothing under a publish records a span, and the
        # message headers get the span's context explicitly.
        span = tracer.start_span(
            f"{EXCHANGE} publish", kind=SpanKind.PRODUCER, attributes=attributes
        )
        with ending(span):
            headers = dict(inject_context({}, trace.set_span_in_context(span)))
            message = json_message(body, headers=headers)
            async with track_dependency("rabbitmq", "publish"):
                await self.exchange.publish(
                    message, routing_key=routing_key, mandatory=True, timeout=5
                )
        AMQP_PUBLISHED.labels(WORK_ROUTING_KEY).inc()
