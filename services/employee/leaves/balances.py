"""Leave types, entitlements and balances: how many days each employee may take per type
and calendar year, and how many are taken (approved) or reserved (awaiting a decision)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import case, distinct, func, select
from sqlalchemy.dialects.mysql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.employee.employees import service as employees
from services.employee.employees.models import Employee
from services.employee.leaves.errors import Refused, UnknownEmployee, unknown_type
from services.employee.leaves.models import (
    APPROVED,
    HELD,
    TENTATIVE,
    LeaveEntitlement,
    LeaveRecord,
    LeaveType,
)
from services.employee.leaves.working_days import plain

ZERO = Decimal(0)


@dataclass(frozen=True)
class Balance:
    leave_type: str
    year: int
    entitled: Decimal | None
    used: Decimal
    reserved: Decimal
    remaining: Decimal | None


@dataclass(frozen=True)
class ReportRow:
    department: str
    leave_type: str
    employees: int
    days: Decimal


async def leave_type(*, session: AsyncSession, code: str) -> LeaveType | None:
    """Codes match whatever their case."""
    return await session.get(LeaveType, code.strip().upper())


async def leave_types(*, session: AsyncSession) -> Sequence[LeaveType]:
    return (await session.scalars(select(LeaveType).order_by(LeaveType.code))).all()


async def put_leave_type(
    *, session: AsyncSession, code: str, name: str, annual_days: Decimal | None
) -> LeaveType:
    values = {"code": code.strip().upper(), "name": name, "annual_days": annual_days}
    upsert = insert(LeaveType).values(**values)
    await session.execute(
        upsert.on_duplicate_key_update(
            name=upsert.inserted.name, annual_days=upsert.inserted.annual_days
        )
    )
    return LeaveType(**values)


async def put_entitlement(
    *, session: AsyncSession, employee_id: int, code: str, year: int, days: Decimal
) -> LeaveEntitlement:
    if not await employees.exists(session=session, employee_id=employee_id, include_inactive=False):
        raise UnknownEmployee
    found = await leave_type(session=session, code=code)
    if found is None:
        raise unknown_type(code.strip().upper())
    values = {"employee_id": employee_id, "leave_type": found.code, "year": year, "days": days}
    upsert = insert(LeaveEntitlement).values(**values)
    await session.execute(upsert.on_duplicate_key_update(days=upsert.inserted.days))
    return LeaveEntitlement(**values)


async def counted_leave(
    *, session: AsyncSession, employee_id: int, start: date, end: date, now: datetime
) -> list[LeaveRecord]:
    """The employee's leave that takes days (approved, held, unexpired tentative) and
    touches the dates from start to end."""
    query = select(LeaveRecord).where(
        LeaveRecord.employee_id == employee_id,
        LeaveRecord.start_date <= end,
        LeaveRecord.end_date >= start,
        LeaveRecord.status.in_((APPROVED, HELD, TENTATIVE)),
    )
    return [record for record in await session.scalars(query) if record.counts_at(now)]


async def _entitled(
    *, session: AsyncSession, employee_id: int, year: int
) -> dict[str, Decimal | None]:
    defaults: dict[str, Decimal | None] = {
        kind.code: kind.annual_days for kind in await leave_types(session=session)
    }
    overrides = await session.scalars(
        select(LeaveEntitlement).where(
            LeaveEntitlement.employee_id == employee_id, LeaveEntitlement.year == year
        )
    )
    return defaults | {override.leave_type.upper(): override.days for override in overrides}


def _taken(records: Iterable[LeaveRecord], code: str, year: int, statuses: set[str]) -> Decimal:
    return sum(
        (r.days_in(year) for r in records if r.leave_type.upper() == code and r.status in statuses),
        ZERO,
    )


async def balances(
    *, session: AsyncSession, employee_id: int, year: int, now: datetime
) -> list[Balance]:
    if not await employees.exists(session=session, employee_id=employee_id, include_inactive=True):
        raise UnknownEmployee
    entitled = await _entitled(session=session, employee_id=employee_id, year=year)
    records = await counted_leave(
        session=session,
        employee_id=employee_id,
        start=date(year, 1, 1),
        end=date(year, 12, 31),
        now=now,
    )
    result = []
    for code, days in sorted(entitled.items()):
        used = _taken(records, code, year, {APPROVED})
        reserved = _taken(records, code, year, {HELD, TENTATIVE})
        remaining = None if days is None else days - used - reserved
        result.append(Balance(code, year, days, used, reserved, remaining))
    return result


async def _entitled_to(
    *, session: AsyncSession, employee_id: int, kind: LeaveType, year: int
) -> Decimal | None:
    """One type's entitlement: the admin's override for that year, else the type's."""
    override = await session.scalar(
        select(LeaveEntitlement.days).where(
            LeaveEntitlement.employee_id == employee_id,
            LeaveEntitlement.year == year,
            LeaveEntitlement.leave_type == kind.code,
        )
    )
    return kind.annual_days if override is None else override


async def check_balance(
    *,
    session: AsyncSession,
    employee_id: int,
    kind: LeaveType,
    needed: dict[int, Decimal],
    counted: Iterable[LeaveRecord],
) -> None:
    """Each calendar year's part of a leave must fit that year's balance."""
    code = kind.code
    for year, days in sorted(needed.items()):
        entitled = await _entitled_to(
            session=session, employee_id=employee_id, kind=kind, year=year
        )
        if entitled is None:
            continue
        remaining = entitled - _taken(counted, code, year, {APPROVED, HELD, TENTATIVE})
        if days > remaining:
            raise Refused(
                "insufficient_balance",
                f"Insufficient leave balance for {code}: {plain(max(remaining, ZERO))} days left",
            )


async def report(*, session: AsyncSession, year: int, department: str | None) -> list[ReportRow]:
    """Approved leave counted in `year`, per department (the employee's current one) and
    type."""
    days_in_year = case(
        (func.year(LeaveRecord.start_date) == year, LeaveRecord.start_year_days),
        else_=LeaveRecord.days - LeaveRecord.start_year_days,
    )
    kind = func.upper(LeaveRecord.leave_type)
    query = (
        select(
            Employee.department,
            kind,
            func.count(distinct(LeaveRecord.employee_id)),
            func.sum(days_in_year),
        )
        .join(Employee, Employee.id == LeaveRecord.employee_id)
        .where(
            LeaveRecord.status == APPROVED,
            LeaveRecord.start_date <= date(year, 12, 31),
            LeaveRecord.end_date >= date(year, 1, 1),
            days_in_year > 0,
        )
        .group_by(Employee.department, kind)
        .order_by(Employee.department, kind)
    )
    if department is not None:
        query = query.where(Employee.department == department)
    return [ReportRow(*row) for row in await session.execute(query)]
