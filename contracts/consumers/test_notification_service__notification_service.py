"""notification-service -> notification-service: the entry one replica appends to the
notification stream for a ``POST /notify`` and every replica reads back (docs/decisions.md
D20), as an asynchronous message pact. Each entry goes through the reader's own
``NotificationStream._deliver``, which hands the hub what it pushes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from pact import Pact, match

from contracts.support import DECISION, FINAL_STATUS
from services.notification.settings import NotificationSettings
from services.notification.stream import CREATED_US, NotificationStream, notification_id

Handler = Callable[[str | bytes | None, dict[str, object]], None]

CONSUMER = "notification-service"
PROVIDER = "notification-service"
CREATED = 1764320400000000  # microseconds: 2025-11-28T09:00:00Z
OFFSET = 41


class RecordingHub:
    """Keeps what the reader hands the hub instead of pushing it to sockets."""

    def __init__(self) -> None:
        self.published: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def publish(self, fields: dict[str, Any], **details: Any) -> None:
        self.published.append((fields, details))


def _entry(pact: Pact, kind: str, fields: dict[str, Any]) -> None:
    (
        pact.upon_receiving(f"a notification-stream entry for {kind}", "Async")
        .with_body(
            {
                "employeeId": match.int(3),
                "type": kind,
                "requestId": match.int(12),
                "title": match.str("결재 요청"),
                **fields,
            },
            "application/json",
        )
        .with_metadata({CREATED_US: match.int(CREATED)})
    )


def _read(kind: str) -> Handler:
    """The reader hands the hub the entry's fields, its id from the offset and the
    publisher's clock from the header, as every replica does."""

    def handle(body: str | bytes | None, metadata: dict[str, object]) -> None:
        assert body is not None
        assert metadata["contentType"] == "application/json"
        hub = RecordingHub()
        reader = NotificationStream(NotificationSettings(), hub)  # type: ignore[arg-type]
        raw = body.encode() if isinstance(body, str) else body
        reader._deliver(OFFSET, metadata, raw)
        [(fields, details)] = hub.published
        assert fields == orjson.loads(raw)
        assert fields["type"] == kind
        assert details["notification_id"] == notification_id(OFFSET)
        created = metadata[CREATED_US]
        assert isinstance(created, int)
        assert details["created_at"] == datetime.fromtimestamp(created / 1e6, UTC)

    return handle


def test_a_stored_assignment_reaches_every_replica(pact: Pact) -> None:
    _entry(pact, "approval_assigned", {"step": match.int(2), "approverId": match.int(3)})
    pact.verify(_read("approval_assigned"), "Async")


def test_a_stored_decision_reaches_every_replica(pact: Pact) -> None:
    _entry(
        pact,
        "approval_result",
        {
            "step": match.int(2),
            "approverId": match.int(3),
            "stepStatus": match.regex("approved", regex=DECISION),
            "finalStatus": match.regex("approved", regex=FINAL_STATUS),
        },
    )
    pact.verify(_read("approval_result"), "Async")


def test_a_stored_leave_confirmation_reaches_every_replica(pact: Pact) -> None:
    _entry(pact, "leave_confirmed", {"finalStatus": match.regex("approved", regex=FINAL_STATUS)})
    pact.verify(_read("leave_confirmed"), "Async")


def test_a_stored_withdrawal_reaches_every_replica(pact: Pact) -> None:
    _entry(
        pact,
        "approval_withdrawn",
        {
            "step": match.int(2),
            "approverId": match.int(3),
            "finalStatus": match.regex("withdrawn", regex=FINAL_STATUS),
            "reason": match.str("계획이 바뀌었습니다"),
        },
    )
    pact.verify(_read("approval_withdrawn"), "Async")


def test_a_stored_leave_cancellation_reaches_every_replica(pact: Pact) -> None:
    _entry(
        pact,
        "leave_cancelled",
        {
            "finalStatus": match.regex("cancelled", regex=FINAL_STATUS),
            "reason": match.str("일정 변경"),
        },
    )
    pact.verify(_read("leave_cancelled"), "Async")
