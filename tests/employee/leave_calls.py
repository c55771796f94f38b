"""Calls the leave tests make again and again: a reservation body and the employee's balance
of one type, both through the running service."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

# Far from the request ids other tests confirm leave for.
_request_ids = itertools.count(5_000_000)
RESERVATIONS = "/leaves/internal/reservations"


def next_request_id() -> int:
    return next(_request_ids)


def reservation(employee_id: int, start: str, end: str, **fields: Any) -> dict[str, Any]:
    return {
        "requestId": next_request_id(),
        "employeeId": employee_id,
        "leaveType": "ANNUAL",
        "startDate": start,
        "endDate": end,
        **fields,
    }


async def balance(
    client: httpx.AsyncClient, base: str, employee_id: int, year: int, code: str = "ANNUAL"
) -> dict[str, Any]:
    response = await client.get(
        f"{base}/leaves/balance", params={"employeeId": employee_id, "year": year}
    )
    assert response.status_code == 200, response.text
    return next(row for row in response.json() if row["leave_type"] == code)


async def entitle(
    client: httpx.AsyncClient, base: str, employee_id: int, year: int, days: float
) -> None:
    body = {"employee_id": employee_id, "leave_type": "ANNUAL", "year": year, "days": days}
    response = await client.put(f"{base}/leaves/entitlements", json=body)
    assert response.status_code == 200, response.text
