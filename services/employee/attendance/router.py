"""HTTP surface of attendance."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from services.common.auth import CurrentPrincipal, require_self_or_admin
from services.employee.attendance import service
from services.employee.attendance.schemas import AttendanceAction, AttendanceRead
from services.employee.db import utcnow
from services.employee.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/attendance", tags=["attendance"])


@router.post("/check-in", response_model=AttendanceRead, responses={400: {}})
async def check_in(
    principal: CurrentPrincipal,
    body: AttendanceAction,
    session: SessionDep,
    settings: SettingsDep,
) -> object:
    require_self_or_admin(principal, body.employee_id)
    try:
        return await service.check_in(
            session=session,
            employee_id=body.employee_id,
            now=utcnow(),
            timezone=settings.business_timezone,
        )
    except service.AttendanceError as exc:
        raise HTTPException(400, str(exc)) from None


@router.post("/check-out", response_model=AttendanceRead, responses={400: {}})
async def check_out(
    principal: CurrentPrincipal,
    body: AttendanceAction,
    session: SessionDep,
    settings: SettingsDep,
) -> object:
    require_self_or_admin(principal, body.employee_id)
    try:
        return await service.check_out(
            session=session,
            employee_id=body.employee_id,
            now=utcnow(),
            timezone=settings.business_timezone,
        )
    except service.AttendanceError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/me", response_model=list[AttendanceRead], responses={400: {}})
async def my_attendance(
    principal: CurrentPrincipal,
    session: SessionDep,
    employee_id: Annotated[int, Query(alias="employeeId", ge=1)],
    start: Annotated[date | None, Query(alias="from")] = None,
    end: Annotated[date | None, Query(alias="to")] = None,
) -> object:
    require_self_or_admin(principal, employee_id)
    if start is not None and end is not None and start > end:
        raise HTTPException(400, "from must be on or before to")
    return await service.in_range(session=session, employee_id=employee_id, start=start, end=end)
