"""HTTP surface of approval-request-service: parse, call one service function, map."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response, status

from services.approval_request import service, workflow
from services.approval_request.deps import ApprovalsDep, FindMissingDep, LeavesDep, RelayDep
from services.approval_request.schemas import (
    ApprovalCreate,
    ApprovalDocument,
    Created,
    Decision,
    FinalStatus,
    WaitingStep,
)
from services.common.auth import CurrentPrincipal, Principal, ServiceCaller, require_self_or_admin
from services.common.limits import MAX_ID, PathId

router = APIRouter(prefix="/approvals", tags=["approvals"])
internal = APIRouter(prefix="/approvals/internal", tags=["internal"])

ERRORS: dict[int | str, dict[str, Any]] = {400: {}, 404: {}, 409: {}, 502: {}}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Created,
    responses={400: {}, 409: {}, 502: {}},
)
async def create_approval(
    principal: CurrentPrincipal,
    body: ApprovalCreate,
    approvals: ApprovalsDep,
    relay: RelayDep,
    find_missing: FindMissingDep,
    leaves: LeavesDep,
) -> Created:
    """A LEAVE request reserves its days at employee-service before it is stored: its
    refusals (unknown type, no working days, days not matching the dates, beyond the
    balance: 400; overlapping another request: 409) are the answer, and nothing is stored."""
    require_self_or_admin(principal, body.requesterId)
    try:
        stored = await service.create(
            repository=approvals, find_missing=find_missing, body=body, leaves=leaves
        )
    except service.Rejected as exc:
        raise HTTPException(exc.status_code, exc.detail) from None
    relay.kick(stored)
    return Created(requestId=stored.request_id)


@router.get("", response_model=list[ApprovalDocument])
async def list_approvals(
    principal: CurrentPrincipal,
    approvals: ApprovalsDep,
    requester_id: Annotated[int | None, Query(alias="requesterId", ge=1, le=MAX_ID)] = None,
    approver_id: Annotated[int | None, Query(alias="approverId", ge=1, le=MAX_ID)] = None,
    final_status: Annotated[FinalStatus | None, Query(alias="finalStatus")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Any:
    filters: dict[str, Any] = {}
    if not _sees_everything(principal):
        me = principal.employee_id
        filters["$or"] = [{"requesterId": me}, {"approverIds": me}]
    if requester_id is not None:
        filters["requesterId"] = requester_id
    if approver_id is not None:
        filters["approverIds"] = approver_id
    if final_status is not None:
        filters["finalStatus"] = final_status.value
    return await approvals.find_many(filters=filters, limit=limit, offset=offset)


@internal.post("/result", status_code=status.HTTP_204_NO_CONTENT, responses=ERRORS)
async def record_result(
    caller: ServiceCaller, body: Decision, approvals: ApprovalsDep, relay: RelayDep
) -> Response:
    """Called by approval-processing-service with an approver's decision."""
    outcome, stored = await service.decide(
        repository=approvals, decision=body, relay_holds=relay.holds
    )
    if isinstance(outcome, workflow.Refused):
        raise HTTPException(outcome.status_code, outcome.detail)
    if stored is not None:
        relay.kick(stored)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@internal.get("/waiting", response_model=list[WaitingStep])
async def waiting_steps(
    caller: ServiceCaller,
    approvals: ApprovalsDep,
    after_request_id: Annotated[int, Query(alias="afterRequestId", ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[WaitingStep]:
    """Every step awaiting its approver, in request order; processing rebuilds its inboxes
    from this after a restart (keyset paging on ``afterRequestId``)."""
    docs = await approvals.waiting(after_request_id=after_request_id, limit=limit)
    result = []
    for doc in docs:
        index = workflow.awaiting_index(doc)
        if index is None:
            continue
        step = doc["steps"][index]
        result.append(
            WaitingStep(
                requestId=doc["requestId"],
                step=step["step"],
                requesterId=doc["requesterId"],
                approverId=step["approverId"],
                title=doc["title"],
                content=doc["content"],
            )
        )
    return result


@router.get("/{request_id}", response_model=ApprovalDocument, responses={404: {}})
async def get_approval(
    principal: CurrentPrincipal, request_id: PathId, approvals: ApprovalsDep
) -> Any:
    doc = await approvals.get(request_id, public=True)
    if doc is None:
        raise HTTPException(404, "Approval request not found")
    involved = {doc["requesterId"], *(step["approverId"] for step in doc["steps"])}
    if not _sees_everything(principal) and principal.employee_id not in involved:
        raise HTTPException(403, "Only its requester, its approvers and admins see a request")
    return doc


def _sees_everything(principal: Principal) -> bool:
    return principal.is_admin or principal.service
