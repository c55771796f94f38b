"""HTTP surface of public holidays: anyone reads them, administrators change them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from services.common.auth import CurrentPrincipal, require_admin
from services.employee.deps import SessionDep
from services.employee.holidays import service
from services.employee.holidays.schemas import HolidayRead, HolidayWrite
from services.employee.leaves.schemas import MAX_YEAR, MIN_YEAR, LeaveDate

router = APIRouter(prefix="/holidays", tags=["holidays"])

HolidayDate = Annotated[LeaveDate, Path(description="YYYY-MM-DD")]


@router.get("", response_model=list[HolidayRead])
async def list_holidays(
    principal: CurrentPrincipal,
    session: SessionDep,
    year: Annotated[int, Query(ge=MIN_YEAR, le=MAX_YEAR)],
) -> object:
    return await service.in_year(session=session, year=year)


@router.put("/{day}", response_model=HolidayRead)
async def put_holiday(
    principal: CurrentPrincipal, day: HolidayDate, body: HolidayWrite, session: SessionDep
) -> object:
    require_admin(principal)
    return await service.put(session=session, day=day, name=body.name)


@router.delete("/{day}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {}})
async def delete_holiday(
    principal: CurrentPrincipal, day: HolidayDate, session: SessionDep
) -> None:
    require_admin(principal)
    if not await service.remove(session=session, day=day):
        raise HTTPException(404, "Holiday not found")
