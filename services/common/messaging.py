"""RabbitMQ topology and helpers shared by the approval publisher and its consumer.

Hand-offs travel in fixed partition queues, one partition per ``approverId % PARTITIONS``,
so that each approver's items reach exactly one approval-processing replica, in order
(docs/decisions.md D22). ``approval.work`` remains only to drain what older publishers
left in it.

aio-pika 10 is outside what the contrib OpenTelemetry instrumentation supports, so trace
context is carried by hand in the message headers (W3C ``traceparent``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
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
# Fixed for the life of a deployment: the partition of an approver must never change while
# hand-offs wait in the queues. At least the largest replica count of approval-processing.
PARTITIONS = 12
# Retries of partitioned hand-offs: the queue dead-letters to EXCHANGE with no fixed routing
# key, so a parked message comes back with its own key, to its own partition.
PARTITION_RETRY_EXCHANGE = "approval.partition-retry"
PARTITION_RETRY_QUEUE = "approval.work.partition-retry"


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


def partition_of(approver_id: int) -> int:
    return approver_id % PARTITIONS


def partition_queue(partition: int) -> str:
    return f"{WORK_QUEUE}.p{partition:02d}"


def partition_routing_key(partition: int) -> str:
    return f"{WORK_ROUTING_KEY}.p{partition:02d}"


def handoff_partition(body: Mapping[str, Any]) -> int:
    """The partition of a hand-off: that of the approver of its lowest pending step, the one
    its consumer holds (a hand-off with none pending is stale anywhere; any partition does)."""
    pending = [s for s in body.get("steps") or () if s.get("status") == "pending"]
    if not pending:
        return partition_of(int(body.get("requestId") or 0))
    return partition_of(int(min(pending, key=lambda s: s["step"])["approverId"]))


def is_withdrawal(body: Mapping[str, Any]) -> bool:
    """A withdrawal takes a waiting step out of its approver's inbox; any other message on
    the work route is a hand-off."""
    return body.get("withdrawn") is True


def is_reassignment(body: Mapping[str, Any]) -> bool:
    """A reassignment takes a waiting step out of its former approver's inbox (the hand-off
    to the new approver is an ordinary one)."""
    return "reassignedTo" in body


def message_partition(body: Mapping[str, Any]) -> int:
    """The partition of a work-route message: a withdrawal or a reassignment goes where the
    hand-off of its step went (its approver's), so per-approver order keeps it behind that
    hand-off."""
    if is_withdrawal(body) or is_reassignment(body):
        return partition_of(int(body["approverId"]))
    return handoff_partition(body)


async def declare_partitions(
    channel: AbstractChannel, partitions: Iterable[int] = range(PARTITIONS)
) -> dict[int, AbstractQueue]:
    """Idempotent, after ``declare_topology``: the partition queues (single active consumer,
    dead-lettered as ``approval.work`` is) and the retry queue that sends each back home."""
    exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True)
    queues = {}
    for partition in partitions:
        queue = await channel.declare_queue(
            partition_queue(partition),
            durable=True,
            arguments={
                "x-single-active-consumer": True,
                "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
                "x-dead-letter-routing-key": WORK_ROUTING_KEY,
            },
        )
        await queue.bind(exchange, partition_routing_key(partition))
        queues[partition] = queue
    retry_exchange = await channel.declare_exchange(
        PARTITION_RETRY_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
    )
    retry = await channel.declare_queue(
        PARTITION_RETRY_QUEUE,
        durable=True,
        arguments={"x-message-ttl": RETRY_DELAY_MS, "x-dead-letter-exchange": EXCHANGE},
    )
    await retry.bind(retry_exchange)
    return queues


def json_message(body: Any, *, headers: dict[str, Any] | None = None) -> aio_pika.Message:
    """A persistent JSON message, as the spec's section 3 requires."""
    return aio_pika.Message(
        orjson.dumps(body),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        headers=headers or {},
    )
