"""Provider states for contract verification (``contracts/``): each state a consumer's pact
names becomes real rows here. Mounted only with ``EMPLOYEE_TEST_MODE=true``, which the
settings refuse in production."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from services.employee.attendance.models import AttendanceRecord
from services.employee.deps import SessionDep
from services.employee.employees.models import Employee
from services.employee.leaves import service as leaves
from services.employee.leaves.models import LeaveEntitlement, LeaveRecord
from services.employee.leaves.schemas import LeaveConfirmation

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/_pact", include_in_schema=False)

StateSetup = Callable[..., Awaitable[None]]


class StateChange(BaseModel):
    """What the Pact verifier posts before (and, with teardown, after) each interaction."""

    state: str = ""
    action: Literal["setup", "teardown"] = "setup"
    params: dict[str, Any] = Field(default_factory=dict)


async def employee_exists(session: AsyncSession, employee_id: int) -> None:
    """An active employee with exactly this id (explicit ids keep pacts readable)."""
    employee = await session.get(Employee, employee_id)
    if employee is None:
        name = f"직원 {employee_id}"
        session.add(Employee(id=employee_id, name=name, department="개발팀", position="사원"))
        await session.flush()
    elif employee.deactivated_at is not None:
        employee.deactivated_at = None
        await session.flush()


async def employee_absent(session: AsyncSession, employee_id: int) -> None:
    for model in (LeaveRecord, LeaveEntitlement, AttendanceRecord):
        await session.execute(delete(model).where(model.employee_id == employee_id))
    await session.execute(delete(Employee).where(Employee.id == employee_id))


async def no_leave_for(session: AsyncSession, request_id: int) -> None:
    await session.execute(delete(LeaveRecord).where(LeaveRecord.approval_request_id == request_id))


async def leave_recorded(session: AsyncSession, request_id: int, employee_id: int) -> None:
    """Recorded through the service itself, as a first delivery of the confirmation would."""
    await employee_exists(session, employee_id)
    confirmation = LeaveConfirmation(
        employeeId=employee_id,
        startDate=date(2026, 12, 1),
        endDate=date(2026, 12, 3),
        days=Decimal(3),
        leaveType="ANNUAL",
        reason="가족 여행",
        requestId=request_id,
    )
    await leaves.record_approved(session=session, data=confirmation)


STATES: list[tuple[re.Pattern[str], StateSetup]] = [
    (re.compile(r"employee (\d+) exists"), employee_exists),
    (re.compile(r"employee (\d+) does not exist"), employee_absent),
    (re.compile(r"no leave is recorded for approval request (\d+)"), no_leave_for),
    (
        re.compile(r"a leave is recorded for approval request (\d+) of employee (\d+)"),
        leave_recorded,
    ),
]


@router.post("/provider-states")
async def set_up_state(body: StateChange, session: SessionDep) -> dict[str, Any]:
    """Commits with the request, before the verifier replays the interaction."""
    if body.action == "teardown" or not body.state:
        return {}
    for pattern, setup in STATES:
        found = pattern.fullmatch(body.state)
        if found:
            try:
                await setup(session, *(int(value) for value in found.groups()))
            except Exception as exc:
                # A 4xx, not a 5xx: the verifier retries a 5xx with backoff for minutes.
                logger.exception("provider state %r could not be set up", body.state)
                raise HTTPException(400, f"State {body.state!r} failed: {exc!r}") from exc
            return {}
    raise HTTPException(400, f"Unknown provider state: {body.state}")
