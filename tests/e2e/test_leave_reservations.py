"""A LEAVE request's days through the pipeline (docs/decisions.md D24): reserved when it is
made, held once stored, used once when approved, given back when rejected; and one
employee's requests sent at once never overlap nor exceed the balance. In both layouts: on
two replicas of each service, racing requests land on either. 2036 is these tests' year."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any

import httpx

from tests.employee.leave_calls import RESERVATIONS, balance
from tests.support import factories, layouts
from tests.support.layouts import Layout
from tests.support.pipeline import decide, eventually, final_status
from tests.support.settled import outbox_drained

pytestmark = layouts.BOTH

ENTITLED = 15


def _leave(requester: int, approver: int, start: str, end: str) -> dict[str, Any]:
    body = factories.leave_body(requester, [approver], startDate=start, endDate=end)
    del body["leaveInfo"]["days"]
    return body


async def _reservation_is(
    client: httpx.AsyncClient, employee_url: str, request_id: int, status: str
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = await client.get(f"{employee_url}{RESERVATIONS}/{request_id}")
        assert found.status_code == 200, found.text
        return found.json() if found.json()["status"] == status else None

    return await eventually(probe, what=f"request {request_id}'s reservation to be {status}")


async def test_an_approved_leave_uses_its_days_once(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, _leave(requester, approver, "2036-03-03", "2036-03-05")
    )
    await _reservation_is(client, employee_url, request_id, "held")
    reserved = await balance(client, employee_url, requester, 2036)
    assert (reserved["reserved"], reserved["used"], reserved["remaining"]) == (3, 0, 12)

    assert (await decide(client, processing_url, approver, request_id)).status_code == 200
    await final_status(client, approvals_url, request_id, "approved")
    await _reservation_is(client, employee_url, request_id, "approved")
    await outbox_drained(request_id, db=layout.db)  # nothing more is on its way

    used = await balance(client, employee_url, requester, 2036)
    assert (used["reserved"], used["used"], used["remaining"]) == (0, 3, 12)
    leaves = await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
    assert [(r["start_date"], r["days"]) for r in leaves.json()] == [("2036-03-03", 3)]


async def test_a_rejected_leave_gives_its_days_back(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    body = _leave(requester, first, "2036-03-03", "2036-03-05")
    body["steps"].append({"step": 2, "approverId": second})
    request_id = await factories.approval(client, approvals_url, body)
    await _reservation_is(client, employee_url, request_id, "held")

    assert (await decide(client, processing_url, first, request_id)).status_code == 200
    rejected = await decide(client, processing_url, second, request_id, "reject")
    assert rejected.status_code == 200
    await _reservation_is(client, employee_url, request_id, "released")
    await outbox_drained(request_id, db=layout.db)

    back = await balance(client, employee_url, requester, 2036)
    assert (back["reserved"], back["used"], back["remaining"]) == (0, 0, ENTITLED)
    leaves = await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
    assert leaves.json() == []
    # The days are free again for another request.
    await factories.approval(
        client, approvals_url, _leave(requester, first, "2036-03-03", "2036-03-05")
    )


async def _at_once(
    client: httpx.AsyncClient, approvals_url: str, bodies: list[dict[str, Any]]
) -> list[httpx.Response]:
    return await asyncio.gather(
        *(client.post(f"{approvals_url}/approvals", json=body) for body in bodies)
    )


async def _stored_ids(client: httpx.AsyncClient, approvals_url: str, requester: int) -> set[int]:
    listed = await client.get(
        f"{approvals_url}/approvals", params={"requesterId": requester, "limit": 100}
    )
    return {doc["requestId"] for doc in listed.json()}


async def test_two_overlapping_leave_requests_sent_at_once_accept_exactly_one(
    client: httpx.AsyncClient, employee_url: str, approvals_url: str
) -> None:
    for _ in range(3):
        requester, approver = await factories.employees(client, employee_url, 2)
        bodies = [
            _leave(requester, approver, "2036-04-07", "2036-04-09"),
            _leave(requester, approver, "2036-04-09", "2036-04-11"),
        ]

        responses = await _at_once(client, approvals_url, bodies)

        assert sorted(r.status_code for r in responses) == [201, 409], [r.text for r in responses]
        winner = next(r.json()["requestId"] for r in responses if r.status_code == 201)
        loser = next(r.json() for r in responses if r.status_code == 409)
        assert loser == {"detail": f"Leave overlaps request {winner}"}
        assert await _stored_ids(client, approvals_url, requester) == {winner}


def _weekdays(start: date, count: int) -> list[str]:
    days = (start + timedelta(days=n) for n in range(count * 2))
    return [day.isoformat() for day in days if day.weekday() < 5][:count]


async def test_twenty_leave_requests_at_once_never_exceed_the_balance(
    client: httpx.AsyncClient, employee_url: str, approvals_url: str
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    bodies = [_leave(requester, approver, d, d) for d in _weekdays(date(2036, 6, 2), 20)]

    responses = await _at_once(client, approvals_url, bodies)

    accepted = {r.json()["requestId"] for r in responses if r.status_code == 201}
    refused = [r for r in responses if r.status_code != 201]
    assert len(accepted) == ENTITLED
    assert {(r.status_code, r.json()["detail"]) for r in refused} == {
        (400, "Insufficient leave balance for ANNUAL: 0 days left")
    }
    assert await _stored_ids(client, approvals_url, requester) == accepted
    assert (await balance(client, employee_url, requester, 2036))["reserved"] == ENTITLED
