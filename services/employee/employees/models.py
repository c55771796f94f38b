"""The ``employees`` table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from services.employee.db import Base, UTCDateTime, utcnow

NAME_MAX = 100


class Employee(Base):
    __tablename__ = "employees"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    department: Mapped[str] = mapped_column(String(NAME_MAX))
    position: Mapped[str] = mapped_column(String(NAME_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set by DELETE: the row and its history stay; the employee leaves every read.
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
