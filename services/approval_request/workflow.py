"""The approval state machine: pure functions from a document and an event to the new state
and the side effects it implies. No I/O here; ``service.py`` stores what these decide."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from services.approval_request.schemas import (
    ApprovalCreate,
    Decision,
    FinalStatus,
    HistoryEvent,
    RequestType,
    StepStatus,
    day_count,
)

# "leave" confirms a LEAVE request's reserved days; "leave_hold" keeps them reserved once
# the request is stored, "leave_release" frees them when it is rejected or withdrawn.
# "withdrawal" takes the waiting step out of its approver's inbox (the hand-off's route);
# "leave_cancel" gives an approved leave's days back once it is cancelled. "reassignment"
# takes a reassigned step out of its former approver's inbox (that approver's partition).
EffectKind = Literal[
    "handoff",
    "notify",
    "leave",
    "leave_hold",
    "leave_release",
    "withdrawal",
    "leave_cancel",
    "reassignment",
]
Document = dict[str, Any]


@dataclass(frozen=True)
class Effect:
    """A message the state change implies, stored with it and delivered by the outbox relay."""

    kind: EffectKind
    payload: dict[str, Any]


@dataclass(frozen=True)
class Applied:
    index: int
    step_status: StepStatus
    final_status: FinalStatus
    current_step: int | None
    effects: list[Effect] = field(default_factory=list)
    comment: str | None = None


@dataclass(frozen=True)
class Replay:
    """The same decision was already applied: answer 204, change nothing."""


@dataclass(frozen=True)
class Refused:
    status_code: int
    detail: str


Outcome = Applied | Replay | Refused

NOT_FOUND = Refused(404, "Approval request not found")
STEP_NOT_FOUND = Refused(400, "Matching approval step not found")
NOT_WITHDRAWABLE = Refused(409, "Request can no longer be withdrawn")
WAS_WITHDRAWN = Refused(409, "Approval request was withdrawn")
WAS_REASSIGNED = Refused(409, "The step was reassigned to another approver")
OPEN = (FinalStatus.PENDING, FinalStatus.IN_PROGRESS)
NOT_CANCELLABLE = Refused(409, "Request can no longer be cancelled")


@dataclass(frozen=True)
class Withdrawn:
    """A withdrawal to store: the step that was waiting (``index``) and what it implies."""

    index: int
    effects: list[Effect]


def creation_error(body: ApprovalCreate) -> str | None:
    """The business rules a new request must meet, beyond its shape (checked by pydantic)."""
    if body.requestType is RequestType.LEAVE and body.leaveInfo is None:
        return "leaveInfo is required when requestType is LEAVE"
    if body.requestType is RequestType.GENERAL and body.leaveInfo is not None:
        return "leaveInfo is only allowed when requestType is LEAVE"
    if [s.step for s in body.steps] != list(range(1, len(body.steps) + 1)):
        return "steps must start at 1 and be consecutive in ascending order"
    if any(s.approverId == body.requesterId for s in body.steps):
        return "requester cannot approve their own request"
    if body.leaveInfo is not None and body.leaveInfo.endDate < body.leaveInfo.startDate:
        return "leaveInfo.endDate must not be before leaveInfo.startDate"
    return None


def handoff_message(doc: Document) -> dict[str, Any]:
    """The ``approval.work`` message body (spec section 3); its consumer picks the first
    pending step. This is the one builder production publishing and contracts both use."""
    return {
        "requestId": doc["requestId"],
        "requesterId": doc["requesterId"],
        "title": doc["title"],
        "content": doc["content"],
        "steps": [
            {"step": s["step"], "approverId": s["approverId"], "status": s["status"]}
            for s in doc["steps"]
        ],
    }


def history_entry(
    at: datetime,
    actor: int,
    event: HistoryEvent,
    *,
    step: int | None = None,
    comment: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    """One ``history`` entry as stored; fields without a value are left out."""
    entry: dict[str, Any] = {"at": at, "actor": actor, "event": event.value}
    if step is not None:
        entry["step"] = step
    if comment is not None:
        entry["comment"] = comment
    if reason is not None:
        entry["reason"] = reason
    return entry


def creation_history(doc: Document, now: datetime) -> list[dict[str, Any]]:
    """A new request's history: created, and its first step handed out, by the requester."""
    actor = doc["requesterId"]
    return [
        history_entry(now, actor, HistoryEvent.CREATED),
        history_entry(now, actor, HistoryEvent.ASSIGNED, step=doc["steps"][0]["step"]),
    ]


