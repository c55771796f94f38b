"""HTTP surface of leave: records, types, entitlements, balances, the report, and the
internal confirmation of an approved leave."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from services.common.auth import (
    CurrentPrincipal,
    ServiceCaller,
    require_admin,
    require_self_or_admin,
)
from services.common.limits import MAX_ID
from services.employee.db import utcnow
from services.employee.deps import LockingSessionDep, SessionDep
from services.employee.employees.models import NAME_MAX
from services.employee.leaves import balances, service
from services.employee.leaves.errors import InvalidLeave, Refused, UnknownEmployee
from services.employee.leaves.metrics import RESERVATIONS
from services.employee.leaves.models import LEAVE_TYPE_MAX
from services.employee.leaves.schemas import (
    MAX_YEAR,
    MIN_YEAR,
    BalanceRead,
    EntitlementRead,
    EntitlementWrite,
    LeaveConfirmation,
    LeaveRead,
    LeaveTypeRead,
    LeaveTypeWrite,
    ReportRow,
    WorkingDaysRead,
)
from services.employee.leaves.working_days import HalfDay, InvalidDates

router = APIRouter(prefix="/leaves", tags=["leaves"])

EMPLOYEE_NOT_FOUND = "Employee not found"
YearQuery = Annotated[int, Query(ge=MIN_YEAR, le=MAX_YEAR)]
FIRST_DAY, LAST_DAY = date(MIN_YEAR, 1, 1), date(MAX_YEAR, 12, 31)


@router.get("/me", response_model=list[LeaveRead])
async def my_leaves(
    principal: CurrentPrincipal,
    session: SessionDep,
    employee_id: Annotated[int, Query(alias="employeeId", ge=1, le=MAX_ID)],
) -> object:
    require_self_or_admin(principal, employee_id)
    return await service.approved_for(session=session, employee_id=employee_id)


@router.get("/types", response_model=list[LeaveTypeRead])
async def list_leave_types(principal: CurrentPrincipal, session: SessionDep) -> object:
    return await balances.leave_types(session=session)


@router.get("/working-days", response_model=WorkingDaysRead, responses={400: {}})
async def count_working_days(
    principal: CurrentPrincipal,
    session: SessionDep,
    start: Annotated[date, Query(alias="startDate", ge=FIRST_DAY, le=LAST_DAY)],
    end: Annotated[date, Query(alias="endDate", ge=FIRST_DAY, le=LAST_DAY)],
    half_day: Annotated[HalfDay | None, Query(alias="halfDay")] = None,
) -> WorkingDaysRead:
    """The count a reservation of these dates would take, so a form shows it before
    sending; 0 is an answer here, the reservation refuses it."""
    try:
        per_year = await service.working_days(
            session=session, start=start, end=end, half_day=half_day
        )
    except InvalidDates as exc:
        raise HTTPException(400, str(exc)) from None
    return WorkingDaysRead(
        days=sum(per_year.values(), Decimal(0)),
        perYear={str(year): days for year, days in sorted(per_year.items())},
    )


@router.put("/types/{code}", response_model=LeaveTypeRead)
async def put_leave_type(
    principal: CurrentPrincipal,
    code: Annotated[str, Path(pattern=r"^[A-Za-z0-9_]+$", max_length=LEAVE_TYPE_MAX)],
    body: LeaveTypeWrite,
    session: SessionDep,
) -> object:
    """Creates or changes a type; ``annual_days`` null makes it unlimited."""
    require_admin(principal)
    return await balances.put_leave_type(
        session=session, code=code, name=body.name, annual_days=body.annual_days
    )


@router.put("/entitlements", response_model=EntitlementRead, responses={400: {}, 404: {}})
async def put_entitlement(
    principal: CurrentPrincipal, body: EntitlementWrite, session: SessionDep
) -> object:
    """Overrides the type's annual_days for one employee and calendar year."""
    require_admin(principal)
    try:
        return await balances.put_entitlement(
            session=session,
            employee_id=body.employee_id,
            code=body.leave_type,
            year=body.year,
            days=body.days,
        )
    except UnknownEmployee:
        raise HTTPException(404, EMPLOYEE_NOT_FOUND) from None
    except Refused as exc:
        raise HTTPException(exc.status_code, exc.detail) from None


@router.get("/balance", response_model=list[BalanceRead], responses={404: {}})
async def leave_balance(
    principal: CurrentPrincipal,
    session: SessionDep,
    employee_id: Annotated[int, Query(alias="employeeId", ge=1, le=MAX_ID)],
    year: YearQuery,
) -> object:
    """``used``: approved leave; ``reserved``: leave awaiting a decision; counted in the
    calendar year each day falls in."""
    require_self_or_admin(principal, employee_id)
    try:
        return await balances.balances(
            session=session, employee_id=employee_id, year=year, now=utcnow()
        )
    except UnknownEmployee:
        raise HTTPException(404, EMPLOYEE_NOT_FOUND) from None


@router.get("/report", response_model=list[ReportRow])
async def leave_report(
    principal: CurrentPrincipal,
    session: SessionDep,
    year: YearQuery,
    department: Annotated[str | None, Query(min_length=1, max_length=NAME_MAX)] = None,
) -> object:
    """Approved leave counted in the year, per department and leave type."""
    require_admin(principal)
    return await balances.report(session=session, year=year, department=department)


@router.post("/internal/approved", response_model=LeaveRead, responses={400: {}, 404: {}, 409: {}})
async def record_approved_leave(
    caller: ServiceCaller, body: LeaveConfirmation, session: LockingSessionDep
) -> object:
    """Called by approval-request-service; idempotent on ``requestId``. Approves the
    request's reservation, or records the leave as sent if it was never reserved."""
    try:
        record, confirmed = await service.record_approved(session=session, data=body)
    except UnknownEmployee:
        raise HTTPException(404, EMPLOYEE_NOT_FOUND) from None
    except InvalidLeave as exc:
        raise HTTPException(400, str(exc)) from None
    except Refused as exc:
        raise HTTPException(exc.status_code, exc.detail) from None
    if confirmed:
        RESERVATIONS.labels("confirmed").inc()
    return record
