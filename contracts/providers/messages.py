"""The message providers' side of message pacts: each producer returns what production would
send for an interaction, built by the same functions production uses."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from pymongo.collection import Collection

from services.approval_request import workflow
from services.approval_request.publisher import WorkPublisher
from services.common.messaging import EXCHANGE
from services.notification.hub import build_message
from services.notification.router import NotifyRequest
from services.notification.settings import NotificationSettings
from services.notification.stream import NotificationStream

Builder = Callable[[dict[str, Any]], dict[str, Any]]
PushBuilder = Callable[..., dict[str, Any]]
STATE_REQUEST = re.compile(r"approval request (\d+) ")


class RecordingExchange:
    """Stands in for the broker: keeps what ``WorkPublisher.publish`` hands it."""

    name = EXCHANGE

    def __init__(self) -> None:
        self.published: list[tuple[Any, str]] = []

    async def publish(self, message: Any, routing_key: str, **options: Any) -> None:
        self.published.append((message, routing_key))


def published(body: dict[str, Any]) -> tuple[Any, str, str]:
    """The message, routing key and exchange production publishing produces for ``body``."""
    publisher = WorkPublisher("amqp://unused")
    exchange = RecordingExchange()
    publisher.exchange = exchange  # type: ignore[assignment]
    asyncio.run(publisher.publish(body))
    [(message, routing_key)] = exchange.published
    return message, routing_key, exchange.name


def withdrawal_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The withdrawal of the step ``doc`` awaits, as ``workflow.withdraw`` stores it."""
    outcome = workflow.withdraw(doc, reason=None)
    assert isinstance(outcome, workflow.Withdrawn), outcome
    return next(e.payload for e in outcome.effects if e.kind == "withdrawal")


# Whom the pacts' reassignments give the waiting step to (neither requester nor approver).
NEW_APPROVER = 9


def _reassigned(doc: dict[str, Any], kind: str) -> dict[str, Any]:
    """The ``kind`` effect that reassigning the step ``doc`` awaits to ``NEW_APPROVER``
    stores, as ``workflow.reassign_step`` builds it."""
    index = workflow.awaiting_index(doc)
    assert index is not None, doc
    step = doc["steps"][index]["step"]
    outcome = workflow.reassign_step(doc, step=step, approver_id=NEW_APPROVER)
    assert isinstance(outcome, workflow.Reassigned), outcome
    return next(e.payload for e in outcome.effects if e.kind == kind)


def reassignment_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The removal from the former approver's inbox."""
    return _reassigned(doc, "reassignment")


def reassigned_handoff_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The hand-off to the new approver."""
    return _reassigned(doc, "handoff")


def handoff_producer(
    approvals: Collection[dict[str, Any]],
    build: Builder = workflow.handoff_message,
    withdrawal: Builder = withdrawal_of,
    reassignment: Builder = reassignment_of,
    reassigned_handoff: Builder = reassigned_handoff_of,
) -> Callable[[str, dict[str, Any] | None], dict[str, Any]]:
    """Builds the hand-off (or, for an interaction described as a withdrawal or a
    reassignment, that message) of the document the interaction's provider state created."""

    def produce(name: str, metadata: dict[str, Any] | None) -> dict[str, Any]:
        states = (metadata or {}).get("providerStates") or []
        found = next((m for s in states if (m := STATE_REQUEST.match(s.get("name", "")))), None)
        if found is None:
            raise LookupError(f"{name!r} names no approval request in its provider state")
        doc = approvals.find_one({"requestId": int(found.group(1))})
        if doc is None:
            raise LookupError(f"the provider state created no approval request {found.group(1)}")
        if "withdrawal" in name:
            body = withdrawal(doc)
        elif "reassignment" in name:
            body = reassignment(doc)
        elif "reassigned" in name:
            body = reassigned_handoff(doc)
        else:
            body = build(doc)
        message, routing_key, exchange = published(body)
        return {
            "contents": message.body,
            "content_type": message.content_type,
            "metadata": {"exchange": exchange, "routingKey": routing_key},
        }

    return produce


# A /notify body of each type, as the senders' builders write them.
NOTIFY_BODIES: dict[str, dict[str, Any]] = {
    "approval_assigned": {
        "employeeId": 3,
        "type": "approval_assigned",
        "requestId": 12,
        "step": 2,
        "approverId": 3,
        "title": "결재 요청",
    },
    "approval_result": {
        "employeeId": 1,
        "type": "approval_result",
        "requestId": 12,
        "step": 2,
        "approverId": 3,
        "stepStatus": "approved",
        "finalStatus": "approved",
        "title": "결재 요청",
    },
    "leave_confirmed": {
        "employeeId": 1,
        "type": "leave_confirmed",
        "requestId": 12,
        "finalStatus": "approved",
        "title": "연차 신청",
    },
    "approval_withdrawn": {
        "employeeId": 1,
        "type": "approval_withdrawn",
        "requestId": 12,
        "step": 2,
        "approverId": 3,
        "finalStatus": "withdrawn",
        "title": "연차 신청",
        "reason": "계획이 바뀌었습니다",
    },
    "leave_cancelled": {
        "employeeId": 1,
        "type": "leave_cancelled",
        "requestId": 12,
        "finalStatus": "cancelled",
        "title": "연차 신청",
        "reason": "일정 변경",
    },
}


def _notify_fields(name: str) -> dict[str, Any]:
    """The /notify body of the type the description names, parsed as the endpoint does."""
    kind = next((kind for kind in NOTIFY_BODIES if kind in name), None)
    if kind is None:
        raise LookupError(f"no /notify body for a message described as {name!r}")
    return NotifyRequest.model_validate(NOTIFY_BODIES[kind]).model_dump(
        by_alias=True, exclude_none=True
    )


def push_producer(build: PushBuilder = build_message) -> Callable[[str], dict[str, Any]]:
    """The text the hub pushes for a /notify body of the type the description names: the
    body parsed as the endpoint parses it, then the hub's builder, serialised as it does."""

    def produce(name: str) -> dict[str, Any]:
        fields: Mapping[str, Any] = _notify_fields(name)
        message = build(fields, notification_id=1764320400000001, created_at=datetime.now(UTC))
        return {"contents": orjson.dumps(message), "content_type": "application/json"}

    return produce


def stream_entry(name: str) -> dict[str, Any]:
    """The notification-stream entry a replica stores for a /notify body of the type the
    description names: appended through ``NotificationStream``'s own store, to a recording
    exchange, so body, content type and headers are what goes to RabbitMQ."""
    exchange = RecordingExchange()
    stream = NotificationStream(NotificationSettings(), hub=None)  # type: ignore[arg-type]
    asyncio.run(stream._store(exchange, _notify_fields(name), "contract-1"))  # type: ignore[arg-type]
    [(message, _)] = exchange.published
    return {
        "contents": message.body,
        "content_type": message.content_type,
        "metadata": dict(message.headers),
    }


def notification_producer() -> Callable[[str], dict[str, Any]]:
    """notification-service's messages: stream entries and WebSocket pushes."""
    push = push_producer()

    def produce(name: str) -> dict[str, Any]:
        return stream_entry(name) if "notification-stream entry" in name else push(name)

    return produce
