"""HTTP surface of approval-processing-service: approvers read and decide their inbox, on
whichever replica the call lands (a replica that does not hold the inbox forwards it)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from services.approval_processing.clients import REQUESTS, submit_decision
from services.approval_processing.inbox import Inbox
from services.approval_processing.metrics import DECISIONS_SUBMITTED
from services.approval_processing.replicas import forward
from services.common import DependencyUnavailable
from services.common.auth import CurrentPrincipal, Principal
from services.common.limits import PathId

router = APIRouter(prefix="/process", tags=["processing"])

NO_ITEM = "No pending approval found for this approver"
# approval-request-service's text for a decision on a withdrawn request.
WITHDRAWN = "Approval request was withdrawn"
# approval-request-service's text for a decision by a step's former approver.
REASSIGNED = "The step was reassigned to another approver"
REBUILDING = (
    "Inboxes are being rebuilt from approval-request-service after a start; try again shortly"
)
STATUS_OF = {"approve": "approved", "reject": "rejected"}
MAX_PAGE = 1000


class WorkItemOut(BaseModel):
    requestId: int
    step: int
    requesterId: int
    approverId: int
    title: str
    content: str
    status: str


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject"]
    comment: str | None = Field(
        default=None,
        max_length=1000,
        description="Why, in at most 1,000 characters of any script, stored as sent on the "
        "step and told to the requester. Sending the same action again is answered as the "
        "first time and changes nothing, whatever its comment.",
    )


def _inbox(request: Request) -> Inbox:
    """The inbox, once rebuilt: until then it may lack waiting items, and a decision on one
    it lacks would be a wrong 404, so the caller is told to come back (503, Retry-After)."""
    inbox: Inbox = request.app.state.inbox
    if not inbox.rebuilt:
        raise DependencyUnavailable(REQUESTS, detail=REBUILDING)
    return inbox


EmployeeId = PathId


def _only_the_approver(principal: Principal, approver_id: int) -> None:
    if principal.employee_id != approver_id:
        raise HTTPException(403, "Only the approver may read or decide their inbox")


@router.get("/{approver_id}", response_model=list[WorkItemOut], responses={503: {}})
async def list_inbox(
    principal: CurrentPrincipal,
    approver_id: EmployeeId,
    request: Request,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_PAGE, description="At most this many; all if absent.")
    ] = None,
    offset: Annotated[int, Query(ge=0, le=100_000, description="Skip this many first.")] = 0,
) -> list[dict[str, Any]] | Response:
    """The approver's waiting items, oldest first; ``limit``/``offset`` page through them."""
    _only_the_approver(principal, approver_id)
    if (answer := await forward(request, request.app.state.ownership, approver_id)) is not None:
        return answer
    items = _inbox(request).pending(approver_id)
    end = None if limit is None else offset + limit
    return [item.public() for item in items[offset:end]]


@router.post(
    "/{approver_id}/{request_id}",
    response_model=WorkItemOut,
    responses={404: {}, 409: {}, 502: {}, 503: {}},
)
async def decide(
    principal: CurrentPrincipal,
    approver_id: EmployeeId,
    request_id: EmployeeId,
    body: ActionIn,
    request: Request,
) -> dict[str, Any] | Response:
    _only_the_approver(principal, approver_id)
    if (answer := await forward(request, request.app.state.ownership, approver_id)) is not None:
        return answer
    inbox = _inbox(request)
    item = inbox.find(approver_id, request_id)
    if item is None:
        if inbox.was_withdrawn(approver_id, request_id):
            DECISIONS_SUBMITTED.labels(body.action, "conflict").inc()
            raise HTTPException(409, WITHDRAWN)
        if inbox.was_reassigned(approver_id, request_id):
            DECISIONS_SUBMITTED.labels(body.action, "conflict").inc()
            raise HTTPException(409, REASSIGNED)
        raise HTTPException(404, NO_ITEM)
    if not inbox.begin(item):
        raise HTTPException(409, "A decision on this approval is already in progress")
    status = STATUS_OF[body.action]
    try:
        code, answer = await submit_decision(
            request.app.state.http,
            request.app.state.settings.approval_request_service_url,
            request_id=item.requestId,
            step=item.step,
            approver_id=item.approverId,
            status=status,
            comment=body.comment,
        )
    except DependencyUnavailable:
        DECISIONS_SUBMITTED.labels(body.action, "failed").inc()
        raise HTTPException(502, "Approval Request Service unavailable; try again") from None
    finally:
        inbox.end(item)
    if code == 204:
        inbox.complete(item)
        DECISIONS_SUBMITTED.labels(body.action, "applied").inc()
        return {**item.public(), "status": status}
    if code == 409:
        inbox.complete(item)
        DECISIONS_SUBMITTED.labels(body.action, "conflict").inc()
        raise HTTPException(409, (answer or {}).get("detail", "Step already decided"))
    if code in (400, 404):
        # The request service does not know this step: the item was stale; drop it.
        inbox.complete(item)
        DECISIONS_SUBMITTED.labels(body.action, "gone").inc()
        raise HTTPException(404, NO_ITEM)
    DECISIONS_SUBMITTED.labels(body.action, "failed").inc()
    raise HTTPException(502, f"Approval Request Service answered {code}")
