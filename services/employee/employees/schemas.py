"""Request and response bodies of the employee endpoints (snake_case, as clients expect)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from services.employee.employees.models import NAME_MAX

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)]


class EmployeeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text
    department: Text
    position: Text


class EmployeeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text | None = None
    department: Text | None = None
    position: Text | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> EmployeeUpdate:
        nulls = [name for name in self.model_fields_set if getattr(self, name) is None]
        if nulls:
            raise ValueError(f"{', '.join(sorted(nulls))} cannot be null")
        return self


class EmployeeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    department: str
    position: str
    created_at: datetime


class DirectoryEntry(BaseModel):
    """What any signed-in person may read about a colleague: enough to pick one by name."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    department: str
    position: str
