"""approval-request-service -> employee-service: what the request service needs when it
validates the employees a request names and when it records a leave the request approved.
Drives ``services.approval_request.clients.employee`` against Pact's mock server."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from pact import Pact, match
from pact.interaction import HttpInteraction

from contracts.support import ISO_DATE, service_token, timestamp
from services.approval_request import workflow
from services.approval_request.clients.employee import (
    LeaveRefused,
    missing_employees,
    record_approved_leave,
)

CONSUMER = "approval-request-service"
PROVIDER = "employee-service"

LOOKUP = "a lookup of several employees by id"


def _given(pact: Pact, description: str, states: list[str]) -> HttpInteraction:
    interaction = pact.upon_receiving(description)
    for state in states:
        interaction.given(state)
    return interaction


def _lookup(pact: Pact, description: str, states: list[str], ids: str, found: list[int]) -> None:
    """The lookup answers the active employees among ``ids``; the consumer reads their ids."""
    (
        _given(pact, description, states)
        .with_request("GET", "/employees")
        .with_header("Authorization", service_token())
        .with_query_parameter("ids", match.regex(ids, regex=r"^\d+(,\d+)*$"))
        .with_query_parameter("limit", match.regex(str(len(ids.split(","))), regex=r"^\d+$"))
        .will_respond_with(200)
        .with_body([{"id": match.int(employee_id)} for employee_id in found], "application/json")
    )


async def test_validating_employees_who_all_exist(pact: Pact, http: aiohttp.ClientSession) -> None:
    states = [f"employee {employee_id} exists" for employee_id in (1, 2, 3)]
    _lookup(pact, f"{LOOKUP} who all exist", states, "1,2,3", [1, 2, 3])

    with pact.serve() as server:
        missing = await missing_employees(http, str(server.url), [2, 1, 3, 2])

    assert missing == []


async def test_validating_employees_when_one_is_missing(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    states = ["employee 1 exists", "employee 2 exists", "employee 99 does not exist"]
    _lookup(pact, f"{LOOKUP} when one does not exist", states, "1,2,99", [1, 2])

    with pact.serve() as server:
        missing = await missing_employees(http, str(server.url), [1, 2, 99])

    assert missing == [99]


def _approved_leave(request_id: int, requester_id: int) -> dict[str, Any]:
    """What the workflow sends once a LEAVE request is finally approved."""
    doc = {
        "requestId": request_id,
        "requesterId": requester_id,
        "leaveInfo": {
            "startDate": "2026-12-01",
            "endDate": "2026-12-03",
            "days": 3,
            "leaveType": "ANNUAL",
            "reason": "가족 여행",
        },
    }
    return workflow.leave_confirmation(doc)


def _confirmation(request_id: int, employee_id: int) -> dict[str, Any]:
    return {
        "employeeId": match.int(employee_id),
        "startDate": match.date("2026-12-01", ISO_DATE),
        "endDate": match.date("2026-12-03", ISO_DATE),
        "days": match.int(3),
        "leaveType": match.str("ANNUAL"),
        "reason": match.str("가족 여행"),
        "requestId": match.int(request_id),
    }


LEAVE_RECORD = {
    "id": match.int(1),
    "employee_id": match.int(7),
    "start_date": match.date("2026-12-01", ISO_DATE),
    "end_date": match.date("2026-12-03", ISO_DATE),
    "days": match.int(3),
    "leave_type": match.str("ANNUAL"),
    "status": "approved",
    "reason": match.str("가족 여행"),
    "created_at": timestamp(),
}


def _record_leave(
    pact: Pact, description: str, states: list[str], request_id: int, employee_id: int
) -> HttpInteraction:
    return (
        _given(pact, description, states)
        .with_request("POST", "/leaves/internal/approved")
        .with_header("Authorization", service_token())
        .with_body(_confirmation(request_id, employee_id), "application/json")
    )


async def test_recording_a_confirmed_leave_for_the_first_time(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    states = ["employee 7 exists", "no leave is recorded for approval request 41"]
    _record_leave(
        pact, "a confirmed leave recorded for the first time", states, 41, 7
    ).will_respond_with(200).with_body(LEAVE_RECORD, "application/json")

    with pact.serve() as server:
        record = await record_approved_leave(http, str(server.url), _approved_leave(41, 7))

    assert record["status"] == "approved"
    assert record["employee_id"] == 7


async def test_recording_the_same_leave_again_answers_the_first_record(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    description = "a confirmed leave delivered again for the same approval request"
    states = ["a leave is recorded for approval request 42 of employee 7"]
    _record_leave(pact, description, states, 42, 7).will_respond_with(200).with_body(
        LEAVE_RECORD, "application/json"
    )

    with pact.serve() as server:
        record = await record_approved_leave(http, str(server.url), _approved_leave(42, 7))

    assert record["status"] == "approved"


async def test_recording_a_leave_of_an_unknown_employee_is_refused(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    states = ["employee 99 does not exist", "no leave is recorded for approval request 43"]
    _record_leave(
        pact, "a confirmed leave of an employee who does not exist", states, 43, 99
    ).will_respond_with(404).with_body(
        {"detail": match.str("Employee not found")}, "application/json"
    )

    with pact.serve() as server, pytest.raises(LeaveRefused, match="404"):
        await record_approved_leave(http, str(server.url), _approved_leave(43, 99))
