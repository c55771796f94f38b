"""Check-in/out rules. One check-in per employee and day is a unique key, not a Python check."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.employee.attendance.models import AttendanceRecord
from services.employee.employees import service as employees


class AttendanceError(Exception):
    """A business rule refused the request; the message is the client-facing text."""


def working_day(moment: datetime, timezone: str) -> date:
    return moment.astimezone(ZoneInfo(timezone)).date()


async def check_in(
    *, session: AsyncSession, employee_id: int, now: datetime, timezone: str
) -> AttendanceRecord:
    if not await employees.exists(session=session, employee_id=employee_id, include_inactive=False):
        raise AttendanceError("Employee not found")
    record = AttendanceRecord(
        employee_id=employee_id, attendance_date=working_day(now, timezone), check_in=now
    )
    session.add(record)
    try:
        await session.flush()
    except IntegrityError:
        raise AttendanceError("Already checked in today") from None
    return record


async def check_out(
    *, session: AsyncSession, employee_id: int, now: datetime, timezone: str
) -> AttendanceRecord:
    record = await session.scalar(
        select(AttendanceRecord)
        .where(
            AttendanceRecord.employee_id == employee_id,
            AttendanceRecord.attendance_date == working_day(now, timezone),
            AttendanceRecord.check_out.is_(None),
        )
        .with_for_update()
    )
    if record is None:
        raise AttendanceError("No active check-in record found for today")
    record.check_out = now
    record.work_minutes = int((now - record.check_in).total_seconds() // 60)
    await session.flush()
    return record


async def in_range(
    *, session: AsyncSession, employee_id: int, start: date | None, end: date | None
) -> Sequence[AttendanceRecord]:
    query = select(AttendanceRecord).where(AttendanceRecord.employee_id == employee_id)
    if start is not None:
        query = query.where(AttendanceRecord.attendance_date >= start)
    if end is not None:
        query = query.where(AttendanceRecord.attendance_date <= end)
    order = (AttendanceRecord.attendance_date, AttendanceRecord.id)
    return (await session.scalars(query.order_by(*order))).all()