def decision_history(doc: Document, applied: Applied, now: datetime) -> list[dict[str, Any]]:
    """What a decision appends to the history: the decision, and the next step handed out
    when it leads to one."""
    step = doc["steps"][applied.index]
    actor = step["approverId"]
    entries = [
        history_entry(
            now,
            actor,
            HistoryEvent(applied.step_status.value),
            step=step["step"],
            comment=applied.comment,
        )
    ]
    if applied.current_step is not None:
        entries.append(history_entry(now, actor, HistoryEvent.ASSIGNED, step=applied.current_step))
    return entries


def creation_effects(doc: Document) -> list[Effect]:
    effects = [Effect("handoff", handoff_message(doc))]
    if doc["requestType"] == RequestType.LEAVE:
        # Reserved before the request was stored, the days expire unless held.
        effects.insert(0, Effect("leave_hold", {"requestId": doc["requestId"]}))
    return effects


def awaiting_index(doc: Document) -> int | None:
    """Position of the step a decision is expected for, or None once the request is final."""
    if doc["finalStatus"] not in OPEN:
        return None
    for index, step in enumerate(doc["steps"]):
        if step["status"] == StepStatus.PENDING:
            return index
    return None


def decide(doc: Document, decision: Decision) -> Outcome:
    steps = doc["steps"]
    index = next(
        (
            i
            for i, s in enumerate(steps)
            if s["step"] == decision.step and s["approverId"] == decision.approverId
        ),
        None,
    )
    if index is None:
        if any(
            s["step"] == decision.step and s.get("delegatedFrom") == decision.approverId
            for s in steps
        ):
            return WAS_REASSIGNED
        return STEP_NOT_FOUND
    current = steps[index]["status"]
    if current == decision.status:
        # The same decision again, whatever its comment: the first one's stands (a retry
        # of a lost answer may not rewrite what was stored, nor notify twice).
        return Replay()
    if current != StepStatus.PENDING:
        return Refused(409, f"Step {decision.step} was already {current}")
    if index != awaiting_index(doc):
        if doc["finalStatus"] == FinalStatus.WITHDRAWN:
            return WAS_WITHDRAWN
        if doc["finalStatus"] == FinalStatus.REJECTED:
            return Refused(409, "Approval request was already rejected")
        return Refused(409, f"Step {decision.step} is not the step awaiting a decision")

    status = StepStatus(decision.status)
    after = [dict(s) for s in steps]
    after[index]["status"] = status
    next_index = index + 1 if index + 1 < len(after) else None
    if status is StepStatus.REJECTED:
        final, current_step = FinalStatus.REJECTED, None
    elif next_index is None:
        final, current_step = FinalStatus.APPROVED, None
    else:
        final, current_step = FinalStatus.IN_PROGRESS, after[next_index]["step"]

    result = {
        "type": "approval_result",
        "requestId": doc["requestId"],
        "step": decision.step,
        "approverId": decision.approverId,
        "stepStatus": status.value,
        "finalStatus": final.value,
        "title": doc["title"],
    }
    if decision.comment is not None:
        result["comment"] = decision.comment
    effects = [
        Effect("notify", {"employeeId": doc["requesterId"], **result}),
        Effect("notify", {"employeeId": decision.approverId, **result}),
    ]
    if current_step is not None:
        effects.append(Effect("handoff", handoff_message({**doc, "steps": after})))
    if final is FinalStatus.APPROVED and doc["requestType"] == RequestType.LEAVE:
        effects.append(Effect("leave", leave_confirmation(doc)))
    if final is FinalStatus.REJECTED and doc["requestType"] == RequestType.LEAVE:
        effects.append(Effect("leave_release", {"requestId": doc["requestId"]}))
    return Applied(index, status, final, current_step, effects, decision.comment)


