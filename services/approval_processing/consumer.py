"""Consumes this replica's ``approval.work`` partitions: each message becomes a held inbox
item (acked only after), then its approver is told. Unparseable messages are dead-lettered,
never dropped. What older publishers left in ``approval.work`` itself is moved to the
partitions."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any, Literal

import orjson
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from aio_pika.exceptions import AMQPError, ChannelInvalidStateError
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ValidationError

from services.approval_processing.inbox import Inbox, WorkItem
from services.approval_processing.metrics import (
    DEAD_LETTERED,
    MESSAGES_CONSUMED,
    PARTITION_READY,
)
from services.common import extract_context
from services.common.limits import Id
from services.common.messaging import (
    WORK_QUEUE,
    is_reassignment,
    is_withdrawal,
    json_message,
    partition_of,
    partition_queue,
    partition_routing_key,
)

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

Notify = Callable[[dict[str, Any]], Awaitable[bool]]

LAG_INTERVAL_SECONDS = 5.0


class _Step(BaseModel):
    step: Id
    approverId: Id
    status: str


class WorkMessage(BaseModel):
    requestId: Id
    requesterId: Id
    title: str
    content: str
    steps: list[_Step]


class WithdrawalMessage(BaseModel):
    """The request was withdrawn while ``step`` waited for ``approverId``."""

    requestId: Id
    step: Id
    approverId: Id
    withdrawn: Literal[True]


class ReassignmentMessage(BaseModel):
    """``step`` was taken from ``approverId`` and given to ``reassignedTo`` (whose hand-off
    is a message of its own, on that approver's partition)."""

    requestId: Id
    step: Id
    approverId: Id
    reassignedTo: Id


Removal = WithdrawalMessage | ReassignmentMessage


def parse_message(body: bytes) -> WorkItem | Removal | None:
    """A work-route message: a withdrawal or a reassignment, or the work item a hand-off
    asks for (None if none). Raises ``ValueError`` for a message that is none of these."""
    try:
        data = orjson.loads(body)
        if isinstance(data, dict) and is_withdrawal(data):
            return WithdrawalMessage.model_validate(data)
        if isinstance(data, dict) and is_reassignment(data):
            return ReassignmentMessage.model_validate(data)
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise ValueError(str(exc)) from exc
    return parse_work_item(body)


def parse_work_item(body: bytes) -> WorkItem | None:
    """The work item a message asks for: its lowest-numbered pending step (None if none).
    Raises ``ValueError`` for a message that is not a valid ``approval.work`` body."""
    try:
        message = WorkMessage.model_validate(orjson.loads(body))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise ValueError(str(exc)) from exc
    pending = [s for s in message.steps if s.status == "pending"]
    if not pending:
        return None
    first = min(pending, key=lambda s: s.step)
    return WorkItem(
        requestId=message.requestId,
        step=first.step,
        requesterId=message.requesterId,
        approverId=first.approverId,
        title=message.title,
        content=message.content,
    )


def assigned_notification(item: WorkItem) -> dict[str, Any]:
    return {
        "employeeId": item.approverId,
        "type": "approval_assigned",
        "requestId": item.requestId,
        "step": item.step,
        "approverId": item.approverId,
        "title": item.title,
    }


class WorkConsumer:
    def __init__(self, inbox: Inbox, notify: Notify) -> None:
        self.inbox = inbox
        self.notify = notify
        # Where hand-offs are published, and where a parked one waits before coming back.
        self.exchange: AbstractExchange | None = None
        self.retry_exchange: AbstractExchange | None = None
        # Deliveries being handled (aiormq runs each as a task of its channel).
        self._handling: set[asyncio.Task[Any]] = set()

    async def drain(self, seconds: float) -> int:
        """Waits, at most ``seconds``, for the deliveries being handled to be settled (once
        their consumers are cancelled nothing new starts); returns how many were left. A
        graceful stop then redelivers nothing this process handled."""
        if self._handling:
            await asyncio.wait(set(self._handling), timeout=seconds)
        return len(self._handling)

    @contextlib.contextmanager
    def _settling(self) -> Iterator[None]:
        """While the current delivery is handled, ``drain`` waits for it."""
        task = asyncio.current_task()
        assert task is not None
        self._handling.add(task)
        try:
            yield
        finally:
            self._handling.discard(task)

    async def handle(self, message: AbstractIncomingMessage) -> None:
        with self._settling():
            await self._handle(message)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        parent = extract_context(message.headers or {})
        with tracer.start_as_current_span(
            f"{WORK_QUEUE} process",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "rabbitmq",
                "messaging.destination.name": WORK_QUEUE,
                "messaging.rabbitmq.destination.routing_key": message.routing_key or "",
            },
        ) as span:
            item = await self._parsed(message)
            if item is None:
                return
            if isinstance(item, WithdrawalMessage | ReassignmentMessage):
                withdrawn = isinstance(item, WithdrawalMessage)
                span.set_attributes(
                    {
                        "erp.request_id": item.requestId,
                        "erp.step": item.step,
                        "erp.employee_id": item.approverId,
                        "erp.transition": "withdrawn" if withdrawn else "reassigned",
                    }
                )
                if isinstance(item, WithdrawalMessage):
                    self._withdraw(item)
                else:
                    self._reassign(item)
                await message.ack()
                return
            span.set_attributes(
                {
                    "erp.request_id": item.requestId,
                    "erp.step": item.step,
                    "erp.employee_id": item.approverId,
                }
            )
            held = self.inbox.add(item)
            if held is None:
                MESSAGES_CONSUMED.labels("stale").inc()
            else:
                await self._tell_approver(held, message)
            await message.ack()

    def _withdraw(self, withdrawal: WithdrawalMessage) -> None:
        """Idempotent: a withdrawal of an item not held here (never arrived, decided, or a
        redelivery) is acknowledged, and its step refused should it still come."""
        if self.inbox.withdraw(withdrawal.requestId, withdrawal.step, withdrawal.approverId):
            logger.info(
                "request %d withdrawn: step %d left approver %d's inbox",
                withdrawal.requestId,
                withdrawal.step,
                withdrawal.approverId,
            )
            MESSAGES_CONSUMED.labels("withdrawn").inc()
        else:
            MESSAGES_CONSUMED.labels("withdrawn_unheld").inc()

    def _reassign(self, reassignment: ReassignmentMessage) -> None:
        """Idempotent, as ``_withdraw``: the former approver's item goes (if held here) and
        is refused to them from then on."""
        if self.inbox.reassign(reassignment.requestId, reassignment.step, reassignment.approverId):
            logger.info(
                "request %d step %d reassigned: left approver %d's inbox for approver %d's",
                reassignment.requestId,
                reassignment.step,
                reassignment.approverId,
                reassignment.reassignedTo,
            )
            MESSAGES_CONSUMED.labels("reassigned").inc()
        else:
            MESSAGES_CONSUMED.labels("reassigned_unheld").inc()

    async def _parsed(self, message: AbstractIncomingMessage) -> WorkItem | Removal | None:
        """The work item a hand-off carries, or the removal, or None once the message is
        settled: an unparseable one dead-lettered, a stale one (no step waiting) acked."""
        try:
            item = parse_message(message.body)
        except ValueError as exc:
            logger.error("unparseable approval.work message dead-lettered: %s", exc)
            DEAD_LETTERED.inc()
            await message.reject(requeue=False)
            return None
        if item is None:
            MESSAGES_CONSUMED.labels("stale").inc()
            await message.ack()
        return item

    async def _tell_approver(self, item: WorkItem, message: AbstractIncomingMessage) -> None:
        """Tells the approver once per process: a redelivered hand-off (its channel was lost
        before the ack) waits for the telling already under way instead of telling again.
        The call is shielded, so a handler cancelled with its channel leaves it to finish."""
        duplicate = not item.untold
        if not duplicate:
            item.told = asyncio.ensure_future(self.notify(assigned_notification(item)))
            # Retrieved here too: a cancelled handler no longer awaits it.
            item.told.add_done_callback(lambda told: told.cancelled() or told.exception())
        assert item.told is not None
        try:
            await asyncio.shield(item.told)
        except Exception as exc:
            # The item is held; park the message so the notification is tried again later.
            logger.warning(
                "approver %s not notified of request %s yet: %s",
                item.approverId,
                item.requestId,
                exc,
            )
            if self.retry_exchange is not None:
                retry = json_message(orjson.loads(message.body), headers=message.headers)
                key = partition_routing_key(partition_of(item.approverId))
                await self.retry_exchange.publish(retry, routing_key=key, timeout=5)
            MESSAGES_CONSUMED.labels("retried").inc()
            return
        if duplicate:
            MESSAGES_CONSUMED.labels("duplicate").inc()
            return
        logger.info(
            "request %d step %d is waiting for approver %d",
            item.requestId,
            item.step,
            item.approverId,
        )
        MESSAGES_CONSUMED.labels("held").inc()

    async def move_to_partition(self, message: AbstractIncomingMessage) -> None:
        """A hand-off from ``approval.work`` (an older publisher, or its retry queue) goes,
        unchanged, to the partition of its approver; acked once the broker has it."""
        with self._settling():
            await self._move_to_partition(message)

    async def _move_to_partition(self, message: AbstractIncomingMessage) -> None:
        item = await self._parsed(message)
        if item is None:
            return
        if self.exchange is None:
            await message.nack(requeue=True)
            return
        moved = json_message(orjson.loads(message.body), headers=message.headers)
        key = partition_routing_key(partition_of(item.approverId))
        await self.exchange.publish(moved, routing_key=key, timeout=5)
        MESSAGES_CONSUMED.labels("moved").inc()
        await message.ack()


async def watch_lag(
    channel: AbstractChannel,
    partitions: Iterable[int],
    interval: float = LAG_INTERVAL_SECONDS,
) -> None:
    """Counts, until cancelled, the hand-offs waiting in each partition this replica owns.
    A passive declare on the underlying channel: aio-pika's robust channel answers a passive
    declare of a queue it knows from its cache, without asking the broker."""
    while True:
        try:
            underlay = await channel.get_underlay_channel()
            for partition in partitions:
                declared = await underlay.queue_declare(partition_queue(partition), passive=True)
                PARTITION_READY.labels(f"{partition:02d}").set(declared.message_count or 0)
        except (AMQPError, ChannelInvalidStateError, ConnectionError, TimeoutError) as exc:
            # Reconnecting: the consumer's own gauge and alert say so.
            logger.debug("partition lag not counted: %r", exc)
        await asyncio.sleep(interval)
