"""Calls to employee-service: validating employees and recording confirmed leave."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiohttp

from services.common import request_json

TARGET = "employee-service"


class LeaveRefused(Exception):
    """employee-service answered 4xx: retrying the same confirmation cannot succeed."""


async def missing_employees(
    session: aiohttp.ClientSession, base_url: str, ids: Iterable[int]
) -> list[int]:
    """The ids (sorted) employee-service does not know, in one round trip."""
    wanted = sorted(set(ids))
    status, body = await request_json(
        session,
        "GET",
        f"{base_url}/employees",
        target=TARGET,
        operation="find_employees",
        params={"ids": ",".join(map(str, wanted)), "limit": str(len(wanted))},
    )
    if status != 200 or not isinstance(body, list):
        raise LeaveRefused(f"unexpected answer {status} to an employee lookup")
    found = {employee["id"] for employee in body}
    return [employee_id for employee_id in wanted if employee_id not in found]


async def record_approved_leave(
    session: aiohttp.ClientSession, base_url: str, confirmation: dict[str, Any]
) -> dict[str, Any]:
    """Idempotent on ``requestId``: delivering the same confirmation twice keeps one record."""
    status, body = await request_json(
        session,
        "POST",
        f"{base_url}/leaves/internal/approved",
        target=TARGET,
        operation="record_leave",
        json=confirmation,
    )
    if status != 200:
        raise LeaveRefused(f"employee-service refused the leave ({status}): {body}")
    result: dict[str, Any] = body
    return result