def decision_changes(applied: Applied, now: datetime) -> dict[str, Any]:
    """The fields a decision sets on the stored document (``version`` aside)."""
    changes: dict[str, Any] = {
        f"steps.{applied.index}.status": applied.step_status.value,
        f"steps.{applied.index}.updatedAt": now,
        "finalStatus": applied.final_status.value,
    }
    if applied.comment is not None:
        changes[f"steps.{applied.index}.comment"] = applied.comment
    return changes


def after_decision(doc: Document, applied: Applied, now: datetime) -> Document:
    """``doc`` as it stands once ``decision_changes`` and the version bump are stored."""
    steps = [dict(s) for s in doc["steps"]]
    steps[applied.index] |= {"status": applied.step_status.value, "updatedAt": now}
    if applied.comment is not None:
        steps[applied.index]["comment"] = applied.comment
    return {
        **doc,
        "steps": steps,
        "finalStatus": applied.final_status.value,
        "version": doc["version"] + 1,
        "updatedAt": now,
    }


def withdraw(doc: Document, *, reason: str | None) -> Withdrawn | Refused:
    """Withdraw an open request: its waiting step leaves the approver's inbox (a message on
    the hand-off's own partition, so it can never overtake that hand-off), the requester and
    that approver are told, and a LEAVE request's reserved days are released. Once final
    (a decision, or an earlier withdrawal, got there first) it is refused."""
    index = awaiting_index(doc)
    if index is None:
        return NOT_WITHDRAWABLE
    step = doc["steps"][index]
    notification: dict[str, Any] = {
        "type": "approval_withdrawn",
        "requestId": doc["requestId"],
        "step": step["step"],
        "approverId": step["approverId"],
        "finalStatus": FinalStatus.WITHDRAWN.value,
        "title": doc["title"],
    }
    if reason is not None:
        notification["reason"] = reason
    effects = [
        Effect("withdrawal", withdrawal_message(doc["requestId"], step)),
        Effect("notify", {"employeeId": doc["requesterId"], **notification}),
        Effect("notify", {"employeeId": step["approverId"], **notification}),
    ]
    if doc["requestType"] == RequestType.LEAVE:
        effects.append(Effect("leave_release", {"requestId": doc["requestId"]}))
    return Withdrawn(index, effects)


def withdrawal_message(request_id: int, step: dict[str, Any]) -> dict[str, Any]:
    """The message that takes a withdrawn step out of its approver's inbox; routed, like a
    hand-off, to the partition of ``approverId``. The one builder production and contracts
    both use."""
    return {
        "requestId": request_id,
        "step": step["step"],
        "approverId": step["approverId"],
        "withdrawn": True,
    }


# What a withdrawal sets (``version`` aside); the waiting step stays ``pending``: nobody
# decided it.
WITHDRAWAL_CHANGES = {"finalStatus": FinalStatus.WITHDRAWN.value}


def withdrawal_history(actor: int, reason: str | None, now: datetime) -> list[dict[str, Any]]:
    return [history_entry(now, actor, HistoryEvent.WITHDRAWN, reason=reason)]


REQUESTER_APPROVES = "requester cannot approve their own request"
STEP_NOT_WAITING = "Step {step} is not the step awaiting a decision"


@dataclass(frozen=True)
class Reassigned:
    """A reassignment to store: the waiting step (``index``), what it sets, and its effects."""

    index: int
    changes: dict[str, Any]
    effects: list[Effect]


def reassign_step(doc: Document, *, step: int, approver_id: int) -> Reassigned | Refused:
    """Give the step awaiting a decision to ``approver_id``: the step stays ``pending`` and
    records whom it came from (``delegatedFrom``); the former approver's inbox loses it (a
    message on that approver's partition) and the new one's gains it (the hand-off, on the
    new approver's partition, from which approval-processing tells them
    ``approval_assigned``). Only the waiting step of an open request may be reassigned; not
    to its requester, nor to the approver it already has. An approver of another step of the
    same request may take it, as creation allows one approver on several steps."""
    index = next((i for i, s in enumerate(doc["steps"]) if s["step"] == step), None)
    if index is None:
        return Refused(404, "Approval step not found")
    if index != awaiting_index(doc):
        if doc["finalStatus"] not in OPEN:
            return Refused(409, f"Approval request is already {doc['finalStatus']}")
        return Refused(409, STEP_NOT_WAITING.format(step=step))
    if approver_id == doc["requesterId"]:
        return Refused(400, REQUESTER_APPROVES)
    former = doc["steps"][index]
    if approver_id == former["approverId"]:
        return Refused(400, f"Employee {approver_id} already approves step {step}")
    after = [dict(s) for s in doc["steps"]]
    after[index] |= {"approverId": approver_id, "delegatedFrom": former["approverId"]}
    changes = {
        f"steps.{index}.approverId": approver_id,
        f"steps.{index}.delegatedFrom": former["approverId"],
        "approverIds": sorted({s["approverId"] for s in after}),
    }
    effects = [
        Effect("reassignment", reassignment_message(doc["requestId"], former, approver_id)),
        Effect("handoff", handoff_message({**doc, "steps": after})),
    ]
    return Reassigned(index, changes, effects)


