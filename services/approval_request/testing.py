"""Provider states for contract verification (``contracts/``): each state a consumer's pact
names becomes a real approval document, created and decided through ``service`` so its
shape is the production one. Mounted only with ``APPROVAL_REQUEST_TEST_MODE=true``, which
the settings refuse in production."""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from services.approval_request import service, workflow
from services.approval_request.deps import ApprovalsDep
from services.approval_request.repository import ID_BLOCK, OPEN_STATUSES, ApprovalRepository
from services.approval_request.schemas import ApprovalCreate, Decision, RequestType, StepIn

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/_pact", include_in_schema=False)

StateSetup = Callable[[ApprovalRepository, re.Match[str]], Awaitable[None]]


class StateChange(BaseModel):
    """What the Pact verifier posts before (and, with teardown, after) each interaction."""

    state: str = ""
    action: Literal["setup", "teardown"] = "setup"
    params: dict[str, Any] = Field(default_factory=dict)


async def _nobody_missing(ids: object) -> list[int]:
    return []


async def _create_as(repository: ApprovalRepository, request_id: int, body: ApprovalCreate) -> None:
    """Create through ``service.create`` with the counter set so it allocates ``request_id``
    (the id the pact names), then never leave the counter behind an id in use."""
    await repository.approvals.delete_one({"requestId": request_id})
    counter = await repository.counters.find_one({"_id": "approvals"})
    before = int(counter["seq"]) if counter else 0
    await repository.counters.update_one(
        {"_id": "approvals"}, {"$set": {"seq": request_id - 1}}, upsert=True
    )
    repository.drop_id_block()
    try:
        created = await service.create(
            repository=repository, find_missing=_nobody_missing, body=body
        )
    finally:
        repository.drop_id_block()
        await repository.counters.update_one(
            {"_id": "approvals"}, {"$set": {"seq": max(before, request_id + ID_BLOCK)}}
        )
    if created.request_id != request_id:
        raise RuntimeError(f"created request {created.request_id} instead of {request_id}")


async def request_awaits_step(repository: ApprovalRepository, found: re.Match[str]) -> None:
    """``approval request 12 awaits step 2 of approvers 2, 3``: created with those approvers,
    every step before the awaited one approved by its approver."""
    request_id, step = int(found["request"]), int(found["step"])
    approvers = [int(a) for a in found["approvers"].split(",")]
    if not 1 <= step <= len(approvers):
        raise ValueError(f"step {step} is not one of the {len(approvers)} steps")
    requester = next(i for i in range(1, len(approvers) + 2) if i not in approvers)
    body = ApprovalCreate(
        requesterId=requester,
        title="결재 요청",
        content="내용",
        steps=[StepIn(step=n, approverId=a) for n, a in enumerate(approvers, start=1)],
        requestType=RequestType.GENERAL,
    )
    await _create_as(repository, request_id, body)
    for number, approver in enumerate(approvers[: step - 1], start=1):
        decision = Decision(
            requestId=request_id, step=number, approverId=approver, status="approved"
        )
        outcome, _ = await service.decide(repository=repository, decision=decision)
        if not isinstance(outcome, workflow.Applied):
            raise RuntimeError(f"could not approve step {number}: {outcome}")


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
            try:
                await setup(approvals, found)
            except Exception as exc:
                # A 4xx, not a 5xx: the verifier retries a 5xx with backoff for minutes.
                logger.exception("provider state %r could not be set up", body.state)
                raise HTTPException(400, f"State {body.state!r} failed: {exc!r}") from exc
            return {}
    raise HTTPException(400, f"Unknown provider state: {body.state}")
