"""Bodies of the leave endpoints. Public ones are snake_case like the rest of the service;
internal ones are camelCase, as their caller (approval-request-service) sends them."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from services.common.limits import Id
from services.employee.leaves.models import LEAVE_TYPE_MAX, LEAVE_TYPE_NAME_MAX, REASON_MAX
from services.employee.leaves.working_days import MAX_SPAN_DAYS, HalfDay

MIN_YEAR = 1900
MAX_YEAR = 2999


def _number(days: Decimal) -> int | float:
    """3, not "3.0" or 3.0: clients compare day counts as numbers and print them."""
    return int(days) if days == days.to_integral_value() else float(days)


# Counts in halves of a day.
Days = Annotated[Decimal, Field(ge=Decimal("0.5"), le=MAX_SPAN_DAYS, multiple_of=Decimal("0.5"))]
Allowance = Annotated[Decimal, Field(ge=0, le=MAX_SPAN_DAYS, multiple_of=Decimal("0.5"))]
DaysOut = Annotated[Decimal, PlainSerializer(_number, return_type=int | float)]
Year = Annotated[int, Field(ge=MIN_YEAR, le=MAX_YEAR)]
LeaveDate = Annotated[date, Field(ge=date(MIN_YEAR, 1, 1), le=date(MAX_YEAR, 12, 31))]
TypeCode = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LEAVE_TYPE_MAX)
]


class LeaveConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employeeId: Id
    startDate: LeaveDate
    endDate: LeaveDate
    days: Days
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
    days: DaysOut
    leave_type: str
    status: str
    reason: str
    created_at: datetime


class LeaveTypeWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=LEAVE_TYPE_NAME_MAX)
    ]
    annual_days: Allowance | None = Field(description="null: unlimited")


class LeaveTypeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    annual_days: DaysOut | None


class WorkingDaysRead(BaseModel):
    """The server's count for dates a LEAVE form is about to send; a calendar year with no
    working day is left out of ``perYear``."""

    days: DaysOut
    perYear: dict[str, DaysOut]


class EntitlementWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: Id
    leave_type: TypeCode
    year: Year
    days: Allowance


class EntitlementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    employee_id: int
    leave_type: str
    year: int
    days: DaysOut


class BalanceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    leave_type: str
    year: int
    entitled: DaysOut | None = Field(description="null: unlimited")
    used: DaysOut
    reserved: DaysOut
    remaining: DaysOut | None = Field(description="null: unlimited")


class ReportRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    department: str
    leave_type: str
    employees: int
    days: DaysOut


class ReservationWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requestId: Id
    employeeId: Id
    leaveType: TypeCode
    startDate: LeaveDate
    endDate: LeaveDate
    halfDay: HalfDay | None = None
    # When sent, it must equal the server's count.
    days: Days | None = None


class ReservationRead(BaseModel):
    requestId: int
    employeeId: int
    leaveType: str
    startDate: date
    endDate: date
    halfDay: HalfDay | None
    days: DaysOut
    status: str
    expiresAt: datetime | None
