"""HTTP surface of employees: parse, call one service function, map the result."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from services.common.auth import CurrentPrincipal, require_admin, require_self_or_admin
from services.common.limits import MAX_ID, PathId
from services.employee.deps import SessionDep
from services.employee.employees import service
from services.employee.employees.models import NAME_MAX
from services.employee.employees.schemas import (
    DirectoryEntry,
    EmployeeCreate,
    EmployeeRead,
    EmployeeUpdate,
)

router = APIRouter(prefix="/employees", tags=["employees"])

NOT_FOUND = "Employee not found"
MAX_PAGE = 500
DIRECTORY_MAX = 200


def _parse_ids(raw: str) -> list[int]:
    try:
        ids = sorted({int(part) for part in raw.split(",") if part.strip()})
    except ValueError:
        raise HTTPException(400, "ids must be a comma-separated list of integers") from None
    if not ids or ids[0] < 1 or ids[-1] > MAX_ID or len(ids) > MAX_PAGE:
        raise HTTPException(400, f"ids must hold 1 to {MAX_PAGE} positive integers")
    return ids


@router.post("", status_code=status.HTTP_201_CREATED, response_model=EmployeeRead)
async def create_employee(
    principal: CurrentPrincipal, body: EmployeeCreate, session: SessionDep
) -> object:
    require_admin(principal)
    return await service.create(session=session, data=body)


@router.get("", response_model=list[EmployeeRead])
async def list_employees(
    principal: CurrentPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ids: Annotated[str | None, Query(description="e.g. 1,2,3", max_length=5000)] = None,
) -> object:
    require_admin(principal, or_service=True)
    wanted = _parse_ids(ids) if ids is not None else None
    return await service.list_active(session=session, limit=limit, offset=offset, ids=wanted)


# Declared before /{employee_id}, which would otherwise take "directory" for an id.
@router.get("/directory", response_model=list[DirectoryEntry])
async def employee_directory(
    principal: CurrentPrincipal,
    session: SessionDep,
    q: Annotated[str, Query(description="part of a name, any case", max_length=NAME_MAX)] = "",
    limit: Annotated[int, Query(ge=1, le=DIRECTORY_MAX)] = 50,
) -> object:
    """Any signed-in caller may pick a colleague by name; no more than id, name, department
    and position is shown (an approver picker in production, where no development sign-in
    lists the employees)."""
    return await service.directory(session=session, q=q.strip(), limit=limit)


@router.get("/{employee_id}", response_model=EmployeeRead, responses={404: {}})
async def get_employee(
    principal: CurrentPrincipal, employee_id: PathId, session: SessionDep
) -> object:
    if not principal.service:
        require_self_or_admin(principal, employee_id)
    employee = await service.get_active(session=session, employee_id=employee_id)
    if employee is None:
        raise HTTPException(404, NOT_FOUND)
    return employee


@router.patch("/{employee_id}", response_model=EmployeeRead, responses={404: {}})
async def update_employee(
    principal: CurrentPrincipal, employee_id: PathId, body: EmployeeUpdate, session: SessionDep
) -> object:
    require_admin(principal)
    employee = await service.get_active(session=session, employee_id=employee_id)
    if employee is None:
        raise HTTPException(404, NOT_FOUND)
    return await service.update(session=session, employee=employee, data=body)


@router.delete("/{employee_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
async def delete_employee(
    principal: CurrentPrincipal, employee_id: PathId, session: SessionDep
) -> None:
    """Deactivates: the employee leaves every read, but no history is erased."""
    require_admin(principal)
    employee = await service.get_active(session=session, employee_id=employee_id)
    if employee is None:
        raise HTTPException(404, NOT_FOUND)
    await service.deactivate(session=session, employee=employee)
