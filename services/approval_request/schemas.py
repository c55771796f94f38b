"""Bodies of approval-request-service (camelCase, as its clients expect)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, StringConstraints

from services.common.limits import Id

MAX_STEPS = 20
TITLE_MAX = 200
CONTENT_MAX = 5000
# An approver's comment on a decision, in characters (any Unicode, kept as sent).
COMMENT_MAX = 1000
Comment = Annotated[str, StringConstraints(max_length=COMMENT_MAX)]


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
    # Taken back by its requester (or an admin) before a final decision.
    WITHDRAWN = "withdrawn"
    # An approved LEAVE request called off before it started; its days are given back.
    CANCELLED = "cancelled"


# A withdrawal's or a cancellation's why (any Unicode, kept as sent).
REASON_MAX = COMMENT_MAX


def day_count(days: float) -> int | float:
    """3, not 3.0: day counts are written as employee-service writes them."""
    return int(days) if days == int(days) else days


# Counts in halves of a day.
Days = Annotated[
    float,
    Field(ge=0.5, le=366, multiple_of=0.5),
    PlainSerializer(day_count, return_type=int | float),
]


# The years employee-service keeps leave for.
LeaveDate = Annotated[date, Field(ge=date(1900, 1, 1), le=date(2999, 12, 31))]


class LeaveInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    startDate: LeaveDate
    endDate: LeaveDate
    # Counted by employee-service from the dates; when sent, it must equal that count.
    days: Days | None = None
    leaveType: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=30)]
    reason: Annotated[str, StringConstraints(max_length=500)] = ""
    # A morning or an afternoon off, on a leave of one day; written only when set, so a
    # full-day leave reads as it did before half days existed.
    halfDay: Literal["am", "pm"] | None = Field(default=None, exclude_if=lambda v: v is None)


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
    # The decision's comment; absent when the approver gave none.
    comment: str | None = Field(default=None, exclude_if=lambda v: v is None)
    # The approver the step was reassigned from (the last one, when reassigned again);
    # absent for a step never reassigned.
    delegatedFrom: int | None = Field(default=None, exclude_if=lambda v: v is None)


class HistoryEvent(StrEnum):
    CREATED = "created"
    # A step became the one awaiting a decision: step 1 at creation, the next one with
    # each approval but the last (recorded with the change that hands it out).
    ASSIGNED = "assigned"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"
    # The waiting step was given to another approver (by an admin or its approver).
    REASSIGNED = "reassigned"


def _absent_when_none(value: object) -> bool:
    return value is None


class HistoryEntry(BaseModel):
    """One change of a request, by whom (``actor``: the requester for ``created`` and the
    first ``assigned``, the deciding approver for a decision and the assignment it leads
    to)."""

    at: datetime
    actor: int
    event: HistoryEvent
    step: int | None = Field(default=None, exclude_if=_absent_when_none)
    comment: str | None = Field(default=None, exclude_if=_absent_when_none)
    reason: str | None = Field(default=None, exclude_if=_absent_when_none)


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
    # Oldest first, appended by the write that makes each change, never rewritten;
    # requests stored before it existed have none.
    history: list[HistoryEntry] = Field(default_factory=list)


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requestId: Id
    step: Id
    approverId: Id
    status: Literal["approved", "rejected"]
    comment: Comment | None = None


class Withdrawal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(max_length=REASON_MAX)] | None = Field(
        default=None, description="Why, in at most 1,000 characters; kept in the history."
    )


class Cancellation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=REASON_MAX)
    ] = Field(description="Why, in 1 to 1,000 characters; kept in the history.")


class Reassignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approverId: Id = Field(description="Who decides the step from now on.")
    reason: Annotated[str, StringConstraints(max_length=REASON_MAX)] | None = Field(
        default=None, description="Why, in at most 1,000 characters; kept in the history."
    )


class WaitingStep(BaseModel):
    """One step awaiting its approver; what processing rebuilds its inboxes from."""

    requestId: int
    step: int
    requesterId: int
    approverId: int
    title: str
    content: str
