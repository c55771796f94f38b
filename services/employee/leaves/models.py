"""The leave tables. ``leave_records`` holds reservations and approved leave alike (its
``status``), keyed by the approval request they came from, which makes every internal call
idempotent; ``leave_types`` and ``leave_entitlements`` say how many days each one allows."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from services.employee.db import Base, UTCDateTime, utcnow

LEAVE_TYPE_MAX = 30
LEAVE_TYPE_NAME_MAX = 100
REASON_MAX = 500
# Half days, up to 999.5: a leave counts 366 working days at most.
DAYS = Numeric(4, 1)

TENTATIVE = "tentative"  # reserved; counts until expires_at unless held
HELD = "held"  # its approval request is stored: counts until decided
APPROVED = "approved"
RELEASED = "released"  # rejected or withdrawn: kept, no longer counted
EXPIRED = "expired"  # tentative past expires_at: its request was never stored
CANCELLED = "cancelled"  # approved, then called off before it started: kept, not counted


class LeaveRecord(Base):
    __tablename__ = "leave_records"
    __table_args__ = (
        UniqueConstraint("approval_request_id", name="uq_leave_approval_request"),
        Index("ix_leave_records_status_expires_at", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    employee_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("employees.id"), index=True)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    days: Mapped[Decimal] = mapped_column(DAYS)
    # The part of `days` counted in start_date's year; the rest counts in end_date's year.
    start_year_days: Mapped[Decimal] = mapped_column(DAYS)
    leave_type: Mapped[str] = mapped_column(String(LEAVE_TYPE_MAX))
    half_day: Mapped[str | None] = mapped_column(String(2), default=None)
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(REASON_MAX), default="")
    approval_request_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def counts_at(self, now: datetime) -> bool:
        """Whether it takes days from the balance and blocks overlapping leave."""
        if self.status == TENTATIVE:
            return self.expires_at is not None and self.expires_at > now
        return self.status in (HELD, APPROVED)

    def status_at(self, now: datetime) -> str:
        """The status, with a tentative reservation past its expiry shown as expired before
        the sweep has marked it."""
        return EXPIRED if self.status == TENTATIVE and not self.counts_at(now) else self.status

    def days_in(self, year: int) -> Decimal:
        if self.start_date.year == year:
            return self.start_year_days
        if self.end_date.year == year:
            return self.days - self.start_year_days
        return Decimal(0)


class LeaveType(Base):
    __tablename__ = "leave_types"

    code: Mapped[str] = mapped_column(String(LEAVE_TYPE_MAX), primary_key=True)
    name: Mapped[str] = mapped_column(String(LEAVE_TYPE_NAME_MAX))
    # None: unlimited.
    annual_days: Mapped[Decimal | None] = mapped_column(DAYS, default=None)


class LeaveEntitlement(Base):
    """An administrator's override of a type's annual_days for one employee and year."""

    __tablename__ = "leave_entitlements"

    employee_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("employees.id"), primary_key=True
    )
    leave_type: Mapped[str] = mapped_column(
        String(LEAVE_TYPE_MAX), ForeignKey("leave_types.code"), primary_key=True
    )
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    days: Mapped[Decimal] = mapped_column(DAYS)
