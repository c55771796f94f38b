"""approval-request-service -> employee-service: what the request service needs when it
validates the employees a request names, reserves a LEAVE request's days (reserve, hold,
release: docs/decisions.md D24) and records a leave the request approved.
Drives ``services.approval_request.clients.employee`` against Pact's mock server."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from pact import Pact, match
from pact.interaction import HttpInteraction

from contracts.support import ISO_DATE, service_token, timestamp
from services.approval_request import service, workflow
from services.approval_request.clients.employee import (
    LeaveRefused,
    ReservationRefused,
    cancel_leave,
    hold_leave,
    missing_employees,
    record_approved_leave,
    release_leave,
    reserve_leave,
)
from services.approval_request.schemas import ApprovalCreate

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


RESERVATIONS = "/leaves/internal/reservations"
# What a held or released reservation looks like to the request service, which reads its
# status only; a new one's count and code are what it stores.
RESERVATION_STATUS = r"^(tentative|held|approved|released|expired|cancelled)$"


def _leave_request(employee_id: int, start: str, end: str) -> ApprovalCreate:
    return ApprovalCreate.model_validate(
        {
            "requesterId": employee_id,
            "title": "연차 신청",
            "steps": [{"step": 1, "approverId": employee_id + 100}],
            "requestType": "LEAVE",
            "leaveInfo": {"startDate": start, "endDate": end, "leaveType": "annual"},
        }
    )


def _reservation(request_id: int, employee_id: int, start: str, end: str) -> dict[str, Any]:
    return {
        "requestId": match.int(request_id),
        "employeeId": match.int(employee_id),
        "leaveType": match.str("annual"),
        "startDate": match.date(start, ISO_DATE),
        "endDate": match.date(end, ISO_DATE),
    }


def _reserve(
    pact: Pact, description: str, states: list[str], body: dict[str, Any]
) -> HttpInteraction:
    return (
        _given(pact, description, states)
        .with_request("POST", RESERVATIONS)
        .with_header("Authorization", service_token())
        .with_body(body, "application/json")
    )


async def test_reserving_the_days_of_a_new_leave_request(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    states = ["employee 8 exists", "no leave is recorded for approval request 51"]
    body = _reservation(51, 8, "2027-03-02", "2027-03-04")
    _reserve(pact, "a reservation of a new leave request", states, body).will_respond_with(
        201
    ).with_body(
        {
            "requestId": match.int(51),
            "leaveType": match.str("ANNUAL"),
            "days": match.number(3),
            "status": "tentative",
        },
        "application/json",
    )

    reservation = workflow.leave_reservation(51, _leave_request(8, "2027-03-02", "2027-03-04"))
    with pact.serve() as server:
        reserved, made = await reserve_leave(http, str(server.url), reservation)

    assert made
    assert (reserved["days"], reserved["leaveType"]) == (3, "ANNUAL")


async def test_reserving_days_another_request_holds_is_refused_as_an_overlap(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    states = [
        "employee 9 has leave from 2027-03-02 to 2027-03-04 held for approval request 52",
        "no leave is recorded for approval request 56",
    ]
    body = _reservation(56, 9, "2027-03-04", "2027-03-05")
    _reserve(pact, "a reservation overlapping another request's", states, body).will_respond_with(
        409
    ).with_body(
        {
            "detail": match.regex(
                "Leave overlaps request 52", regex=rf"^{service.OVERLAP_REFUSAL}\d+$"
            )
        },
        "application/json",
    )

    reservation = workflow.leave_reservation(56, _leave_request(9, "2027-03-04", "2027-03-05"))
    with pact.serve() as server, pytest.raises(ReservationRefused) as refused:
        await reserve_leave(http, str(server.url), reservation)

    assert (refused.value.status_code, refused.value.detail) == (409, "Leave overlaps request 52")


def _step(
    pact: Pact, description: str, states: list[str], request_id: int, action: str
) -> HttpInteraction:
    return (
        _given(pact, description, states)
        .with_request("POST", f"{RESERVATIONS}/{request_id}/{action}")
        .with_header("Authorization", service_token())
    )


async def test_holding_the_reservation_of_a_stored_request(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    states = [
        "employee 10 has leave from 2027-03-02 to 2027-03-04 reserved for approval request 53"
    ]
    _step(pact, "the hold of a reservation", states, 53, "hold").will_respond_with(200).with_body(
        {"requestId": match.int(53), "status": match.regex("held", regex=RESERVATION_STATUS)},
        "application/json",
    )

    with pact.serve() as server:
        await hold_leave(http, str(server.url), 53)


async def test_releasing_the_reservation_of_a_rejected_request(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    states = ["employee 11 has leave from 2027-03-02 to 2027-03-04 held for approval request 54"]
    _step(pact, "the release of a held reservation", states, 54, "release").will_respond_with(
        200
    ).with_body(
        {"requestId": match.int(54), "status": match.regex("released", regex=RESERVATION_STATUS)},
        "application/json",
    )

    with pact.serve() as server:
        released = await release_leave(http, str(server.url), 54)

    assert released


async def test_releasing_a_request_never_reserved_finds_nothing_to_release(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    states = ["no leave is recorded for approval request 55"]
    _step(
        pact, "the release of a request that has no reservation", states, 55, "release"
    ).will_respond_with(404).with_body(
        {"detail": match.str("Reservation not found")}, "application/json"
    )

    with pact.serve() as server:
        released = await release_leave(http, str(server.url), 55)

    assert not released


async def test_cancelling_an_approved_leave_gives_its_days_back(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    states = [
        "employee 12 has leave from 2027-03-02 to 2027-03-04 approved for approval request 56"
    ]
    _step(pact, "the cancellation of an approved leave", states, 56, "cancel").will_respond_with(
        200
    ).with_body(
        {
            "requestId": match.int(56),
            "status": match.regex("cancelled", regex=RESERVATION_STATUS),
        },
        "application/json",
    )

    with pact.serve() as server:
        cancelled = await cancel_leave(http, str(server.url), 56)

    assert cancelled


async def test_cancelling_a_request_with_no_leave_record_finds_nothing_to_cancel(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    states = ["no leave is recorded for approval request 57"]
    _step(
        pact, "the cancellation of a request that has no leave record", states, 57, "cancel"
    ).will_respond_with(404).with_body(
        {"detail": match.str("Reservation not found")}, "application/json"
    )

    with pact.serve() as server:
        cancelled = await cancel_leave(http, str(server.url), 57)

    assert not cancelled
