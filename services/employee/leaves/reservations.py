"""Leave reservations, the employee-service side of a LEAVE request's life: reserved when
the request is made (tentative: it expires unless held, so a requester that crashed before
storing its request never keeps the days), held once the request is stored, approved by
the confirmation, released when rejected or withdrawn. Every step is idempotent on the
approval request id and takes the employee's row lock before it checks anything."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.employee.employees import service as employees
from services.employee.leaves import balances
from services.employee.leaves.errors import NotFound, Refused, UnknownEmployee, conflict
from services.employee.leaves.errors import unknown_type as unknown_type_refusal
from services.employee.leaves.models import (
    APPROVED,
    CANCELLED,
    EXPIRED,
    HELD,
    RELEASED,
    TENTATIVE,
    LeaveRecord,
)
from services.employee.leaves.schemas import ReservationWrite
from services.employee.leaves.service import by_request, working_days
from services.employee.leaves.working_days import HalfDay, InvalidDates, plain

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leave:
    """What a reservation asks for."""

    employee_id: int
    leave_type: str
    start: date
    end: date
    half_day: HalfDay | None
    days: Decimal | None = None


async def _admit(
    *, session: AsyncSession, leave: Leave, request_id: int, now: datetime
) -> tuple[str, dict[int, Decimal]]:
    """The type's code and the server's count per year, once every rule passes."""
    found = await balances.leave_type(session=session, code=leave.leave_type)
    if found is None:
        raise unknown_type_refusal(leave.leave_type.strip().upper())
    try:
        per_year = await working_days(
            session=session, start=leave.start, end=leave.end, half_day=leave.half_day
        )
    except InvalidDates as exc:
        raise Refused("invalid_dates", str(exc)) from None
    total = sum(per_year.values(), Decimal(0))
    if total == 0:
        raise Refused("no_working_days", "Leave covers no working days")
    if leave.days is not None and leave.days != total:
        raise Refused(
            "days_mismatch", f"days does not match the dates ({plain(total)} working days)"
        )
    counted = await balances.counted_leave(
        session=session,
        employee_id=leave.employee_id,
        start=date(leave.start.year, 1, 1),
        end=date(leave.end.year, 12, 31),
        now=now,
    )
    counted = [r for r in counted if r.approval_request_id != request_id]
    for other in counted:
        if _overlap(other, leave):
            raise Refused(
                "overlap",
                f"Leave overlaps request {other.approval_request_id}",
                status_code=409,
            )
    await balances.check_balance(
        session=session,
        employee_id=leave.employee_id,
        kind=found,
        needed=per_year,
        counted=counted,
    )
    return found.code, per_year


def _overlap(record: LeaveRecord, leave: Leave) -> bool:
    if record.start_date > leave.end or record.end_date < leave.start:
        return False
    # The morning and the afternoon of one day are two leaves that fit together.
    halves = {record.half_day, leave.half_day}
    return not (record.start_date == leave.start and halves == {"am", "pm"})


def _place(record: LeaveRecord, per_year: dict[int, Decimal]) -> None:
    record.days = sum(per_year.values(), Decimal(0))
    record.start_year_days = per_year.get(record.start_date.year, Decimal(0))


def _same(record: LeaveRecord, leave: Leave) -> bool:
    return (
        record.employee_id == leave.employee_id
        and record.leave_type.upper() == leave.leave_type.strip().upper()
        and record.start_date == leave.start
        and record.end_date == leave.end
        and record.half_day == leave.half_day
        and (leave.days is None or leave.days == record.days)
    )


async def reserve(
    *, session: AsyncSession, data: ReservationWrite, now: datetime, ttl: timedelta
) -> tuple[LeaveRecord, bool]:
    """The reservation and whether this call made it (False: a repeat answered as before)."""
    leave = Leave(
        employee_id=data.employeeId,
        leave_type=data.leaveType,
        start=data.startDate,
        end=data.endDate,
        half_day=data.halfDay,
        days=data.days,
    )
    employee = await employees.lock(session=session, employee_id=data.employeeId)
    if employee is None or employee.deactivated_at is not None:
        raise UnknownEmployee
    existing = await by_request(session=session, request_id=data.requestId)
    if existing is not None:
        return await _repeat(session=session, record=existing, leave=leave, now=now, ttl=ttl)
    code, per_year = await _admit(session=session, leave=leave, request_id=data.requestId, now=now)
    record = LeaveRecord(
        employee_id=data.employeeId,
        start_date=data.startDate,
        end_date=data.endDate,
        leave_type=code,
        half_day=data.halfDay,
        status=TENTATIVE,
        reason="",
        approval_request_id=data.requestId,
        expires_at=now + ttl,
    )
    _place(record, per_year)
    session.add(record)
    try:
        await session.flush()
    except IntegrityError:
        # The same request id reserved for another employee at the same moment. No savepoint
        # to roll back to: the refusal ends the unit of work, which rolls it all back.
        raise conflict(f"Request {data.requestId} already has a different reservation") from None
    return record, True


async def _repeat(
    *, session: AsyncSession, record: LeaveRecord, leave: Leave, now: datetime, ttl: timedelta
) -> tuple[LeaveRecord, bool]:
    request_id = record.approval_request_id
    if not _same(record, leave):
        raise conflict(f"Request {request_id} already has a different reservation")
    status = record.status_at(now)
    if status == RELEASED:
        raise conflict(f"Reservation of request {request_id} was released")
    if status != EXPIRED:
        return record, False
    # A retry after its reservation expired: reserved anew if the days are still free.
    return await _revive(session=session, record=record, now=now, status=TENTATIVE, ttl=ttl), True


async def _revive(
    *, session: AsyncSession, record: LeaveRecord, now: datetime, status: str, ttl: timedelta
) -> LeaveRecord:
    leave = Leave(
        employee_id=record.employee_id,
        leave_type=record.leave_type,
        start=record.start_date,
        end=record.end_date,
        half_day=record.half_day,  # type: ignore[arg-type]
    )
    request_id = record.approval_request_id or 0
    _, per_year = await _admit(session=session, leave=leave, request_id=request_id, now=now)
    _place(record, per_year)
    record.status = status
    record.expires_at = now + ttl if status == TENTATIVE else None
    await session.flush()
    return record


async def _locked(*, session: AsyncSession, request_id: int) -> LeaveRecord:
    found = await by_request(session=session, request_id=request_id)
    if found is None:
        raise NotFound
    await employees.lock(session=session, employee_id=found.employee_id)
    locked = await by_request(session=session, request_id=request_id, locking=True)
    if locked is None:
        raise NotFound
    return locked


async def hold(
    *, session: AsyncSession, request_id: int, now: datetime
) -> tuple[LeaveRecord, bool]:
    """Its request is stored: the days stay reserved until the decision, with no expiry."""
    record = await _locked(session=session, request_id=request_id)
    status = record.status_at(now)
    if status in (HELD, APPROVED):
        return record, False
    if status == RELEASED:
        raise conflict(f"Reservation of request {request_id} was released")
    if status == EXPIRED:
        logger.info("holding the expired reservation of request %d anew", request_id)
        return await _revive(
            session=session, record=record, now=now, status=HELD, ttl=timedelta()
        ), True
    record.status = HELD
    record.expires_at = None
    await session.flush()
    return record, True


async def release(
    *, session: AsyncSession, request_id: int, now: datetime
) -> tuple[LeaveRecord, bool]:
    """Rejected or withdrawn: the days are free again; the record stays, marked released."""
    record = await _locked(session=session, request_id=request_id)
    if record.status == APPROVED:
        raise conflict(f"Leave of request {request_id} is already approved")
    if record.status == RELEASED:
        return record, False
    record.status = RELEASED
    record.expires_at = None
    await session.flush()
    return record, True


async def cancel(*, session: AsyncSession, request_id: int) -> tuple[LeaveRecord, bool]:
    """An approved leave called off before it started: its days count no more; the record
    stays, marked cancelled. Whether this call cancelled it (False: cancelled before). A
    held reservation is cancelled too: its request was approved and then cancelled before
    the confirmation arrived (which then leaves it cancelled)."""
    record = await _locked(session=session, request_id=request_id)
    if record.status == CANCELLED:
        return record, False
    if record.status not in (APPROVED, HELD):
        raise conflict(f"Leave of request {request_id} is {record.status}, not approved")
    record.status = CANCELLED
    record.expires_at = None
    await session.flush()
    return record, True


async def get(*, session: AsyncSession, request_id: int) -> LeaveRecord:
    found = await by_request(session=session, request_id=request_id)
    if found is None:
        raise NotFound
    return found


async def expire_overdue(*, session: AsyncSession, now: datetime) -> int:
    """Marks tentative reservations past their expiry; they stopped counting already."""
    result = await session.execute(
        update(LeaveRecord)
        .where(LeaveRecord.status == TENTATIVE, LeaveRecord.expires_at <= now)
        .values(status=EXPIRED)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))
