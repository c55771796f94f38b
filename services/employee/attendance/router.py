"""HTTP surface of attendance."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import CurrentPrincipal, Principal, require_self_or_admin
from services.common.limits import MAX_ID
from services.employee.attendance import service
from services.employee.attendance.models import AttendanceRecord
from services.employee.attendance.schemas import AttendanceAction, AttendanceRead
from services.employee.db import utcnow
from services.employee.deps import SessionDep, SettingsDep
from services.employee.settings import EmployeeSettings

router = APIRouter(prefix="/attendance", tags=["attendance"])


async def _record(
    action: Callable[..., Awaitable[AttendanceRecord]],
    principal: Principal,
    body: AttendanceAction,
    session: AsyncSession,
    settings: EmployeeSettings,
) -> AttendanceRecord:
    require_self_or_admin(principal, body.employee_id)
    try:
        return await action(
            session=session,
            employee_id=body.employee_id,
            now=utcnow(),
            timezone=settings.business_timezone,
        )
    except service.AttendanceError as exc:
        raise HTTPException(400, str(exc)) from None


@router.post("/check-in", response_model=AttendanceRead, responses={400: {}})
async def check_in(
    principal: CurrentPrincipal,
    body: AttendanceAction,
    session: SessionDep,
    settings: SettingsDep,
) -> object:
    return await _record(service.check_in, principal, body, session, settings)


@router.post("/check-out", response_model=AttendanceRead, responses={400: {}})
async def check_out(
    principal: CurrentPrincipal,
    body: AttendanceAction,
    session: SessionDep,
    settings: SettingsDep,
) -> object:
    return await _record(service.check_out, principal, body, session, settings)


@router.get("/me", response_model=list[AttendanceRead], responses={400: {}})
async def my_attendance(
    principal: CurrentPrincipal,
    session: SessionDep,
    employee_id: Annotated[int, Query(alias="employeeId", ge=1, le=MAX_ID)],
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> object:
    require_self_or_admin(principal, employee_id)
    if start is not None and end is not None and start > end:
        raise HTTPException(400, "from must be on or before to")
    return await service.in_range(session=session, employee_id=employee_id, start=start, end=end)
