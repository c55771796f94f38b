"""Small factories that build test data through the public APIs."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from typing import Any

import httpx

_counter = itertools.count(1)
_leave_years = itertools.count()


async def employee(client: httpx.AsyncClient, base: str, **fields: Any) -> dict[str, Any]:
    n = next(_counter)
    body = {"name": f"직원 {n}", "department": "개발팀", "position": "사원", **fields}
    response = await client.post(f"{base}/employees", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def employees(client: httpx.AsyncClient, base: str, count: int) -> list[int]:
    return [(await employee(client, base))["id"] for _ in range(count)]


async def entitle(
    client: httpx.AsyncClient, base: str, employee_id: int, *, year: int, days: float
) -> None:
    """Sets the employee's ANNUAL days for that year (an administrator's PUT)."""
    body = {"employee_id": employee_id, "leave_type": "ANNUAL", "year": year, "days": days}
    answered = await client.put(f"{base}/leaves/entitlements", json=body)
    assert answered.status_code == 200, answered.text


def approval_body(requester: int, approvers: list[int], **fields: Any) -> dict[str, Any]:
    return {
        "requesterId": requester,
        "title": "결재 요청",
        "content": "내용",
        "steps": [{"step": i, "approverId": a} for i, a in enumerate(approvers, start=1)],
        "requestType": "GENERAL",
        **fields,
    }


def _leave_dates() -> tuple[str, str]:
    """Tuesday to Thursday of the first December week of a year no other call used: leave
    requests of one employee must not overlap, and one a year stays within any balance."""
    year = 2040 + next(_leave_years) % 900
    first = date(year, 12, 1)
    tuesday = first + timedelta(days=(1 - first.weekday()) % 7)
    return tuesday.isoformat(), (tuesday + timedelta(days=2)).isoformat()


def leave_body(requester: int, approvers: list[int], **leave: Any) -> dict[str, Any]:
    start, end = _leave_dates()
    info = {
        "startDate": start,
        "endDate": end,
        "days": 3,
        "leaveType": "ANNUAL",
        "reason": "가족 여행",
        **leave,
    }
    return approval_body(
        requester, approvers, requestType="LEAVE", title="연차 신청", leaveInfo=info
    )


async def approval(client: httpx.AsyncClient, approvals_url: str, body: dict[str, Any]) -> int:
    """Create an approval request through the API; its requestId."""
    response = await client.post(f"{approvals_url}/approvals", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["requestId"])
