"""Attendance check-in/out on real MariaDB."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from tests.support import factories


async def test_check_in_then_out_records_the_day_and_minutes(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    checked_in = await client.post(f"{employee_url}/attendance/check-in", json={"employee_id": eid})
    assert checked_in.status_code == 200
    record = checked_in.json()
    assert record["employee_id"] == eid
    assert record["attendance_date"] == datetime.now(UTC).date().isoformat()
    assert record["check_out"] is None
    assert record["work_minutes"] is None
    assert set(record) == {
        "id",
        "employee_id",
        "attendance_date",
        "check_in",
        "check_out",
        "work_minutes",
        "created_at",
    }

    checked_out = await client.post(
        f"{employee_url}/attendance/check-out", json={"employee_id": eid}
    )
    assert checked_out.status_code == 200
    done = checked_out.json()
    assert done["id"] == record["id"]
    assert done["check_out"] >= done["check_in"]
    assert done["work_minutes"] == 0


async def test_second_check_in_the_same_day_is_refused(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    url = f"{employee_url}/attendance/check-in"
    assert (await client.post(url, json={"employee_id": eid})).status_code == 200
    again = await client.post(url, json={"employee_id": eid})
    assert again.status_code == 400
    assert again.json() == {"detail": "Already checked in today"}


async def test_ten_concurrent_check_ins_leave_exactly_one_record(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    responses = await asyncio.gather(
        *(
            client.post(f"{employee_url}/attendance/check-in", json={"employee_id": eid})
            for _ in range(10)
        )
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [400] * 9
    assert {r.json()["detail"] for r in responses if r.status_code == 400} == {
        "Already checked in today"
    }
    records = await client.get(f"{employee_url}/attendance/me", params={"employeeId": eid})
    assert len(records.json()) == 1


async def test_check_in_for_unknown_employee_is_a_400(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    response = await client.post(
        f"{employee_url}/attendance/check-in", json={"employee_id": 99999999}
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "Employee not found"}


async def test_check_out_without_check_in_is_a_400(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    response = await client.post(f"{employee_url}/attendance/check-out", json={"employee_id": eid})
    assert response.status_code == 400
    assert response.json() == {"detail": "No active check-in record found for today"}


async def test_second_check_out_is_a_400(client: httpx.AsyncClient, employee_url: str) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    await client.post(f"{employee_url}/attendance/check-in", json={"employee_id": eid})
    await client.post(f"{employee_url}/attendance/check-out", json={"employee_id": eid})
    again = await client.post(f"{employee_url}/attendance/check-out", json={"employee_id": eid})
    assert again.status_code == 400
    assert again.json() == {"detail": "No active check-in record found for today"}


@pytest.mark.parametrize("body", [{}, {"employee_id": "x"}, {"employee_id": 0}])
async def test_malformed_check_in_is_a_422(
    client: httpx.AsyncClient, employee_url: str, body: dict[str, object]
) -> None:
    response = await client.post(f"{employee_url}/attendance/check-in", json=body)
    assert response.status_code == 422


async def test_range_query_is_inclusive_and_oldest_first(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    await client.post(f"{employee_url}/attendance/check-in", json={"employee_id": eid})
    today = datetime.now(UTC).date()
    url = f"{employee_url}/attendance/me"
    inclusive = await client.get(
        url, params={"employeeId": eid, "from": today.isoformat(), "to": today.isoformat()}
    )
    assert [r["attendance_date"] for r in inclusive.json()] == [today.isoformat()]
    tomorrow = (today + timedelta(days=1)).isoformat()
    later = await client.get(url, params={"employeeId": eid, "from": tomorrow})
    assert later.json() == []


async def test_range_with_from_after_to_is_a_400(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    response = await client.get(
        f"{employee_url}/attendance/me",
        params={"employeeId": 1, "from": date(2026, 2, 1).isoformat(), "to": "2026-01-01"},
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "from must be on or before to"}


async def test_range_with_a_malformed_date_is_a_422(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    response = await client.get(
        f"{employee_url}/attendance/me", params={"employeeId": 1, "from": "2026-13-01"}
    )
    assert response.status_code == 422
