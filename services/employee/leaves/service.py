"""Leave records and their confirmation. A confirmation is keyed by its approval request:
delivered twice, kept once; it approves the request's reservation when there is one, and
records the leave as sent when there is none (requests made before reservations existed)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.employee.employees import service as employees
from services.employee.holidays import service as holidays
from services.employee.leaves.errors import InvalidLeave, UnknownEmployee, conflict
from services.employee.leaves.models import APPROVED, CANCELLED, RELEASED, LeaveRecord
from services.employee.leaves.schemas import LeaveConfirmation
from services.employee.leaves.working_days import (
    HalfDay,
    InvalidDates,
    check_dates,
    working_days_by_year,
)

logger = logging.getLogger(__name__)


async def by_request(
    *, session: AsyncSession, request_id: int, locking: bool = False
) -> LeaveRecord | None:
    query = select(LeaveRecord).where(LeaveRecord.approval_request_id == request_id)
    if locking:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def working_days(
    *, session: AsyncSession, start: date, end: date, half_day: HalfDay | None
) -> dict[int, Decimal]:
    """The server's count per calendar year; InvalidDates for impossible dates."""
    check_dates(start, end, half_day)
    days_off = {
        h.holiday_date for h in await holidays.between(session=session, start=start, end=end)
    }
    return working_days_by_year(start, end, days_off, half_day)


async def record_approved(
    *, session: AsyncSession, data: LeaveConfirmation
) -> tuple[LeaveRecord, bool]:
    """The approved leave, and whether this call approved a reservation. Takes the employee
    lock first, like every change to an employee's leave, then reads at READ COMMITTED
    (the caller's unit of work), so a concurrent delivery of the same request is seen."""
    # Approved before a deactivation, so the leave is still recorded for a deactivated employee.
    employee = await employees.lock(session=session, employee_id=data.employeeId)
    existing = await by_request(session=session, request_id=data.requestId)
    if existing is not None:
        return await _confirm(session=session, record=existing, data=data)
    if employee is None:
        raise UnknownEmployee
    try:
        per_year = await working_days(
            session=session, start=data.startDate, end=data.endDate, half_day=None
        )
    except InvalidDates as exc:
        raise InvalidLeave(str(exc)) from None
    record = LeaveRecord(
        employee_id=data.employeeId,
        start_date=data.startDate,
        end_date=data.endDate,
        days=data.days,
        # Never reserved, the count is the caller's; the server's decides how it splits.
        start_year_days=min(data.days, per_year.get(data.startDate.year, Decimal(0)))
        if data.endDate.year != data.startDate.year
        else data.days,
        leave_type=data.leaveType,
        status=APPROVED,
        reason=data.reason,
        approval_request_id=data.requestId,
    )
    logger.info(
        "recording approved leave of employee %d for request %d", data.employeeId, data.requestId
    )
    try:
        async with session.begin_nested():
            session.add(record)
    except IntegrityError:
        # Same request for another employee at the same moment: the unique key settles it.
        winner = await by_request(session=session, request_id=data.requestId, locking=True)
        if winner is None:
            raise
        return winner, False
    return record, False


async def _confirm(
    *, session: AsyncSession, record: LeaveRecord, data: LeaveConfirmation
) -> tuple[LeaveRecord, bool]:
    if record.status in (APPROVED, CANCELLED):
        # Cancelled: its request was cancelled before this confirmation came; it stays so.
        return record, False
    record = await by_request(session=session, request_id=data.requestId, locking=True) or record
    same = (
        record.employee_id == data.employeeId
        and record.start_date == data.startDate
        and record.end_date == data.endDate
        and record.leave_type.upper() == data.leaveType.upper()
    )
    if not same:
        raise conflict(f"Request {data.requestId} already has a different reservation")
    if record.status == RELEASED:
        raise conflict(f"Leave of request {data.requestId} was released")
    # Its count stays the server's, whatever the confirmation carries; an expired
    # reservation is approved too: the decision is made and the leave is taken.
    logger.info("approving the reserved leave of request %d", data.requestId)
    record.status = APPROVED
    record.expires_at = None
    record.reason = data.reason
    await session.flush()
    return record, True


async def approved_for(*, session: AsyncSession, employee_id: int) -> Sequence[LeaveRecord]:
    """Recorded leave: reservations awaiting a decision show in the balance instead."""
    query = select(LeaveRecord).where(
        LeaveRecord.employee_id == employee_id, LeaveRecord.status == APPROVED
    )
    return (await session.scalars(query.order_by(LeaveRecord.start_date, LeaveRecord.id))).all()
