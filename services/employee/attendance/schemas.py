"""Bodies of the attendance endpoints."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from services.common.limits import Id


class AttendanceAction(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: Id


class AttendanceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    employee_id: int
    attendance_date: date
    check_in: datetime
    check_out: datetime | None
    work_minutes: int | None
    created_at: datetime
