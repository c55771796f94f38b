"""Bodies of the holiday endpoints."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.employee.holidays.models import HOLIDAY_NAME_MAX


class HolidayWrite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=HOLIDAY_NAME_MAX)
    ]


class HolidayRead(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    date: dt.date = Field(validation_alias="holiday_date")
    name: str
