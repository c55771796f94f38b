"""Bodies of the leave endpoints. The internal confirmation is camelCase, as its caller sends."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.common.limits import Id
from services.employee.leaves.models import LEAVE_TYPE_MAX, REASON_MAX

MAX_LEAVE_DAYS = 366


class LeaveConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employeeId: Id
    startDate: date
    endDate: date
    days: Annotated[int, Field(ge=1, le=MAX_LEAVE_DAYS)]
    leaveType: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LEAVE_TYPE_MAX)
    ]
    reason: Annotated[str, StringConstraints(max_length=REASON_MAX)] = ""
    requestId: Id


class LeaveRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    employee_id: int
    start_date: date
    end_date: date
    days: int
    leave_type: str
    status: str
    reason: str
    created_at: datetime
