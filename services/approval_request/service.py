"""Approval use cases: create, decide, read. Rules live in ``workflow``; storage in
``repository``; this module ties them together and never talks HTTP itself."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from services.approval_request import workflow
from services.approval_request.metrics import APPROVALS_CREATED, COMPLETION, DECISIONS
from services.approval_request.outbox import stored_effects
from services.approval_request.repository import ApprovalRepository, StoredWrite
from services.approval_request.schemas import ApprovalCreate, Decision, FinalStatus
from services.common import current_traceparent
from services.common.telemetry import traceparent_context

logger = logging.getLogger(__name__)
MAX_DECISION_ATTEMPTS = 20
FindMissing = Callable[[Iterable[int]], Awaitable[list[int]]]


class Rejected(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


async def create(
    *, repository: ApprovalRepository, find_missing: FindMissing, body: ApprovalCreate
) -> StoredWrite:
    """Stores a new request with its hand-off to step 1 in the outbox; the caller hands the
    returned write to the relay."""
    error = workflow.creation_error(body)
    if error:
        raise Rejected(400, error)
    missing = await find_missing([body.requesterId, *(s.approverId for s in body.steps)])
    if missing:
        raise Rejected(400, f"Employee {missing[0]} not found in Employee Service")
    now = datetime.now(UTC)
    traceparent = current_traceparent()

    def build(request_id: int) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "requestId": request_id,
            "requesterId": body.requesterId,
            "title": body.title,
            "content": body.content,
            "steps": [
                {"step": s.step, "approverId": s.approverId, "status": "pending", "updatedAt": None}
                for s in body.steps
            ],
            "finalStatus": FinalStatus.PENDING.value,
            "requestType": body.requestType.value,
            "leaveInfo": body.leaveInfo.model_dump(mode="json") if body.leaveInfo else None,
            "createdAt": now,
            "updatedAt": now,
            "approverIds": sorted({s.approverId for s in body.steps}),
            "version": 0,
            "createdTraceparent": traceparent,
        }
        doc["outbox"] = stored_effects(workflow.creation_effects(doc), now=now)
        return doc

    stored = await repository.insert_new(build, now=now)
    request_id = stored.request_id
    logger.info(
        "approval %d created by employee %d (%s, %d steps)",
        request_id,
        body.requesterId,
        body.requestType.value,
        len(body.steps),
    )
    APPROVALS_CREATED.labels(body.requestType.value).inc()
    trace.get_current_span().set_attributes(
        {
            "erp.request_id": request_id,
            "erp.employee_id": body.requesterId,
            "erp.request_type": body.requestType.value,
        }
    )
    return stored


def _label_decision(doc: dict[str, Any], decision: Decision) -> None:
    """The decision's request span (``POST /approvals/internal/result``) names the request,
    step, approver and decision, and links to the trace that created the request, so one
    can go from "approved by step 2" to "requested by"."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attributes(
        {
            "erp.request_id": decision.requestId,
            "erp.step": decision.step,
            "erp.employee_id": decision.approverId,
            "erp.request_type": doc["requestType"],
            "erp.decision": decision.status,
        }
    )
    created = trace.get_current_span(traceparent_context(doc.get("createdTraceparent")))
    if created.get_span_context().is_valid:
        span.add_link(created.get_span_context(), {"erp.link": "created_by"})


async def decide(
    *,
    repository: ApprovalRepository,
    decision: Decision,
    relay_holds: Callable[[int], bool] | None = None,
) -> tuple[workflow.Outcome, StoredWrite | None]:
    """Applies one decision atomically; a concurrent change makes it re-read and re-judge.
    With the outcome comes the write, for the relay, when one was made; the write tries for
    the relay lease unless ``relay_holds`` says this process's relay has it.

    The first judgement uses what this process last wrote of the request when it still has
    it (``repository.recent``): in a flow the previous write was nearly always its own, so
    the decision needs no read. That copy may be behind the stored document, so it decides
    nothing by itself: the write it leads to claims the revision after the copy's, which
    fails if another writer, in any process, moved the document on, and a refusal or a
    replay judged on it is judged again on the stored document."""
    doc = repository.recent(decision.requestId)
    labelled = False
    for _ in range(MAX_DECISION_ATTEMPTS):
        from_store = doc is None
        if doc is None:
            doc = await repository.get(decision.requestId)
            if doc is None:
                return workflow.NOT_FOUND, None
        outcome = workflow.decide(doc, decision)
        if not isinstance(outcome, workflow.Applied):
            if from_store:
                if not labelled:
                    _label_decision(doc, decision)
                return outcome, None
            doc = None
            continue
        now = datetime.now(UTC)
        if not labelled:
            _label_decision(doc, decision)
            labelled = True
        stored = await repository.apply(
            doc=doc,
            index=outcome.index,
            changes=workflow.decision_changes(outcome, now),
            effects=stored_effects(outcome.effects, now=now),
            now=now,
            after=workflow.after_decision(doc, outcome, now),
            relay_holds=relay_holds,
        )
        if stored is None:
            doc = repository.later_than(doc)
            continue
        logger.info(
            "approval %d step %d %s by employee %d; now %s",
            decision.requestId,
            decision.step,
            decision.status,
            decision.approverId,
            outcome.final_status.value,
        )
        DECISIONS.labels(outcome.step_status.value, outcome.final_status.value).inc()
        if outcome.current_step is None:
            COMPLETION.labels(outcome.final_status.value).observe(
                (now - doc["createdAt"]).total_seconds()
            )
        return outcome, stored
    return workflow.Refused(409, "The approval request is changing too fast, try again"), None
