"""HTTP surface of leave reservations, for approval-request-service only (service
credentials): reserve, hold, release, cancel an approved leave; ``POST
/leaves/internal/approved`` confirms."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, Response, status

from services.common.auth import ServiceCaller
from services.common.limits import PathId
from services.employee.db import utcnow
from services.employee.deps import LockingSessionDep, SessionDep, SettingsDep
from services.employee.leaves import reservations
from services.employee.leaves.errors import NotFound, Refused, UnknownEmployee
from services.employee.leaves.metrics import REFUSED, RESERVATIONS
from services.employee.leaves.models import TENTATIVE, LeaveRecord
from services.employee.leaves.schemas import ReservationRead, ReservationWrite

router = APIRouter(prefix="/leaves/internal/reservations", tags=["leave reservations"])

NOT_FOUND = "Reservation not found"


def _read(record: LeaveRecord) -> ReservationRead:
    current = record.status_at(utcnow())
    return ReservationRead(
        requestId=record.approval_request_id or 0,
        employeeId=record.employee_id,
        leaveType=record.leave_type,
        startDate=record.start_date,
        endDate=record.end_date,
        halfDay=record.half_day,  # type: ignore[arg-type]
        days=record.days,
        status=current,
        expiresAt=record.expires_at if current == TENTATIVE else None,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReservationRead,
    responses={200: {"model": ReservationRead}, 400: {}, 404: {}, 409: {}},
)
async def reserve_leave(
    caller: ServiceCaller,
    body: ReservationWrite,
    session: LockingSessionDep,
    settings: SettingsDep,
    response: Response,
) -> ReservationRead:
    """201 when reserved now; 200 with the same answer when the same request is sent
    again; 409 when its requestId came before with other fields."""
    try:
        record, created = await reservations.reserve(
            session=session,
            data=body,
            now=utcnow(),
            ttl=timedelta(seconds=settings.reservation_ttl_seconds),
        )
    except UnknownEmployee:
        REFUSED.labels("unknown_employee").inc()
        raise HTTPException(404, "Employee not found") from None
    except Refused as exc:
        REFUSED.labels(exc.reason).inc()
        raise HTTPException(exc.status_code, exc.detail) from None
    if created:
        RESERVATIONS.labels("reserved").inc()
    else:
        response.status_code = status.HTTP_200_OK
    return _read(record)


@router.get("/{request_id}", response_model=ReservationRead, responses={404: {}})
async def get_reservation(
    caller: ServiceCaller, request_id: PathId, session: SessionDep
) -> ReservationRead:
    try:
        return _read(await reservations.get(session=session, request_id=request_id))
    except NotFound:
        raise HTTPException(404, NOT_FOUND) from None


@router.post(
    "/{request_id}/hold", response_model=ReservationRead, responses={400: {}, 404: {}, 409: {}}
)
async def hold_reservation(
    caller: ServiceCaller, request_id: PathId, session: LockingSessionDep
) -> ReservationRead:
    """The request is stored: the reservation no longer expires. One that expired already
    is held again if its days are still free."""
    try:
        record, changed = await reservations.hold(
            session=session, request_id=request_id, now=utcnow()
        )
    except NotFound:
        raise HTTPException(404, NOT_FOUND) from None
    except Refused as exc:
        REFUSED.labels(exc.reason).inc()
        raise HTTPException(exc.status_code, exc.detail) from None
    if changed:
        RESERVATIONS.labels("held").inc()
    return _read(record)


@router.post("/{request_id}/release", response_model=ReservationRead, responses={404: {}, 409: {}})
async def release_reservation(
    caller: ServiceCaller, request_id: PathId, session: LockingSessionDep
) -> ReservationRead:
    """Rejected or withdrawn: the days are free again. 409 once the leave is approved."""
    try:
        record, changed = await reservations.release(
            session=session, request_id=request_id, now=utcnow()
        )
    except NotFound:
        raise HTTPException(404, NOT_FOUND) from None
    except Refused as exc:
        raise HTTPException(exc.status_code, exc.detail) from None
    if changed:
        RESERVATIONS.labels("released").inc()
    return _read(record)


@router.post("/{request_id}/cancel", response_model=ReservationRead, responses={404: {}, 409: {}})
async def cancel_leave(
    caller: ServiceCaller, request_id: PathId, session: LockingSessionDep
) -> ReservationRead:
    """An approved leave cancelled before it started: its days return to the balance, once
    (the same call again answers the same, changing nothing); the record is kept, marked
    ``cancelled``. 409 for a reservation released or expired."""
    try:
        record, changed = await reservations.cancel(session=session, request_id=request_id)
    except NotFound:
        raise HTTPException(404, NOT_FOUND) from None
    except Refused as exc:
        raise HTTPException(exc.status_code, exc.detail) from None
    if changed:
        RESERVATIONS.labels("cancelled").inc()
    return _read(record)
