"""Approval use cases: create, decide, read. Rules live in ``workflow``; storage in
``repository``; this module ties them together and never talks HTTP itself."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from opentelemetry import trace

from services.approval_request import workflow
from services.approval_request.clients.employee import ReservationRefused
from services.approval_request.metrics import (
    APPROVALS_CREATED,
    CANCELLATIONS,
    COMPLETION,
    DECISIONS,
    REASSIGNMENTS,
    WITHDRAWALS,
)
from services.approval_request.outbox import stored_effects
from services.approval_request.repository import ApprovalRepository, StoredWrite
from services.approval_request.schemas import ApprovalCreate, Decision, FinalStatus, RequestType
from services.common import current_traceparent
from services.common.auth import Principal
from services.common.telemetry import traceparent_context

logger = logging.getLogger(__name__)
MAX_DECISION_ATTEMPTS = 20
MAX_ID_ATTEMPTS = 20
FindMissing = Callable[[Iterable[int]], Awaitable[list[int]]]
# employee-service's 409 for leave that overlaps another request; its other 409s of a
# reservation say that the request id is in use there.
OVERLAP_REFUSAL = "Leave overlaps request "
FORBIDDEN_WITHDRAWAL = workflow.Refused(
    403, "Only its requester or an admin may withdraw a request"
)
FORBIDDEN_CANCELLATION = workflow.Refused(
    403, "Only its requester or an admin may cancel a request"
)
FORBIDDEN_REASSIGNMENT = workflow.Refused(
    403, "Only an admin or the step's current approver may reassign it"
)
TOO_FAST = workflow.Refused(409, "The approval request is changing too fast, try again")


class LeaveReservations(Protocol):
    """employee-service's leave reservations, as creation needs them."""

    async def reserve(self, reservation: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The reservation and whether this call made it; ``ReservationRefused``."""

    async def release(self, request_id: int) -> bool: ...


class Rejected(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


async def create(
    *,
    repository: ApprovalRepository,
    find_missing: FindMissing,
    body: ApprovalCreate,
    leaves: LeaveReservations | None = None,
) -> StoredWrite:
    """Stores a new request with its hand-off to step 1 in the outbox; the caller hands the
    returned write to the relay. A LEAVE request reserves its days first (``leaves``)."""
    error = workflow.creation_error(body)
    if error:
        raise Rejected(400, error)
    missing = await find_missing([body.requesterId, *(s.approverId for s in body.steps)])
    if missing:
        raise Rejected(400, f"Employee {missing[0]} not found in Employee Service")
    now = datetime.now(UTC)
    traceparent = current_traceparent()

    def build(request_id: int, leave_info: dict[str, Any] | None) -> dict[str, Any]:
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
            "leaveInfo": leave_info,
            "createdAt": now,
            "updatedAt": now,
            "approverIds": sorted({s.approverId for s in body.steps}),
            "version": 0,
            "createdTraceparent": traceparent,
        }
        doc["history"] = workflow.creation_history(doc, now)
        doc["outbox"] = stored_effects(workflow.creation_effects(doc), now=now)
        return doc

    if body.requestType is RequestType.LEAVE:
        if leaves is None:
            raise RuntimeError("a LEAVE request needs employee-service's reservations")
        stored = await _create_leave(
            repository=repository, leaves=leaves, body=body, build=build, now=now
        )
    else:
        stored = await repository.insert_new(lambda request_id: build(request_id, None), now=now)
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


async def _create_leave(
    *,
    repository: ApprovalRepository,
    leaves: LeaveReservations,
    body: ApprovalCreate,
    build: Callable[[int, dict[str, Any] | None], dict[str, Any]],
    now: datetime,
) -> StoredWrite:
    """Reserve under a fresh id, then store the request with the server's count and the
    hold of its reservation in the outbox. Nothing is stored when the reservation is
    refused. A reservation never held (this process died before storing, or the release
    of one whose id was taken failed) expires: employee-service keeps it for
    ``EMPLOYEE_RESERVATION_TTL_SECONDS``."""
    assert body.leaveInfo is not None, "checked by creation_error"
    for _ in range(MAX_ID_ATTEMPTS):
        request_id = await repository.next_request_id()
        try:
            reserved, made = await leaves.reserve(workflow.leave_reservation(request_id, body))
        except ReservationRefused as exc:
            if exc.status_code == 409 and not exc.detail.startswith(OVERLAP_REFUSAL):
                # employee-service knows this id with other days: another process was
                # handed the same id block (repository.insert_new), so take another.
                repository.drop_id_block()
                continue
            raise _refusal(exc, body) from None
        if not made:
            # Reserved before under this id, with these very days: by another process
            # handed the same id block, whose request it is.
            repository.drop_id_block()
            continue
        info = body.leaveInfo.model_dump(mode="json") | {
            "days": reserved["days"],
            "leaveType": reserved["leaveType"],
        }
        # An insert that fails otherwise may still have landed: its reservation is left
        # tentative, for the stored hold to keep or the expiry to free.
        stored = await repository.insert_as(build(request_id, info), now=now)
        if stored is not None:
            return stored
        # Surely not stored (the id is taken): the retry would overlap these days.
        await _release_unstored(leaves, request_id)
    raise RuntimeError("could not allocate a requestId")


def _refusal(exc: ReservationRefused, body: ApprovalCreate) -> Rejected:
    """employee-service's refusal as this service's answer: its status and text."""
    if exc.status_code in (400, 409):
        return Rejected(exc.status_code, exc.detail)
    if exc.status_code == 404:
        return Rejected(400, f"Employee {body.requesterId} not found in Employee Service")
    return Rejected(400, f"Employee Service refused the leave: {exc.detail}")


async def _release_unstored(leaves: LeaveReservations, request_id: int) -> None:
    try:
        await leaves.release(request_id)
    except Exception:
        logger.warning(
            "reservation of unstored request %d not released; it expires", request_id, exc_info=True
        )


def _label_decision(doc: dict[str, Any], decision: Decision) -> None:
    """The decision's request span (``POST /approvals/internal/result``) names the request,
    step, approver and decision, and links to the trace that created the request, so one
    can go from "approved by step 2" to "requested by"."""
    _label_transition(
        doc,
        {
            "erp.request_id": decision.requestId,
            "erp.step": decision.step,
            "erp.employee_id": decision.approverId,
            "erp.request_type": doc["requestType"],
            "erp.decision": decision.status,
        },
    )


def _label_transition(doc: dict[str, Any], attributes: dict[str, Any]) -> None:
    """The transition's request span carries ``attributes`` and links to the trace that
    created the request."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    span.set_attributes(attributes)
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
            history=workflow.decision_history(doc, outcome, now),
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
    return TOO_FAST, None


Judge = Callable[[dict[str, Any]], Awaitable["Judged | workflow.Refused"]]


@dataclass(frozen=True)
class Judged:
    """A transition judged on one revision of the document, ready to be claimed."""

    index: int | None
    changes: dict[str, Any]
    effects: list[workflow.Effect]


async def _transition(
    *,
    repository: ApprovalRepository,
    request_id: int,
    refused: Callable[[dict[str, Any]], workflow.Refused | None],
    attributes: Callable[[dict[str, Any]], dict[str, Any]],
    judge: Judge,
    history: Callable[[datetime], list[dict[str, Any]]],
    relay_holds: Callable[[int], bool] | None,
) -> tuple[workflow.Refused | None, StoredWrite | None, dict[str, Any] | None]:
    """One transition asked for by a person (withdraw, cancel, reassign), atomic as
    ``decide`` is: read, check who may (``refused``), judge, claim the next revision with
    the history entries and the effects; another writer that got there first makes the
    claim fail, and the transition is judged again on what it left. The refusal, or the
    write and the document it was judged on."""
    labelled = False
    for _ in range(MAX_DECISION_ATTEMPTS):
        doc = await repository.get(request_id)
        if doc is None:
            return workflow.NOT_FOUND, None, None
        refusal = refused(doc)
        if refusal is not None:
            return refusal, None, None
        if not labelled:
            _label_transition(doc, attributes(doc))
            labelled = True
        judged = await judge(doc)
        if isinstance(judged, workflow.Refused):
            return judged, None, None
        now = datetime.now(UTC)
        stored = await repository.apply(
            doc=doc,
            index=judged.index,
            changes=judged.changes,
            history=history(now),
            effects=stored_effects(judged.effects, now=now),
            now=now,
            relay_holds=relay_holds,
        )
        if stored is not None:
            return None, stored, doc
    return TOO_FAST, None, None


def _actor_id(actor: Principal) -> int:
    return actor.employee_id if actor.employee_id is not None else 0


def _requester_or_admin(
    actor: Principal, forbidden: workflow.Refused
) -> Callable[[dict[str, Any]], workflow.Refused | None]:
    def refused(doc: dict[str, Any]) -> workflow.Refused | None:
        allowed = actor.is_admin or actor.employee_id == doc["requesterId"]
        return None if allowed else forbidden

    return refused


def _by(actor: Principal, doc: dict[str, Any]) -> str:
    return "requester" if actor.employee_id == doc["requesterId"] else "admin"


async def withdraw(
    *,
    repository: ApprovalRepository,
    request_id: int,
    actor: Principal,
    reason: str | None,
    relay_holds: Callable[[int], bool] | None = None,
) -> tuple[workflow.Refused | None, StoredWrite | None]:
    """Withdraws an open request: a decision or another withdrawal stored first leaves it
    final, and the withdrawal is then refused. Only the requester or an admin may."""

    async def judge(doc: dict[str, Any]) -> Judged | workflow.Refused:
        outcome = workflow.withdraw(doc, reason=reason)
        if isinstance(outcome, workflow.Refused):
            return outcome
        return Judged(outcome.index, workflow.WITHDRAWAL_CHANGES, outcome.effects)

    refused, stored, doc = await _transition(
        repository=repository,
        request_id=request_id,
        refused=_requester_or_admin(actor, FORBIDDEN_WITHDRAWAL),
        attributes=lambda doc: _transition_attributes(doc, actor, "withdrawn"),
        judge=judge,
        history=lambda now: workflow.withdrawal_history(_actor_id(actor), reason, now),
        relay_holds=relay_holds,
    )
    if doc is not None:
        by = _by(actor, doc)
        logger.info("approval %d withdrawn by employee %s (%s)", request_id, _actor_id(actor), by)
        WITHDRAWALS.labels(doc["requestType"], by).inc()
        COMPLETION.labels(FinalStatus.WITHDRAWN.value).observe(
            (datetime.now(UTC) - doc["createdAt"]).total_seconds()
        )
    return refused, stored


async def cancel(
    *,
    repository: ApprovalRepository,
    request_id: int,
    actor: Principal,
    reason: str,
    today: date,
    relay_holds: Callable[[int], bool] | None = None,
) -> tuple[workflow.Refused | None, StoredWrite | None]:
    """Cancels an approved LEAVE request that has not started by ``today``: of two
    cancellations at once one claims the transition, the other is judged again on the
    cancelled request and refused. Only the requester or an admin may."""

    async def judge(doc: dict[str, Any]) -> Judged | workflow.Refused:
        effects = workflow.cancel(doc, today=today, reason=reason)
        if isinstance(effects, workflow.Refused):
            return effects
        return Judged(None, workflow.CANCELLATION_CHANGES, effects)

    refused, stored, doc = await _transition(
        repository=repository,
        request_id=request_id,
        refused=_requester_or_admin(actor, FORBIDDEN_CANCELLATION),
        attributes=lambda doc: _transition_attributes(doc, actor, "cancelled"),
        judge=judge,
        history=lambda now: workflow.cancellation_history(_actor_id(actor), reason, now),
        relay_holds=relay_holds,
    )
    if doc is not None:
        by = _by(actor, doc)
        logger.info("approval %d cancelled by employee %s (%s)", request_id, _actor_id(actor), by)
        CANCELLATIONS.labels(by).inc()
    return refused, stored


async def reassign(
    *,
    repository: ApprovalRepository,
    find_missing: FindMissing,
    request_id: int,
    step: int,
    actor: Principal,
    approver_id: int,
    reason: str | None,
    relay_holds: Callable[[int], bool] | None = None,
) -> tuple[workflow.Refused | None, StoredWrite | None]:
    """Gives the step awaiting a decision to another approver: a decision (or another
    reassignment) stored first makes it judged again on what that left (a step no longer
    waiting: refused), as a reassignment stored first makes the former approver's decision
    409. The new approver must exist at employee-service (asked once, before the first
    write). Only an admin or the step's approver may."""
    checked = False

    def approver_of_step(doc: dict[str, Any]) -> int | None:
        return next((s["approverId"] for s in doc["steps"] if s["step"] == step), None)

    def refused(doc: dict[str, Any]) -> workflow.Refused | None:
        current = approver_of_step(doc)
        allowed = actor.is_admin or (current is not None and actor.employee_id == current)
        return None if allowed else FORBIDDEN_REASSIGNMENT

    async def judge(doc: dict[str, Any]) -> Judged | workflow.Refused:
        nonlocal checked
        outcome = workflow.reassign_step(doc, step=step, approver_id=approver_id)
        if isinstance(outcome, workflow.Refused):
            return outcome
        if not checked:
            missing = await find_missing([approver_id])
            if missing:
                return workflow.Refused(400, f"Employee {missing[0]} not found in Employee Service")
            checked = True
        return Judged(outcome.index, outcome.changes, outcome.effects)

    refused_by, stored, doc = await _transition(
        repository=repository,
        request_id=request_id,
        refused=refused,
        attributes=lambda doc: {
            **_transition_attributes(doc, actor, "reassigned"),
            "erp.step": step,
        },
        judge=judge,
        history=lambda now: workflow.reassignment_history(_actor_id(actor), step, reason, now),
        relay_holds=relay_holds,
    )
    if doc is not None:
        current = approver_of_step(doc)
        by = "admin" if actor.employee_id != current else "approver"
        logger.info(
            "approval %d step %d reassigned from employee %s to %d by employee %s (%s)",
            request_id,
            step,
            current,
            approver_id,
            _actor_id(actor),
            by,
        )
        REASSIGNMENTS.labels(doc["requestType"], by).inc()
    return refused_by, stored


def _transition_attributes(
    doc: dict[str, Any], actor: Principal, transition: str
) -> dict[str, Any]:
    """The transition's request span: which request, by whom, what happened to it."""
    return {
        "erp.request_id": doc["requestId"],
        "erp.employee_id": actor.employee_id or 0,
        "erp.request_type": doc["requestType"],
        "erp.transition": transition,
    }
