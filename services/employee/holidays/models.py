"""The ``holidays`` table: public holidays, which leave does not count as working days."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Date, String
from sqlalchemy.orm import Mapped, mapped_column

from services.employee.db import Base

HOLIDAY_NAME_MAX = 100


class Holiday(Base):
    __tablename__ = "holidays"

    holiday_date: Mapped[date] = mapped_column(Date, primary_key=True)
    name: Mapped[str] = mapped_column(String(HOLIDAY_NAME_MAX))
