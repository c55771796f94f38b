"""Bodies of approval-request-service (camelCase, as its clients expect)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from services.common.limits import Id

MAX_STEPS = 20
TITLE_MAX = 200
CONTENT_MAX = 5000


class RequestType(StrEnum):
    GENERAL = "GENERAL"
    LEAVE = "LEAVE"


class StepStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class FinalStatus(StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    APPROVED = "approved"
    REJECTED = "rejected"


class LeaveInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    startDate: date
    endDate: date
    days: Annotated[int, Field(ge=1, le=366)]
    leaveType: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
    reason: Annotated[str, StringConstraints(max_length=500)] = ""


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: Id
    approverId: Id


class ApprovalCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requesterId: Id
    title: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)
    ]
    content: Annotated[str, StringConstraints(max_length=CONTENT_MAX)] = ""
    steps: Annotated[list[StepIn], Field(min_length=1, max_length=MAX_STEPS)]
    requestType: RequestType = RequestType.GENERAL
    leaveInfo: LeaveInfo | None = None


class Created(BaseModel):
    requestId: int


class Step(BaseModel):
    step: int
    approverId: int
    status: StepStatus
    updatedAt: datetime | None


class ApprovalDocument(BaseModel):
    requestId: int
    requesterId: int
    title: str
    content: str
    steps: list[Step]
    finalStatus: FinalStatus
    requestType: RequestType
    leaveInfo: LeaveInfo | None
    createdAt: datetime
    updatedAt: datetime


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requestId: Id
    step: Id
    approverId: Id
    status: Literal["approved", "rejected"]


class WaitingStep(BaseModel):
    """One step awaiting its approver; what processing rebuilds its inboxes from."""

    requestId: int
    step: int
    requesterId: int
    approverId: int
    title: str
    content: str
