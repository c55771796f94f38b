"""RabbitMQ topology and helpers shared by the approval publisher and its consumer.

aio-pika 10 is outside what the contrib OpenTelemetry instrumentation supports, so trace
context is carried by hand in the message headers (W3C ``traceparent``).
"""

from __future__ import annotations

import logging
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractQueue,
    AbstractRobustConnection,
)
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    stop_after_delay,
    stop_never,
    wait_exponential,
)

logger = logging.getLogger(__name__)

EXCHANGE = "approval"
WORK_QUEUE = "approval.work"
WORK_ROUTING_KEY = "approval.requested"
DEAD_LETTER_EXCHANGE = "approval.dead"
DEAD_LETTER_QUEUE = "approval.work.dead"
RETRY_QUEUE = "approval.work.retry"
RETRY_ROUTING_KEY = "approval.retry"
# A message parked for a retry comes back to the work queue after this long.
RETRY_DELAY_MS = 5000


async def connect(url: str, *, give_up_after: float | None = None) -> AbstractRobustConnection:
    """Connect with backoff (the broker may start after us); later drops reconnect robustly."""
    async for attempt in AsyncRetrying(
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(give_up_after) if give_up_after else stop_never,
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    ):
        with attempt:
            return await aio_pika.connect_robust(url, client_properties={"connection_name": "erp"})
    raise RuntimeError("unreachable")


async def declare_topology(channel: AbstractChannel) -> tuple[AbstractExchange, AbstractQueue]:
    """Idempotent: publisher and consumer both declare the same durable topology."""
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    dead = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
    )
    dead_queue = await channel.declare_queue(DEAD_LETTER_QUEUE, durable=True)
    await dead_queue.bind(dead, WORK_ROUTING_KEY)
    queue = await channel.declare_queue(
        WORK_QUEUE,
        durable=True,
        arguments={
            "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
            "x-dead-letter-routing-key": WORK_ROUTING_KEY,
        },
    )
    await queue.bind(exchange, WORK_ROUTING_KEY)
    retry = await channel.declare_queue(
        RETRY_QUEUE,
        durable=True,
        arguments={
            "x-message-ttl": RETRY_DELAY_MS,
            "x-dead-letter-exchange": EXCHANGE,
            "x-dead-letter-routing-key": WORK_ROUTING_KEY,
        },
    )
    await retry.bind(exchange, RETRY_ROUTING_KEY)
    return exchange, queue


def json_message(body: Any, *, headers: dict[str, Any] | None = None) -> aio_pika.Message:
    """A persistent JSON message, as the spec's section 3 requires."""
    return aio_pika.Message(
        orjson.dumps(body),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=headers or {},
    )
