"""Leave records. A confirmation is keyed by its approval request: delivered twice, kept once."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.employee.employees import service as employees
from services.employee.leaves.models import LeaveRecord
from services.employee.leaves.schemas import LeaveConfirmation

APPROVED = "approved"
logger = logging.getLogger(__name__)


class UnknownEmployee(Exception):
    pass


class InvalidLeave(Exception):
    pass


async def _by_request(
    *, session: AsyncSession, request_id: int, locking: bool = False
) -> LeaveRecord | None:
    query = select(LeaveRecord).where(LeaveRecord.approval_request_id == request_id)
    # A shared lock is enough to read the latest committed row, and it does not queue
    # behind the shared locks the other losers of the same duplicate insert hold on it.
    return await session.scalar(query.with_for_update(read=True) if locking else query)


async def record_approved(*, session: AsyncSession, data: LeaveConfirmation) -> LeaveRecord:
    # A plain read: a locking one on a missing key locks the gap it would go in, and new
    # request ids all share the gap at the end of the unique index, so two deliveries of
    # different requests would deadlock on their inserts. A concurrent delivery of the same
    # request is settled by the unique key below instead.
    existing = await _by_request(session=session, request_id=data.requestId)
    if existing is not None:
        return existing
    # Approved before a deactivation, so the leave is still recorded for a deactivated employee.
    if not await employees.exists(
        session=session, employee_id=data.employeeId, include_inactive=True
    ):
        raise UnknownEmployee
    if data.endDate < data.startDate:
        raise InvalidLeave("endDate must not be before startDate")
    record = LeaveRecord(
        employee_id=data.employeeId,
        start_date=data.startDate,
        end_date=data.endDate,
        days=data.days,
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
        # A concurrent delivery of the same request won the unique key; answer with its row
        # (a locking read sees the latest committed row, not this transaction's snapshot).
        winner = await _by_request(session=session, request_id=data.requestId, locking=True)
        if winner is None:
            raise
        return winner
    return record


async def for_employee(*, session: AsyncSession, employee_id: int) -> Sequence[LeaveRecord]:
    query = select(LeaveRecord).where(LeaveRecord.employee_id == employee_id)
    return (await session.scalars(query.order_by(LeaveRecord.start_date, LeaveRecord.id))).all()
