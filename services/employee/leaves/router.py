"""HTTP surface of leave records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from services.common.auth import CurrentPrincipal, ServiceCaller, require_self_or_admin
from services.common.limits import MAX_ID
from services.employee.deps import SessionDep
from services.employee.leaves import service
from services.employee.leaves.schemas import LeaveConfirmation, LeaveRead

router = APIRouter(prefix="/leaves", tags=["leaves"])


@router.get("/me", response_model=list[LeaveRead])
async def my_leaves(
    principal: CurrentPrincipal,
    session: SessionDep,
    employee_id: Annotated[int, Query(alias="employeeId", ge=1, le=MAX_ID)],
) -> object:
    require_self_or_admin(principal, employee_id)
    return await service.for_employee(session=session, employee_id=employee_id)


@router.post("/internal/approved", response_model=LeaveRead, responses={400: {}, 404: {}})
async def record_approved_leave(
    caller: ServiceCaller, body: LeaveConfirmation, session: SessionDep
) -> object:
    """Called by approval-request-service; idempotent on ``requestId``."""
    try:
        return await service.record_approved(session=session, data=body)
    except service.UnknownEmployee:
        raise HTTPException(404, "Employee not found") from None
    except service.InvalidLeave as exc:
        raise HTTPException(400, str(exc)) from None
