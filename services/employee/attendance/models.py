"""The ``attendance_records`` table: one row per employee and working day."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.employee.db import Base, UTCDateTime, utcnow


class AttendanceRecord(Base):
    __tablename__ = "attendance_records"
    __table_args__ = (
        UniqueConstraint("employee_id", "attendance_date", name="uq_attendance_employee_day"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    employee_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("employees.id"))
    attendance_date: Mapped[date] = mapped_column(Date)
    check_in: Mapped[datetime] = mapped_column(UTCDateTime())
    check_out: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    work_minutes: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