def reassignment_message(
    request_id: int, former: dict[str, Any], approver_id: int
) -> dict[str, Any]:
    """The message that takes a reassigned step out of its former approver's inbox; routed,
    like that approver's hand-off, to their partition, so it never overtakes it. The one
    builder production and contracts both use."""
    return {
        "requestId": request_id,
        "step": former["step"],
        "approverId": former["approverId"],
        "reassignedTo": approver_id,
    }


def reassignment_history(
    actor: int, step: int, reason: str | None, now: datetime
) -> list[dict[str, Any]]:
    return [history_entry(now, actor, HistoryEvent.REASSIGNED, step=step, reason=reason)]


def cancel(doc: Document, *, today: date, reason: str) -> list[Effect] | Refused:
    """Cancel an approved LEAVE request whose leave starts after ``today`` (the business
    time zone's date): employee-service gives its days back (``leave_cancel``, which then
    tells the requester). Anything else, a cancelled one included, is refused."""
    if (
        doc["requestType"] != RequestType.LEAVE
        or doc["finalStatus"] != FinalStatus.APPROVED
        or date.fromisoformat(doc["leaveInfo"]["startDate"]) <= today
    ):
        return NOT_CANCELLABLE
    return [Effect("leave_cancel", {"requestId": doc["requestId"], "reason": reason})]


# What a cancellation sets (``version`` aside).
CANCELLATION_CHANGES = {"finalStatus": FinalStatus.CANCELLED.value}


def cancellation_history(actor: int, reason: str, now: datetime) -> list[dict[str, Any]]:
    return [history_entry(now, actor, HistoryEvent.CANCELLED, reason=reason)]


def leave_cancelled_notification(cancellation: dict[str, Any], doc: Document) -> dict[str, Any]:
    """What the requester is told once employee-service has given the days back."""
    return {
        "employeeId": doc["requesterId"],
        "type": "leave_cancelled",
        "requestId": doc["requestId"],
        "finalStatus": FinalStatus.CANCELLED.value,
        "title": doc["title"],
        "reason": cancellation["reason"],
    }


def leave_reservation(request_id: int, body: ApprovalCreate) -> dict[str, Any]:
    """What employee-service is asked to reserve for a new LEAVE request."""
    info = body.leaveInfo
    assert info is not None, "checked by creation_error"
    reservation: dict[str, Any] = {
        "requestId": request_id,
        "employeeId": body.requesterId,
        "leaveType": info.leaveType,
        "startDate": info.startDate.isoformat(),
        "endDate": info.endDate.isoformat(),
    }
    if info.halfDay is not None:
        reservation["halfDay"] = info.halfDay
    if info.days is not None:
        reservation["days"] = day_count(info.days)
    return reservation


def leave_confirmation(doc: Document) -> dict[str, Any]:
    info = doc["leaveInfo"]
    return {
        "employeeId": doc["requesterId"],
        "startDate": info["startDate"],
        "endDate": info["endDate"],
        "days": info["days"],
        "leaveType": info["leaveType"],
        "reason": info.get("reason", ""),
        "requestId": doc["requestId"],
    }


def leave_confirmed_notification(leave: dict[str, Any], title: str) -> dict[str, Any]:
    """What the requester is told once the employee service has recorded the leave."""
    return {
        "employeeId": leave["employeeId"],
        "type": "leave_confirmed",
        "requestId": leave["requestId"],
        "finalStatus": FinalStatus.APPROVED.value,
        "title": title,
    }
