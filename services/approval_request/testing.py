"""Provider states for contract verification (``contracts/``): each state a consumer's pact
names becomes a real approval document, created and decided through ``service`` so its
shape is the production one. Mounted only with ``APPROVAL_REQUEST_TEST_MODE=true``, which
the settings refuse in production."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from services.approval_request import service, workflow
from services.approval_request.deps import ApprovalsDep
from services.approval_request.repository import OPEN_STATUSES, ApprovalRepository
from services.approval_request.schemas import ApprovalCreate, Decision, RequestType, StepIn

router = APIRouter(prefix="/_pact", include_in_schema=False)

StateSetup = Callable[[ApprovalRepository, re.Match[str]], Awaitable[None]]


class StateChange(BaseModel):
    """What the Pact verifier posts before (and, with teardown, after) each interaction."""

    state: str = ""
    action: Literal["setup", "teardown"] = "setup"
    params: dict[str, Any] = Field(default_factory=dict)


class _PinnedRequestId(ApprovalRepository):
    """The repository, except that creation takes the request id the state names."""

    def __init__(self, repository: ApprovalRepository, request_id: int) -> None:
        self.approvals = repository.approvals
        self.counters = repository.counters
        self._request_id = request_id

    async def next_request_id(self) -> int:
        return self._request_id


async def _nobody_missing(ids: object) -> list[int]:
    return []


async def request_awaits_step(repository: ApprovalRepository, found: re.Match[str]) -> None:
    """``approval request 12 awaits step 2 of approvers 2, 3``: created with those approvers,
    every step before the awaited one approved by its approver."""
    request_id, step = int(found["request"]), int(found["step"])
    approvers = [int(a) for a in found["approvers"].split(",")]
    if not 1 <= step <= len(approvers):
        raise HTTPException(400, f"step {step} is not one of the {len(approvers)} steps")
    requester = next(i for i in range(1, len(approvers) + 2) if i not in approvers)
    body = ApprovalCreate(
        requesterId=requester,
        title="결재 요청",
        content="내용",
        steps=[StepIn(step=n, approverId=a) for n, a in enumerate(approvers, start=1)],
        requestType=RequestType.GENERAL,
    )
    await repository.approvals.delete_one({"requestId": request_id})
    await service.create(
        repository=_PinnedRequestId(repository, request_id),
        find_missing=_nobody_missing,
        body=body,
    )
    for number, approver in enumerate(approvers[: step - 1], start=1):
        decision = Decision(
            requestId=request_id, step=number, approverId=approver, status="approved"
        )
        outcome = await service.decide(repository=repository, decision=decision)
        if not isinstance(outcome, workflow.Applied):
            raise HTTPException(500, f"could not approve step {number}: {outcome}")


async def request_absent(repository: ApprovalRepository, found: re.Match[str]) -> None:
    await repository.approvals.delete_one({"requestId": int(found["request"])})


async def nothing_waiting_after(repository: ApprovalRepository, found: re.Match[str]) -> None:
    await repository.approvals.delete_many(
        {"requestId": {"$gt": int(found["request"])}, "finalStatus": {"$in": OPEN_STATUSES}}
    )


STATES: list[tuple[re.Pattern[str], StateSetup]] = [
    (
        re.compile(
            r"approval request (?P<request>\d+) awaits step (?P<step>\d+)"
            r" of approvers (?P<approvers>\d+(?:, \d+)*)"
        ),
        request_awaits_step,
    ),
    (re.compile(r"approval request (?P<request>\d+) does not exist"), request_absent),
    (
        re.compile(r"no approval request after (?P<request>\d+) awaits a decision"),
        nothing_waiting_after,
    ),
]


@router.post("/provider-states")
async def set_up_state(body: StateChange, approvals: ApprovalsDep) -> dict[str, Any]:
    if body.action == "teardown" or not body.state:
        return {}
    for pattern, setup in STATES:
        found = pattern.fullmatch(body.state)
        if found:
            await setup(approvals, found)
            return {}
    raise HTTPException(400, f"Unknown provider state: {body.state}")
