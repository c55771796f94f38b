"""approval-request-service -> notification-service: ``POST /notify`` for each notification
the request service sends (``approval_result`` on a decision, ``leave_confirmed`` once the
leave is recorded, ``approval_withdrawn`` on a withdrawal, ``leave_cancelled`` once a
cancelled leave's days are back). The payloads come from the
workflow's own builders and go out through ``services.approval_request.clients.notify``."""

from __future__ import annotations

from datetime import date
from typing import Any

import aiohttp
from pact import Pact, match

from contracts.support import DECISION, FINAL_STATUS, service_token
from services.approval_request import workflow
from services.approval_request.clients.notify import send_notification
from services.approval_request.schemas import Decision

CONSUMER = "approval-request-service"
PROVIDER = "notification-service"

DOCUMENT: dict[str, Any] = {
    "requestId": 12,
    "requesterId": 1,
    "title": "연차 신청",
    "content": "가족 여행",
    "steps": [
        {"step": 1, "approverId": 2, "status": "approved", "updatedAt": None},
        {"step": 2, "approverId": 3, "status": "pending", "updatedAt": None},
    ],
    "finalStatus": "in_progress",
    "requestType": "LEAVE",
    "leaveInfo": {
        "startDate": "2026-12-01",
        "endDate": "2026-12-03",
        "days": 3,
        "leaveType": "ANNUAL",
        "reason": "가족 여행",
    },
}


def _notify(pact: Pact, description: str, body: dict[str, Any]) -> None:
    (
        pact.upon_receiving(description)
        .with_request("POST", "/notify")
        .with_header("Authorization", service_token())
        .with_body(body, "application/json")
        .will_respond_with(202)
        .with_body({"delivered": match.bool(True)}, "application/json")
    )


async def test_a_decision_notifies_with_approval_result(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    outcome = workflow.decide(
        DOCUMENT, Decision(requestId=12, step=2, approverId=3, status="approved")
    )
    assert isinstance(outcome, workflow.Applied)
    notification = next(e.payload for e in outcome.effects if e.kind == "notify")
    _notify(
        pact,
        "an approval_result notification",
        {
            "employeeId": match.int(1),
            "type": "approval_result",
            "requestId": match.int(12),
            "step": match.int(2),
            "approverId": match.int(3),
            "stepStatus": match.regex("approved", regex=DECISION),
            "finalStatus": match.regex("approved", regex=FINAL_STATUS),
            "title": match.str("연차 신청"),
        },
    )

    with pact.serve() as server:
        delivered = await send_notification(http, str(server.url), notification)

    assert delivered is True


async def test_a_decision_with_a_comment_notifies_it_with_approval_result(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    decision = Decision(
        requestId=12, step=2, approverId=3, status="rejected", comment="일정이 겹칩니다"
    )
    outcome = workflow.decide(DOCUMENT, decision)
    assert isinstance(outcome, workflow.Applied)
    notification = next(e.payload for e in outcome.effects if e.kind == "notify")
    _notify(
        pact,
        "an approval_result notification with the approver's comment",
        {
            "employeeId": match.int(1),
            "type": "approval_result",
            "requestId": match.int(12),
            "step": match.int(2),
            "approverId": match.int(3),
            "stepStatus": match.regex("rejected", regex=DECISION),
            "finalStatus": match.regex("rejected", regex=FINAL_STATUS),
            "title": match.str("연차 신청"),
            "comment": match.str("일정이 겹칩니다"),
        },
    )

    with pact.serve() as server:
        delivered = await send_notification(http, str(server.url), notification)

    assert delivered is True


async def test_a_recorded_leave_notifies_with_leave_confirmed(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    leave = workflow.leave_confirmation(DOCUMENT)
    notification = workflow.leave_confirmed_notification(leave, DOCUMENT["title"])
    _notify(
        pact,
        "a leave_confirmed notification",
        {
            "employeeId": match.int(1),
            "type": "leave_confirmed",
            "requestId": match.int(12),
            "finalStatus": match.regex("approved", regex=FINAL_STATUS),
            "title": match.str("연차 신청"),
        },
    )

    with pact.serve() as server:
        delivered = await send_notification(http, str(server.url), notification)

    assert delivered is True


async def test_a_withdrawal_notifies_with_approval_withdrawn(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    outcome = workflow.withdraw(DOCUMENT, reason="계획이 바뀌었습니다")
    assert isinstance(outcome, workflow.Withdrawn)
    notification = next(e.payload for e in outcome.effects if e.kind == "notify")
    _notify(
        pact,
        "an approval_withdrawn notification",
        {
            "employeeId": match.int(1),
            "type": "approval_withdrawn",
            "requestId": match.int(12),
            "step": match.int(2),
            "approverId": match.int(3),
            "finalStatus": match.regex("withdrawn", regex=FINAL_STATUS),
            "title": match.str("연차 신청"),
            "reason": match.str("계획이 바뀌었습니다"),
        },
    )

    with pact.serve() as server:
        delivered = await send_notification(http, str(server.url), notification)

    assert delivered is True


async def test_a_cancelled_leave_notifies_with_leave_cancelled(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    approved = {**DOCUMENT, "finalStatus": "approved"}
    effects = workflow.cancel(approved, today=date(2026, 11, 30), reason="일정 변경")
    assert isinstance(effects, list)
    notification = workflow.leave_cancelled_notification(effects[0].payload, approved)
    _notify(
        pact,
        "a leave_cancelled notification",
        {
            "employeeId": match.int(1),
            "type": "leave_cancelled",
            "requestId": match.int(12),
            "finalStatus": match.regex("cancelled", regex=FINAL_STATUS),
            "title": match.str("연차 신청"),
            "reason": match.str("일정 변경"),
        },
    )

    with pact.serve() as server:
        delivered = await send_notification(http, str(server.url), notification)

    assert delivered is True
