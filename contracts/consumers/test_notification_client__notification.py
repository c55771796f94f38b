"""notification-client -> notification-service: the JSON message pushed over
``/ws/{employeeId}`` for each notification type, as an asynchronous message pact. The
consumer is the project's client module (``services.notification.client``, behind
``erp watch``), which real clients can use; each message goes through its parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pact import Pact, match

from contracts.support import DECISION, FINAL_STATUS, timestamp
from services.notification.client import Notification, parse_notification

Handler = Callable[[str | bytes | None, dict[str, object]], None]

CONSUMER = "notification-client"
PROVIDER = "notification-service"


def _pushed(pact: Pact, kind: str, fields: dict[str, Any]) -> None:
    (
        pact.upon_receiving(f"a pushed {kind} notification", "Async").with_body(
            {
                "id": match.int(1764320400000000),
                "employeeId": match.int(3),
                "type": kind,
                "createdAt": timestamp("2026-11-28T09:00:00.000+00:00"),
                "requestId": match.int(12),
                "title": match.str("결재 요청"),
                **fields,
            },
            "application/json",
        )
    )


def _receive(check: Callable[[Notification], None]) -> Handler:
    def handle(body: str | bytes | None, metadata: dict[str, object]) -> None:
        assert body is not None
        notification = parse_notification(body)
        assert notification.created_at.tzinfo is not None
        check(notification)

    return handle


def test_an_approver_is_told_of_a_step_assigned_to_them(pact: Pact) -> None:
    _pushed(pact, "approval_assigned", {"step": match.int(2), "approverId": match.int(3)})

    def check(n: Notification) -> None:
        assert (n.type, n.request_id, n.step, n.approver_id) == ("approval_assigned", 12, 2, 3)

    pact.verify(_receive(check), "Async")


def test_requester_and_approver_are_told_of_a_decision(pact: Pact) -> None:
    _pushed(
        pact,
        "approval_result",
        {
            "step": match.int(2),
            "approverId": match.int(3),
            "stepStatus": match.regex("approved", regex=DECISION),
            "finalStatus": match.regex("approved", regex=FINAL_STATUS),
        },
    )

    def check(n: Notification) -> None:
        assert (n.type, n.step_status, n.final_status) == (
            "approval_result",
            "approved",
            "approved",
        )

    pact.verify(_receive(check), "Async")


def test_a_requester_is_told_their_leave_is_recorded(pact: Pact) -> None:
    _pushed(pact, "leave_confirmed", {"finalStatus": match.regex("approved", regex=FINAL_STATUS)})

    def check(n: Notification) -> None:
        assert (n.type, n.request_id, n.final_status) == ("leave_confirmed", 12, "approved")

    pact.verify(_receive(check), "Async")


def test_requester_and_approver_are_told_of_a_withdrawal(pact: Pact) -> None:
    _pushed(
        pact,
        "approval_withdrawn",
        {
            "step": match.int(2),
            "approverId": match.int(3),
            "finalStatus": match.regex("withdrawn", regex=FINAL_STATUS),
            "reason": match.str("계획이 바뀌었습니다"),
        },
    )

    def check(n: Notification) -> None:
        assert (n.type, n.step, n.final_status, n.reason) == (
            "approval_withdrawn",
            2,
            "withdrawn",
            "계획이 바뀌었습니다",
        )

    pact.verify(_receive(check), "Async")


def test_a_requester_is_told_their_leave_is_cancelled(pact: Pact) -> None:
    _pushed(
        pact,
        "leave_cancelled",
        {
            "finalStatus": match.regex("cancelled", regex=FINAL_STATUS),
            "reason": match.str("일정 변경"),
        },
    )

    def check(n: Notification) -> None:
        assert (n.type, n.final_status, n.reason) == ("leave_cancelled", "cancelled", "일정 변경")

    pact.verify(_receive(check), "Async")
