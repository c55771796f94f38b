"""What administrators set for leave (types, entitlements, holidays) and what they read back
(balances, the report), through the running service."""

from __future__ import annotations

import uuid

import httpx

from tests.employee.leave_calls import RESERVATIONS, balance, entitle, reservation
from tests.support import factories
from tests.support.auth import as_user


async def test_the_seeded_leave_types_are_annual_sick_and_unlimited_unpaid(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    response = await client.get(f"{employee_url}/leaves/types", headers=as_user(1))
    assert response.status_code == 200
    seeded = {row["code"]: row["annual_days"] for row in response.json()}
    assert {code: seeded.get(code, "missing") for code in ("ANNUAL", "SICK", "UNPAID")} == {
        "ANNUAL": 15,
        "SICK": 10,
        "UNPAID": None,
    }


async def test_an_administrator_puts_a_leave_type_whatever_the_case_of_its_code(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    url = f"{employee_url}/leaves/types"
    created = await client.put(f"{url}/family_care", json={"name": "가족돌봄", "annual_days": 2.5})
    changed = await client.put(
        f"{url}/Family_Care", json={"name": "가족돌봄 휴가", "annual_days": 3}
    )
    assert created.json() == {"code": "FAMILY_CARE", "name": "가족돌봄", "annual_days": 2.5}
    assert changed.json() == {"code": "FAMILY_CARE", "name": "가족돌봄 휴가", "annual_days": 3}
    listed = [row for row in (await client.get(url)).json() if row["code"] == "FAMILY_CARE"]
    assert listed == [changed.json()]
    employee = await client.put(
        f"{url}/OTHER", json={"name": "x", "annual_days": 1}, headers=as_user(1)
    )
    assert employee.status_code == 403


async def test_an_entitlement_overrides_the_types_days_for_that_employee_and_year_only(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    await entitle(client, employee_url, eid, 2034, 20)
    assert (await balance(client, employee_url, eid, 2034))["entitled"] == 20
    assert (await balance(client, employee_url, eid, 2035))["entitled"] == 15
    url = f"{employee_url}/leaves/entitlements"
    unknown_type = await client.put(
        url, json={"employee_id": eid, "leave_type": "nap", "year": 2034, "days": 1}
    )
    unknown_employee = await client.put(
        url, json={"employee_id": 99_999_999, "leave_type": "ANNUAL", "year": 2034, "days": 1}
    )
    assert unknown_type.json() == {"detail": "Unknown leave type NAP"}
    assert (unknown_employee.status_code, unknown_employee.json()) == (
        404,
        {"detail": "Employee not found"},
    )


async def test_an_employee_reads_their_own_balance_only(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    url = f"{employee_url}/leaves/balance"
    own = await client.get(url, params={"employeeId": eid, "year": 2034}, headers=as_user(eid))
    other = await client.get(
        url, params={"employeeId": eid, "year": 2034}, headers=as_user(eid + 1)
    )
    missing = await client.get(url, params={"employeeId": 99_999_999, "year": 2034})
    assert own.status_code == 200
    assert {row["leave_type"] for row in own.json()} >= {"ANNUAL", "SICK", "UNPAID"}
    assert other.status_code == 403
    assert missing.status_code == 404


async def test_holidays_are_put_listed_deleted_and_not_counted_as_working_days(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    # 2033 is the tests' year for holidays; Mon 6 to Fri 10 June 2033.
    url = f"{employee_url}/holidays"
    put = await client.put(f"{url}/2033-06-06", json={"name": "현충일"})
    assert put.json() == {"date": "2033-06-06", "name": "현충일"}
    await client.put(f"{url}/2033-06-06", json={"name": "현충일 (대체)"})
    await client.put(f"{url}/2033-01-01", json={"name": "신정"})
    listed = await client.get(f"{url}", params={"year": 2033}, headers=as_user(1))
    assert [row for row in listed.json() if row["date"] == "2033-06-06"] == [
        {"date": "2033-06-06", "name": "현충일 (대체)"}
    ]
    assert [row["date"] for row in listed.json()] == sorted(row["date"] for row in listed.json())

    eid = (await factories.employee(client, employee_url))["id"]
    reserved = await client.post(
        f"{employee_url}{RESERVATIONS}", json=reservation(eid, "2033-06-06", "2033-06-10")
    )
    assert reserved.json()["days"] == 4
    on_the_holiday = await client.post(
        f"{employee_url}{RESERVATIONS}",
        json=reservation(eid, "2033-06-06", "2033-06-06", leaveType="UNPAID"),
    )
    assert on_the_holiday.json() == {"detail": "Leave covers no working days"}

    assert (await client.put(f"{url}/0999-01-01", json={"name": "x"})).status_code == 422
    assert (await client.delete(f"{url}/2033-01-01")).status_code == 204
    assert (await client.delete(f"{url}/2033-01-01")).status_code == 404
    assert (await client.delete(f"{url}/2033-06-06", headers=as_user(1))).status_code == 403
    assert (
        await client.put(f"{url}/2033-06-07", json={"name": "x"}, headers=as_user(1))
    ).status_code == 403


async def test_the_report_sums_approved_leave_per_department_and_type(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    department = f"휴가팀-{uuid.uuid4().hex[:8]}"
    first = (await factories.employee(client, employee_url, department=department))["id"]
    second = (await factories.employee(client, employee_url, department=department))["id"]
    url = f"{employee_url}{RESERVATIONS}"
    confirm = f"{employee_url}/leaves/internal/approved"

    async def approve(eid: int, start: str, end: str, leave_type: str = "ANNUAL") -> None:
        body = reservation(eid, start, end, leaveType=leave_type)
        assert (await client.post(url, json=body)).status_code == 201
        approved = await client.post(
            confirm,
            json={
                "employeeId": eid,
                "startDate": start,
                "endDate": end,
                "days": 1,
                "leaveType": leave_type,
                "reason": "",
                "requestId": body["requestId"],
            },
        )
        assert approved.status_code == 200

    await approve(first, "2031-03-03", "2031-03-04")
    await approve(second, "2031-03-05", "2031-03-05")
    await approve(second, "2031-03-06", "2031-03-06", "SICK")
    # Counted in 2031 for its 2031 part only; a pending one is not counted.
    await approve(first, "2031-12-31", "2032-01-02")
    await client.post(url, json=reservation(second, "2031-04-07", "2031-04-08"))

    response = await client.get(
        f"{employee_url}/leaves/report", params={"year": 2031, "department": department}
    )
    assert response.json() == [
        {"department": department, "leave_type": "ANNUAL", "employees": 2, "days": 4},
        {"department": department, "leave_type": "SICK", "employees": 1, "days": 1},
    ]
    next_year = await client.get(
        f"{employee_url}/leaves/report", params={"year": 2032, "department": department}
    )
    assert next_year.json() == [
        {"department": department, "leave_type": "ANNUAL", "employees": 1, "days": 2}
    ]
    not_admin = await client.get(
        f"{employee_url}/leaves/report", params={"year": 2031}, headers=as_user(first)
    )
    assert not_admin.status_code == 403
