"""The hand-off consumer's telling of approvers, on stand-in deliveries (pure logic): a
hand-off redelivered while its first delivery is still telling the approver (its channel was
lost before the ack) waits for that telling instead of telling the approver again."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from aio_pika.abc import AbstractIncomingMessage

from services.approval_processing.consumer import WorkConsumer
from services.approval_processing.inbox import Inbox

HANDOFF = {
    "requestId": 41,
    "requesterId": 6,
    "title": "휴가",
    "content": "하루",
    "steps": [{"step": 1, "approverId": 7, "status": "pending"}],
}


@dataclass
class Delivery:
    body: bytes = orjson.dumps(HANDOFF)
    headers: dict[str, Any] = field(default_factory=dict)
    routing_key: str = "approval.requested.p07"
    acked: bool = False

    async def ack(self, multiple: bool = False) -> None:
        self.acked = True


@dataclass
class SlowNotify:
    calls: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, notification: dict[str, Any]) -> bool:
        self.calls.append(notification)
        await self.release.wait()
        return True


def as_message(delivery: Delivery) -> AbstractIncomingMessage:
    return cast(AbstractIncomingMessage, delivery)


async def test_a_redelivered_hand_off_waits_for_the_telling_under_way() -> None:
    notify = SlowNotify()
    consumer = WorkConsumer(Inbox(remembered_decisions=10), notify)
    first, again = Delivery(), Delivery()

    handling = asyncio.create_task(consumer.handle(as_message(first)))
    while not notify.calls:
        await asyncio.sleep(0)
    handling.cancel()  # its channel is lost: the delivery comes again
    redelivered = asyncio.create_task(consumer.handle(as_message(again)))
    notify.release.set()
    await redelivered

    assert len(notify.calls) == 1
    assert (first.acked, again.acked) == (False, True)
    assert await consumer.drain(1) == 0


async def test_drain_waits_for_the_delivery_being_handled() -> None:
    notify = SlowNotify()
    consumer = WorkConsumer(Inbox(remembered_decisions=10), notify)
    delivery = Delivery()
    handling = asyncio.create_task(consumer.handle(as_message(delivery)))
    while not notify.calls:
        await asyncio.sleep(0)

    draining = asyncio.create_task(consumer.drain(30))
    await asyncio.sleep(0)
    assert not draining.done()
    notify.release.set()

    assert await draining == 0
    assert delivery.acked
    assert handling.done()


WITHDRAWAL = {"requestId": 41, "step": 1, "approverId": 7, "withdrawn": True}


async def test_a_withdrawal_takes_the_held_item_out_and_a_parked_hand_off_stays_out() -> None:
    notify = SlowNotify()
    notify.release.set()
    inbox = Inbox(remembered_decisions=10)
    consumer = WorkConsumer(inbox, notify)
    await consumer.handle(as_message(Delivery()))
    assert [i.requestId for i in inbox.pending(7)] == [41]

    withdrawal = Delivery(body=orjson.dumps(WITHDRAWAL))
    await consumer.handle(as_message(withdrawal))
    # The hand-off again (parked for a retry before the withdrawal): stale now.
    await consumer.handle(as_message(Delivery()))

    assert withdrawal.acked
    assert inbox.pending(7) == []
    assert inbox.was_withdrawn(7, 41)
    assert len(notify.calls) == 1


async def test_a_withdrawal_of_an_item_not_held_is_acknowledged_and_forgotten() -> None:
    notify = SlowNotify()
    inbox = Inbox(remembered_decisions=10)
    consumer = WorkConsumer(inbox, notify)
    first, again = (Delivery(body=orjson.dumps(WITHDRAWAL)) for _ in range(2))

    await consumer.handle(as_message(first))
    await consumer.handle(as_message(again))

    assert (first.acked, again.acked) == (True, True)
    assert len(inbox) == 0
    assert notify.calls == []
