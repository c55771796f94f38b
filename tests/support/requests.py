"""Approval requests written straight through approval-request-service's own service and
repository, for tests of the repository on the real local MongoDB-compatible server."""

from __future__ import annotations

from typing import Any

from services.approval_request import service
from services.approval_request.repository import ApprovalRepository
from services.approval_request.schemas import ApprovalCreate, Decision


async def nobody_missing(ids: object) -> list[int]:
    return []


async def create(repository: ApprovalRepository, *approvers: int) -> int:
    """A request of requester 1 with one step per approver, in order; its id."""
    body = ApprovalCreate(
        requesterId=1,
        title="출장 보고",
        steps=[{"step": n, "approverId": a} for n, a in enumerate(approvers, start=1)],  # type: ignore[misc]
    )
    created = await service.create(repository=repository, find_missing=nobody_missing, body=body)
    return created.request_id


def decision(request_id: int, step: int, approver: int, status: str = "approved") -> Decision:
    return Decision(requestId=request_id, step=step, approverId=approver, status=status)  # type: ignore[arg-type]


async def stored(repository: ApprovalRepository, request_id: int) -> dict[str, Any]:
    doc = await repository.get(request_id)
    assert doc is not None
    return doc
