"""approval-processing-service: consumes hand-offs into per-approver inboxes and submits
approvers' decisions back to approval-request-service."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aio_pika.abc import AbstractQueue, AbstractRobustConnection, ConsumerTag
from fastapi import FastAPI
from tenacity import AsyncRetrying, before_sleep_log, wait_exponential

from services.approval_processing.clients import notify_assigned, waiting_steps
from services.approval_processing.consumer import WorkConsumer, watch_lag
from services.approval_processing.inbox import Inbox, WorkItem
from services.approval_processing.metrics import CONSUMER_CONNECTED, INBOX_REBUILD_SECONDS
from services.approval_processing.replicas import Ownership
from services.approval_processing.router import router
from services.approval_processing.settings import ApprovalProcessingSettings
from services.common import build_app, create_http_session
from services.common.messaging import (
    PARTITION_RETRY_EXCHANGE,
    connect,
    declare_partitions,
    declare_topology,
    partition_queue,
)

logger = logging.getLogger(__name__)


def _work_item(row: dict[str, Any]) -> WorkItem:
    """Only the fields an item has: the request service may add more without breaking us."""
    return WorkItem(**{name: row[name] for name in WORK_ITEM_FIELDS})


WORK_ITEM_FIELDS = ("requestId", "step", "requesterId", "approverId", "title", "content")


class Runtime:
    """The background work of one process: inbox rebuild and the AMQP consumer."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.settings: ApprovalProcessingSettings = app.state.settings
        self.inbox: Inbox = app.state.inbox
        self.ownership: Ownership = app.state.ownership
        self.connection: AbstractRobustConnection | None = None
        self.consuming = False
        self.consumer: WorkConsumer | None = None
        self.consumers: list[tuple[AbstractQueue, ConsumerTag]] = []

    async def rebuild(self) -> None:
        """Hold again every step awaiting a decision of an approver this replica owns, read
        from the source of truth. Every replica reads the whole list and keeps its share: the
        request service would read every waiting request for a filtered page too (the
        awaited approver is not an indexed field), so filtering there saves only transfer."""
        started = time.perf_counter()
        after, count = 0, 0
        async for attempt in AsyncRetrying(
            wait=wait_exponential(multiplier=0.2, max=5),
            before_sleep=before_sleep_log(logger, logging.WARNING),
        ):
            with attempt:
                while True:
                    page = await waiting_steps(
                        self.app.state.http,
                        self.settings.approval_request_service_url,
                        after_request_id=after,
                        limit=self.settings.rebuild_page_size,
                    )
                    for row in page:
                        if not self.ownership.owns(row["approverId"]):
                            continue
                        if self.inbox.add(_work_item(row)) is not None:
                            count += 1
                    if len(page) < self.settings.rebuild_page_size:
                        break
                    after = page[-1]["requestId"]
        elapsed = time.perf_counter() - started
        INBOX_REBUILD_SECONDS.set(elapsed)
        self.inbox.rebuilt = True
        logger.info("inbox rebuilt: %d items in %.2fs", count, elapsed)

    async def consume(self) -> None:
        self.connection = await connect(self.settings.amqp_url)
        channel = await self.connection.channel()
        await channel.set_qos(prefetch_count=self.settings.prefetch)
        exchange, legacy = await declare_topology(channel)
        partitions = await declare_partitions(channel)
        retry_exchange = await channel.get_exchange(PARTITION_RETRY_EXCHANGE, ensure=False)

        async def notify(notification: dict[str, Any]) -> bool:
            return await notify_assigned(
                self.app.state.http, self.settings.notification_service_url, notification
            )

        consumer = self.consumer = WorkConsumer(self.inbox, notify)
        consumer.exchange, consumer.retry_exchange = exchange, retry_exchange
        owned = self.ownership.partitions
        for partition in owned:
            queue = partitions[partition]
            self.consumers.append((queue, await queue.consume(consumer.handle)))
        if self.ownership.index == 0:
            self.consumers.append((legacy, await legacy.consume(consumer.move_to_partition)))
        self.consuming = True
        CONSUMER_CONNECTED.set(1)
        self.connection.close_callbacks.add(lambda *_: CONSUMER_CONNECTED.set(0))
        self.connection.reconnect_callbacks.add(lambda *_: CONSUMER_CONNECTED.set(1))
        logger.info(
            "replica %d of %d consuming %s",
            self.ownership.index,
            self.ownership.replicas,
            ", ".join(partition_queue(p) for p in owned),
        )
        await watch_lag(channel, owned)

    async def stop_consuming(self) -> None:
        """The graceful half of a stop: no new deliveries, and the ones being handled are
        settled (acked) before the connection closes, so none of them is redelivered."""
        self.consuming = False
        for queue, tag in self.consumers:
            try:
                await queue.cancel(tag, timeout=self.settings.shutdown_drain_seconds)
            except Exception as exc:  # the broker is unreachable: it requeues them anyway
                logger.warning("consumer %s not cancelled: %r", tag, exc)
        if self.consumer is not None:
            left = await self.consumer.drain(self.settings.shutdown_drain_seconds)
            if left:
                logger.warning("stopping with %d deliveries unsettled: they are redelivered", left)

    async def check_broker(self) -> None:
        if not self.consuming or self.connection is None or self.connection.is_closed:
            raise ConnectionError("not consuming from RabbitMQ")

    async def check_inbox(self) -> None:
        if not self.inbox.rebuilt:
            raise RuntimeError("inbox rebuild from approval-request-service not finished")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: ApprovalProcessingSettings = app.state.settings
    app.state.http = create_http_session(
        timeout_seconds=settings.http_timeout_seconds,
        authorization=app.state.service_credentials.header,
    )
    # Forwarded calls carry the caller's own credentials, never this service's.
    app.state.peer_http = create_http_session(timeout_seconds=settings.http_timeout_seconds)
    app.state.inbox = Inbox(remembered_decisions=settings.remembered_decisions)
    app.state.ownership = Ownership(
        index=settings.replica_index, replicas=settings.replicas, peers=tuple(settings.peers())
    )
    app.state.ownership.publish_metrics()
    runtime = Runtime(app)
    app.state.readiness_checks = {"rabbitmq": runtime.check_broker, "inbox": runtime.check_inbox}
    tasks = [asyncio.create_task(runtime.rebuild()), asyncio.create_task(runtime.consume())]
    try:
        yield
    finally:
        await runtime.stop_consuming()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runtime.connection is not None:
            await runtime.connection.close()
        await app.state.http.close()
        await app.state.peer_http.close()


def create_app(settings: ApprovalProcessingSettings | None = None) -> FastAPI:
    return build_app(
        name="approval-processing-service",
        title="approval-processing-service",
        description="Per-approver inboxes fed from RabbitMQ; approve or reject.",
        settings=settings or ApprovalProcessingSettings(),
        lifespan=lifespan,
        calls_other_services=True,
        routers=[router],
    )
