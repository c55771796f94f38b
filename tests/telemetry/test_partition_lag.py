"""erp_processing_partition_messages_ready: what the replica owning a partition counts waiting
in it, asked of a real RabbitMQ (in a vhost of its own, so no replica consumes them)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator

import aio_pika
import pytest
from prometheus_client import REGISTRY

from services.approval_processing.consumer import watch_lag
from services.common.messaging import (
    connect,
    declare_partitions,
    declare_topology,
    partition_routing_key,
)
from tests.support.stack import amqp_url

VHOST = f"erp_lag_{os.getpid()}"
DEADLINE_SECONDS = 10


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture
def broker_url(infra: None) -> Iterator[str]:
    _rabbitmqctl("add_vhost", VHOST)
    _rabbitmqctl("set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    try:
        yield amqp_url(VHOST)
    finally:
        _rabbitmqctl("delete_vhost", VHOST)


def ready(partition: str) -> float | None:
    return REGISTRY.get_sample_value(
        "erp_processing_partition_messages_ready", {"partition": partition}
    )


async def counted(expected: dict[str, float]) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while (seen := {p: ready(p) for p in expected}) != expected:
        assert time.monotonic() < deadline, f"gauge stayed at {seen}, expected {expected}"
        await asyncio.sleep(0.05)


async def test_the_owner_counts_the_hand_offs_waiting_in_each_of_its_partitions(
    broker_url: str,
) -> None:
    connection = await connect(broker_url)
    try:
        channel = await connection.channel()
        exchange, _ = await declare_topology(channel)
        queues = await declare_partitions(channel)
        for partition, waiting in ((5, 3), (7, 1)):
            for _ in range(waiting):
                await exchange.publish(
                    aio_pika.Message(b"{}"), routing_key=partition_routing_key(partition)
                )
        watching = asyncio.create_task(watch_lag(channel, [5, 7, 9], interval=0.05))
        try:
            await counted({"05": 3, "07": 1, "09": 0})
            # Counted anew from the broker each time, not from the channel's cache.
            await queues[5].purge()
            await counted({"05": 0, "07": 1, "09": 0})
        finally:
            watching.cancel()
            await asyncio.gather(watching, return_exceptions=True)
    finally:
        await connection.close()
