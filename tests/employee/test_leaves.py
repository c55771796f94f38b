"""Leave records and the internal, idempotent leave confirmation."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support import factories

_next_request = iter(range(700_000, 800_000))


def confirmation(employee_id: int, **fields: object) -> dict[str, object]:
    return {
        "employeeId": employee_id,
        "startDate": "2026-12-24",
        "endDate": "2026-12-26",
        "days": 3,
        "leaveType": "ANNUAL",
        "reason": "연말 휴가",
        "requestId": next(_next_request),
        **fields,
    }


async def test_confirmed_leave_is_recorded_as_approved(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    response = await client.post(f"{employee_url}/leaves/internal/approved", json=confirmation(eid))
    assert response.status_code == 200
    leave = response.json()
    assert {
        k: leave[k]
        for k in ("employee_id", "start_date", "end_date", "days", "leave_type", "status", "reason")
    } == {
        "employee_id": eid,
        "start_date": "2026-12-24",
        "end_date": "2026-12-26",
        "days": 3,
        "leave_type": "ANNUAL",
        "status": "approved",
        "reason": "연말 휴가",
    }
    assert set(leave) == {
        "id",
        "employee_id",
        "start_date",
        "end_date",
        "days",
        "leave_type",
        "status",
        "reason",
        "created_at",
    }
    listed = await client.get(f"{employee_url}/leaves/me", params={"employeeId": eid})
    assert listed.json() == [leave]


async def test_same_confirmation_twice_keeps_one_record_and_answers_the_same(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    body = confirmation(eid)
    first = await client.post(f"{employee_url}/leaves/internal/approved", json=body)
    second = await client.post(f"{employee_url}/leaves/internal/approved", json=body)
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    listed = await client.get(f"{employee_url}/leaves/me", params={"employeeId": eid})
    assert len(listed.json()) == 1


async def test_concurrent_duplicate_confirmations_keep_one_record(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    body = confirmation(eid)
    responses = await asyncio.gather(
        *(client.post(f"{employee_url}/leaves/internal/approved", json=body) for _ in range(16))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["id"] for r in responses}) == 1
    listed = await client.get(f"{employee_url}/leaves/me", params={"employeeId": eid})
    assert len(listed.json()) == 1


async def test_concurrent_confirmations_of_different_requests_are_all_recorded_at_once(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    # New request ids all fall into the same gap at the end of the unique index: a lookup
    # there must not lock that gap, or two deliveries deadlock on their inserts (503).
    eid = (await factories.employee(client, employee_url))["id"]
    bodies = [confirmation(eid) for _ in range(16)]
    responses = await asyncio.gather(
        *(client.post(f"{employee_url}/leaves/internal/approved", json=body) for body in bodies)
    )
    assert [r.status_code for r in responses] == [200] * len(bodies)
    listed = await client.get(f"{employee_url}/leaves/me", params={"employeeId": eid})
    assert len(listed.json()) == len(bodies)


async def test_confirmation_for_unknown_employee_is_a_404(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    response = await client.post(
        f"{employee_url}/leaves/internal/approved", json=confirmation(99999999)
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "Employee not found"}


async def test_end_before_start_is_a_400_and_stores_nothing(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    response = await client.post(
        f"{employee_url}/leaves/internal/approved",
        json=confirmation(eid, startDate="2026-12-26", endDate="2026-12-24"),
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "endDate must not be before startDate"}
    listed = await client.get(f"{employee_url}/leaves/me", params={"employeeId": eid})
    assert listed.json() == []


@pytest.mark.parametrize(
    "fields", [{"days": 0}, {"leaveType": ""}, {"startDate": "soon"}, {"requestId": -1}]
)
async def test_malformed_confirmation_is_a_422(
    client: httpx.AsyncClient, employee_url: str, fields: dict[str, object]
) -> None:
    response = await client.post(
        f"{employee_url}/leaves/internal/approved", json=confirmation(1, **fields)
    )
    assert response.status_code == 422


async def test_leave_of_a_deactivated_employee_is_still_recorded(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    await client.delete(f"{employee_url}/employees/{eid}")
    response = await client.post(f"{employee_url}/leaves/internal/approved", json=confirmation(eid))
    assert response.status_code == 200
