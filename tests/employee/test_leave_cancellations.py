"""Cancelling an approved leave through the running service (issue 20 point 3): the record
is kept, marked cancelled, and its days return to the balance exactly once however often
the call comes; a confirmation that arrives after the cancellation leaves it cancelled."""

from __future__ import annotations

from typing import Any

import httpx

from tests.employee.leave_calls import RESERVATIONS, balance, next_request_id, reservation
from tests.support import factories
from tests.support.auth import as_user

# Tue 6 to Thu 8 April 2032: no holiday is ever put in 2032 by the tests.
TUESDAY, THURSDAY = "2032-04-06", "2032-04-08"


async def _held(client: httpx.AsyncClient, employee_url: str) -> tuple[int, dict[str, Any]]:
    """A fresh employee's held reservation of three days, and its confirmation."""
    eid = int((await factories.employee(client, employee_url))["id"])
    body = reservation(eid, TUESDAY, THURSDAY)
    url = f"{employee_url}{RESERVATIONS}"
    assert (await client.post(url, json=body)).status_code == 201
    assert (await client.post(f"{url}/{body['requestId']}/hold")).status_code == 200
    confirmation = {
        "employeeId": eid,
        "startDate": TUESDAY,
        "endDate": THURSDAY,
        "days": 3,
        "leaveType": "ANNUAL",
        "reason": "여행",
        "requestId": body["requestId"],
    }
    return eid, confirmation


async def test_a_cancelled_leave_is_kept_and_its_days_return_once(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid, confirmation = await _held(client, employee_url)
    request_id = confirmation["requestId"]
    approved = await client.post(f"{employee_url}/leaves/internal/approved", json=confirmation)
    assert approved.status_code == 200, approved.text
    assert (await balance(client, employee_url, eid, 2032))["used"] == 3

    url = f"{employee_url}{RESERVATIONS}/{request_id}/cancel"
    first, again = await client.post(url), await client.post(url)

    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert (first.json()["status"], first.json()["days"]) == ("cancelled", 3)
    stored = await client.get(f"{employee_url}{RESERVATIONS}/{request_id}")
    assert stored.json()["status"] == "cancelled"
    after = await balance(client, employee_url, eid, 2032)
    assert (after["used"], after["reserved"], after["remaining"]) == (0, 0, 15)
    # The days are free for another leave.
    other = reservation(eid, TUESDAY, THURSDAY)
    assert (await client.post(f"{employee_url}{RESERVATIONS}", json=other)).status_code == 201


async def test_a_confirmation_after_the_cancellation_leaves_it_cancelled(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid, confirmation = await _held(client, employee_url)
    request_id = confirmation["requestId"]

    cancelled = await client.post(f"{employee_url}{RESERVATIONS}/{request_id}/cancel")
    late = await client.post(f"{employee_url}/leaves/internal/approved", json=confirmation)

    assert cancelled.status_code == 200, cancelled.text
    assert (late.status_code, late.json()["status"]) == (200, "cancelled")
    after = await balance(client, employee_url, eid, 2032)
    assert (after["used"], after["reserved"]) == (0, 0)


async def test_only_approved_or_held_leave_can_be_cancelled(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid, confirmation = await _held(client, employee_url)
    url = f"{employee_url}{RESERVATIONS}/{confirmation['requestId']}"
    assert (await client.post(f"{url}/release")).status_code == 200

    released = await client.post(f"{url}/cancel")
    unknown = await client.post(f"{employee_url}{RESERVATIONS}/{next_request_id()}/cancel")
    by_a_user = await client.post(f"{url}/cancel", headers=as_user(eid))

    assert (released.status_code, released.json()["detail"]) == (
        409,
        f"Leave of request {confirmation['requestId']} is released, not approved",
    )
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "Reservation not found"})
    assert by_a_user.status_code == 403
