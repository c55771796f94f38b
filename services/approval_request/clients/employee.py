"""Calls to employee-service: validating employees, reserving a LEAVE request's days
(reserve when it is made, hold once it is stored, release when it is rejected) and
confirming them once it is approved (docs/decisions.md D24)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp

from services.common import request_json

TARGET = "employee-service"


RESERVATIONS = "/leaves/internal/reservations"


class LeaveRefused(Exception):
    """employee-service answered 4xx: retrying the same confirmation cannot succeed."""


class ReservationRefused(Exception):
    """employee-service refused a reservation; its status and text are the answer."""

    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


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


async def reserve_leave(
    session: aiohttp.ClientSession, base_url: str, reservation: dict[str, Any]
) -> tuple[dict[str, Any], bool]:
    """The reservation (tentative: it expires unless held) and whether this call made it
    (``False``: the request id had reserved these same days before)."""
    status, body = await request_json(
        session,
        "POST",
        f"{base_url}{RESERVATIONS}",
        target=TARGET,
        operation="reserve_leave",
        json=reservation,
    )
    if status in (200, 201):
        result: dict[str, Any] = body
        return result, status == 201
    detail = body.get("detail") if isinstance(body, dict) else None
    raise ReservationRefused(status, detail if isinstance(detail, str) else str(body))


async def hold_leave(session: aiohttp.ClientSession, base_url: str, request_id: int) -> None:
    """The request is stored: its reservation stays until the decision."""
    status, body = await request_json(
        session,
        "POST",
        f"{base_url}{RESERVATIONS}/{request_id}/hold",
        target=TARGET,
        operation="hold_leave",
    )
    if status != 200:
        raise LeaveRefused(f"employee-service refused the hold ({status}): {body}")


async def release_leave(session: aiohttp.ClientSession, base_url: str, request_id: int) -> bool:
    """The request was rejected: its days are free again. ``False`` when it has no
    reservation (a request made before reservations existed)."""
    status, body = await request_json(
        session,
        "POST",
        f"{base_url}{RESERVATIONS}/{request_id}/release",
        target=TARGET,
        operation="release_leave",
    )
    if status == 404:
        return False
    if status != 200:
        raise LeaveRefused(f"employee-service refused the release ({status}): {body}")
    return True


async def cancel_leave(session: aiohttp.ClientSession, base_url: str, request_id: int) -> bool:
    """The approved leave was cancelled: its days return to the balance (once, however
    often this is called). ``False`` when employee-service has no record of it (a request
    approved before reservations existed, whose confirmation is skipped once cancelled)."""
    status, body = await request_json(
        session,
        "POST",
        f"{base_url}{RESERVATIONS}/{request_id}/cancel",
        target=TARGET,
        operation="cancel_leave",
    )
    if status == 404:
        return False
    if status != 200:
        raise LeaveRefused(f"employee-service refused the cancellation ({status}): {body}")
    return True


@dataclass(frozen=True)
class LeaveReservations:
    """The reservation calls bound to one session and employee-service's address."""

    session: aiohttp.ClientSession
    base_url: str

    async def reserve(self, reservation: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        return await reserve_leave(self.session, self.base_url, reservation)

    async def release(self, request_id: int) -> bool:
        return await release_leave(self.session, self.base_url, request_id)
