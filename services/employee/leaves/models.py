"""The ``leave_records`` table; ``approval_request_id`` makes confirmation idempotent."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.employee.db import Base, UTCDateTime, utcnow

LEAVE_TYPE_MAX = 30
REASON_MAX = 500


class LeaveRecord(Base):
    __tablename__ = "leave_records"
    __table_args__ = (UniqueConstraint("approval_request_id", name="uq_leave_approval_request"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    employee_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("employees.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    days: Mapped[int] = mapped_column(Integer)
    leave_type: Mapped[str] = mapped_column(String(LEAVE_TYPE_MAX))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(REASON_MAX), default="")
    approval_request_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
