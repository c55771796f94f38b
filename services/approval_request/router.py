"""HTTP surface of approval-request-service: parse, call one service function, map."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, status

from services.approval_request import service, workflow
from services.approval_request.deps import ApprovalsDep, FindMissingDep, LeavesDep, RelayDep
from services.approval_request.outbox import OutboxRelay
from services.approval_request.repository import ApprovalRepository, StoredWrite
from services.approval_request.schemas import (
    ApprovalCreate,
    ApprovalDocument,
    Cancellation,
    Created,
    Decision,
    FinalStatus,
    Reassignment,
    RequestType,
    WaitingStep,
    Withdrawal,
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


MOMENT = (
    "An ISO date (`2026-12-01`, midnight UTC) or date-time (`2026-12-01T09:00:00+09:00`; "
    "UTC when it names no offset), in the years 1900-2999."
)
RANGE_REVERSED = "createdFrom must not be after createdTo"
YEARS = range(1900, 3000)


def _moment(name: str, value: datetime | date | None) -> datetime | None:
    """A query's date or date-time as the instant it names (UTC unless it says otherwise).
    Bounded so that no offset carries it past what a stored date can be (a 400, not the
    overflow a year-1 instant minus an hour would be)."""
    if value is None:
        return None
    if value.year not in YEARS:
        raise HTTPException(400, f"{name} must be in the years 1900-2999")
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), UTC)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@router.get("", response_model=list[ApprovalDocument], responses={400: {}})
async def list_approvals(
    principal: CurrentPrincipal,
    approvals: ApprovalsDep,
    requester_id: Annotated[int | None, Query(alias="requesterId", ge=1, le=MAX_ID)] = None,
    approver_id: Annotated[int | None, Query(alias="approverId", ge=1, le=MAX_ID)] = None,
    final_status: Annotated[FinalStatus | None, Query(alias="finalStatus")] = None,
    request_type: Annotated[RequestType | None, Query(alias="requestType")] = None,
    created_from: Annotated[
        datetime | date | None,
        Query(alias="createdFrom", description=f"Created at or after this. {MOMENT}"),
    ] = None,
    created_to: Annotated[
        datetime | date | None,
        Query(alias="createdTo", description=f"Created before this (exclusive). {MOMENT}"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Any:
    """Requests newest first. The creation range is half-open, ``createdFrom`` inclusive and
    ``createdTo`` exclusive, so ``createdFrom=2026-12-01&createdTo=2026-12-02`` is the
    requests of 1 December (UTC) and consecutive ranges never count one twice; a
    ``createdFrom`` after ``createdTo`` is refused (400)."""
    start, end = _moment("createdFrom", created_from), _moment("createdTo", created_to)
    if start is not None and end is not None and start > end:
        raise HTTPException(400, RANGE_REVERSED)
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
    if request_type is not None:
        filters["requestType"] = request_type.value
    if start is not None or end is not None:
        filters["createdAt"] = {
            **({"$gte": start} if start is not None else {}),
            **({"$lt": end} if end is not None else {}),
        }
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


async def _transition_answer(
    refused: workflow.Refused | None,
    stored: StoredWrite | None,
    approvals: ApprovalRepository,
    relay: OutboxRelay,
    request_id: int,
) -> Any:
    """A person's transition (withdraw, cancel, reassign) answered: its refusal, or the
    document as it now stands, with the relay started on the effects just stored."""
    if refused is not None:
        raise HTTPException(refused.status_code, refused.detail)
    if stored is not None:
        relay.kick(stored)
    return await approvals.get(request_id, public=True)


@router.post(
    "/{request_id}/withdraw",
    response_model=ApprovalDocument,
    responses={403: {}, 404: {}, 409: {}},
)
async def withdraw_approval(
    principal: CurrentPrincipal,
    request_id: PathId,
    approvals: ApprovalsDep,
    relay: RelayDep,
    body: Annotated[Withdrawal | None, Body()] = None,
) -> Any:
    """The requester (or an admin) takes back a request still ``pending`` or
    ``in_progress``: it becomes ``withdrawn``, its waiting step leaves the approver's inbox,
    the requester and that approver are told (``approval_withdrawn``), and a LEAVE
    request's reserved days are released. A decision stored first wins (this call is then
    409), as a withdrawal stored first makes the decision 409. Once final: 409 ``Request can
    no longer be withdrawn``."""
    refused, stored = await service.withdraw(
        repository=approvals,
        request_id=request_id,
        actor=principal,
        reason=body.reason if body is not None else None,
        relay_holds=relay.holds,
    )
    return await _transition_answer(refused, stored, approvals, relay, request_id)


@router.post(
    "/{request_id}/cancel",
    response_model=ApprovalDocument,
    responses={403: {}, 404: {}, 409: {}},
)
async def cancel_approval(
    principal: CurrentPrincipal,
    request_id: PathId,
    body: Cancellation,
    approvals: ApprovalsDep,
    relay: RelayDep,
    request: Request,
) -> Any:
    """The requester (or an admin) cancels an approved LEAVE request whose ``startDate`` is
    after today (the business time zone's date): it becomes ``cancelled``, employee-service
    marks the leave record ``cancelled`` (kept) and its days return to the balance, once;
    the requester is told (``leave_cancelled``). Anything else is 409 ``Request can no
    longer be cancelled``, a second cancellation included."""
    zone = ZoneInfo(request.app.state.settings.business_timezone)
    refused, stored = await service.cancel(
        repository=approvals,
        request_id=request_id,
        actor=principal,
        reason=body.reason,
        today=datetime.now(zone).date(),
        relay_holds=relay.holds,
    )
    return await _transition_answer(refused, stored, approvals, relay, request_id)


@router.post(
    "/{request_id}/steps/{step}/reassign",
    response_model=ApprovalDocument,
    responses={400: {}, 403: {}, 404: {}, 409: {}, 502: {}},
)
async def reassign_step(
    principal: CurrentPrincipal,
    request_id: PathId,
    step: PathId,
    body: Reassignment,
    approvals: ApprovalsDep,
    relay: RelayDep,
    find_missing: FindMissingDep,
) -> Any:
    """An admin, or the step's current approver, gives the step awaiting a decision to
    another approver: the step stays ``pending`` and records ``delegatedFrom``; the item
    leaves the former approver's inbox and reaches the new one's, who is told
    (``approval_assigned``). The new approver must exist and must not be the requester
    (400, as at creation) nor already this step's approver (400). Any other step, or a
    final request: 409; a decision stored first wins, as a reassignment stored first makes
    the former approver's decision 409."""
    refused, stored = await service.reassign(
        repository=approvals,
        find_missing=find_missing,
        request_id=request_id,
        step=step,
        actor=principal,
        approver_id=body.approverId,
        reason=body.reason,
        relay_holds=relay.holds,
    )
    return await _transition_answer(refused, stored, approvals, relay, request_id)


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
