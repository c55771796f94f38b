"""Employee rules. Functions flush but never commit: the request's unit of work does."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.employee.db import utcnow
from services.employee.employees.models import Employee
from services.employee.employees.schemas import EmployeeCreate, EmployeeUpdate


async def create(*, session: AsyncSession, data: EmployeeCreate) -> Employee:
    employee = Employee(**data.model_dump())
    session.add(employee)
    await session.flush()
    return employee


async def get_active(*, session: AsyncSession, employee_id: int) -> Employee | None:
    employee = await session.get(Employee, employee_id)
    if employee is None or employee.deactivated_at is not None:
        return None
    return employee


async def exists(*, session: AsyncSession, employee_id: int, include_inactive: bool) -> bool:
    query = select(Employee.id).where(Employee.id == employee_id)
    if not include_inactive:
        query = query.where(Employee.deactivated_at.is_(None))
    return (await session.scalar(query)) is not None


async def list_active(
    *, session: AsyncSession, limit: int, offset: int, ids: Sequence[int] | None = None
) -> Sequence[Employee]:
    query = select(Employee).where(Employee.deactivated_at.is_(None)).order_by(Employee.id)
    if ids is not None:
        query = query.where(Employee.id.in_(ids))
    return (await session.scalars(query.limit(limit).offset(offset))).all()


async def directory(*, session: AsyncSession, q: str, limit: int) -> Sequence[Employee]:
    """Active employees whose name holds `q` (any case), by name then id: what a signed-in
    person needs to pick an approver by name. `%` and `_` in `q` match themselves."""
    query = select(Employee).where(Employee.deactivated_at.is_(None))
    if q:
        query = query.where(Employee.name.icontains(q, autoescape=True))
    return (await session.scalars(query.order_by(Employee.name, Employee.id).limit(limit))).all()


async def update(*, session: AsyncSession, employee: Employee, data: EmployeeUpdate) -> Employee:
    for field, value in data.model_dump(exclude_unset=True).items():
        setattr(employee, field, value)
    await session.flush()
    return employee


async def deactivate(*, session: AsyncSession, employee: Employee) -> None:
    """History (attendance, leave, approvals elsewhere) keeps pointing at a row that stays."""
    employee.deactivated_at = utcnow()
    await session.flush()


async def lock(*, session: AsyncSession, employee_id: int) -> Employee | None:
    """The employee row, locked until the transaction ends: every change to an employee's
    leave takes this lock first, so the checks of two reservations of one employee never
    interleave, whichever process runs them."""
    query = select(Employee).where(Employee.id == employee_id).with_for_update()
    return await session.scalar(query.execution_options(populate_existing=True))
