"""The approval state machine as pure functions (no I/O)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.approval_request import workflow
from services.approval_request.schemas import Decision


def doc(*statuses: str, final: str = "pending", kind: str = "GENERAL") -> dict[str, Any]:
    return {
        "requestId": 7,
        "requesterId": 1,
        "title": "t",
        "content": "c",
        "requestType": kind,
        "finalStatus": final,
        "steps": [
            {"step": n, "approverId": n + 1, "status": s, "updatedAt": None}
            for n, s in enumerate(statuses, start=1)
        ],
        "leaveInfo": {
            "startDate": "2027-01-01",
            "endDate": "2027-01-02",
            "days": 2,
            "leaveType": "ANNUAL",
            "reason": "r",
        }
        if kind == "LEAVE"
        else None,
    }


def decision(step: int, status: str = "approved") -> Decision:
    return Decision(requestId=7, step=step, approverId=step + 1, status=status)  # type: ignore[arg-type]


def kinds(outcome: workflow.Outcome) -> list[str]:
    assert isinstance(outcome, workflow.Applied)
    return [e.kind for e in outcome.effects]


def test_first_approval_moves_to_in_progress_and_hands_out_the_next_step() -> None:
    outcome = workflow.decide(doc("pending", "pending"), decision(1))
    assert isinstance(outcome, workflow.Applied)
    assert (outcome.final_status, outcome.current_step) == ("in_progress", 2)
    assert kinds(outcome) == ["notify", "notify", "handoff"]
    handoff = outcome.effects[2].payload
    assert [s["status"] for s in handoff["steps"]] == ["approved", "pending"]


def test_last_approval_approves_and_a_leave_is_confirmed() -> None:
    outcome = workflow.decide(
        doc("approved", "pending", final="in_progress", kind="LEAVE"), decision(2)
    )
    assert isinstance(outcome, workflow.Applied)
    assert outcome.final_status == "approved"
    assert kinds(outcome) == ["notify", "notify", "leave"]
    assert outcome.effects[2].payload["requestId"] == 7


def test_rejection_ends_the_request_without_handing_out_later_steps() -> None:
    outcome = workflow.decide(doc("pending", "pending", "pending"), decision(1, "rejected"))
    assert isinstance(outcome, workflow.Applied)
    assert outcome.final_status == "rejected"
    assert kinds(outcome) == ["notify", "notify"]


def test_a_rejected_leave_releases_its_reservation() -> None:
    outcome = workflow.decide(
        doc("approved", "pending", final="in_progress", kind="LEAVE"), decision(2, "rejected")
    )
    assert kinds(outcome) == ["notify", "notify", "leave_release"]
    assert isinstance(outcome, workflow.Applied)
    assert outcome.effects[2].payload == {"requestId": 7}


def test_a_new_leave_request_holds_its_reservation_and_hands_out_step_1() -> None:
    effects = workflow.creation_effects(doc("pending", kind="LEAVE"))
    assert [(e.kind, e.payload.get("requestId")) for e in effects] == [
        ("leave_hold", 7),
        ("handoff", 7),
    ]
    assert [e.kind for e in workflow.creation_effects(doc("pending"))] == ["handoff"]


def test_replay_changes_nothing() -> None:
    assert isinstance(
        workflow.decide(doc("approved", "pending", final="in_progress"), decision(1)),
        workflow.Replay,
    )


def test_opposite_decision_on_a_decided_step_conflicts() -> None:
    outcome = workflow.decide(
        doc("approved", "pending", final="in_progress"), decision(1, "rejected")
    )
    assert outcome == workflow.Refused(409, "Step 1 was already approved")


def test_later_step_cannot_be_decided_first() -> None:
    outcome = workflow.decide(doc("pending", "pending"), decision(2))
    assert isinstance(outcome, workflow.Refused)
    assert outcome.status_code == 409


def test_steps_after_a_rejection_conflict() -> None:
    outcome = workflow.decide(doc("rejected", "pending", final="rejected"), decision(2))
    assert outcome == workflow.Refused(409, "Approval request was already rejected")


def test_unknown_step_or_approver_is_not_found() -> None:
    wrong_approver = Decision(requestId=7, step=1, approverId=99, status="approved")
    assert workflow.decide(doc("pending"), wrong_approver) == workflow.STEP_NOT_FOUND
    assert workflow.decide(doc("pending"), decision(5)) == workflow.STEP_NOT_FOUND


def test_handoff_message_has_the_spec_shape() -> None:
    message = workflow.handoff_message(doc("approved", "pending"))
    assert message == {
        "requestId": 7,
        "requesterId": 1,
        "title": "t",
        "content": "c",
        "steps": [
            {"step": 1, "approverId": 2, "status": "approved"},
            {"step": 2, "approverId": 3, "status": "pending"},
        ],
    }


def test_the_document_after_a_decision_is_what_its_changes_store() -> None:
    before = {**doc("approved", "pending"), "version": 3}
    now = datetime(2027, 1, 1, tzinfo=UTC)
    outcome = workflow.decide(before, decision(2))
    assert isinstance(outcome, workflow.Applied)

    changes = workflow.decision_changes(outcome, now)
    after = workflow.after_decision(before, outcome, now)

    assert changes == {
        "steps.1.status": "approved",
        "steps.1.updatedAt": now,
        "finalStatus": "approved",
    }
    assert after["steps"][1] == {"step": 2, "approverId": 3, "status": "approved", "updatedAt": now}
    assert after["finalStatus"] == "approved"
    assert after["version"] == 4
    assert before["steps"][1]["status"] == "pending"  # the judged document is left as it was
    assert before["version"] == 3


def test_a_comment_is_stored_on_the_step_and_told_with_the_result() -> None:
    before = {**doc("pending"), "version": 0}
    now = datetime(2027, 1, 1, tzinfo=UTC)
    commented = Decision(requestId=7, step=1, approverId=2, status="rejected", comment="다음에")
    outcome = workflow.decide(before, commented)
    assert isinstance(outcome, workflow.Applied)

    assert workflow.decision_changes(outcome, now)["steps.0.comment"] == "다음에"
    assert workflow.after_decision(before, outcome, now)["steps"][0]["comment"] == "다음에"
    assert {e.payload["comment"] for e in outcome.effects if e.kind == "notify"} == {"다음에"}


def test_without_a_comment_neither_the_step_nor_the_result_has_one() -> None:
    outcome = workflow.decide(doc("pending"), decision(1))
    assert isinstance(outcome, workflow.Applied)
    assert not any(
        "comment" in key for key in workflow.decision_changes(outcome, datetime.now(UTC))
    )
    assert all("comment" not in e.payload for e in outcome.effects)


def test_the_same_decision_with_another_comment_is_still_a_replay() -> None:
    again = Decision(requestId=7, step=1, approverId=2, status="approved", comment="다시")
    assert isinstance(workflow.decide(doc("approved", "pending"), again), workflow.Replay)


def test_an_approval_records_the_decision_and_the_next_assignment_by_the_approver() -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    before = doc("pending", "pending")
    outcome = workflow.decide(before, decision(1))
    assert isinstance(outcome, workflow.Applied)

    assert workflow.decision_history(before, outcome, now) == [
        {"at": now, "actor": 2, "event": "approved", "step": 1},
        {"at": now, "actor": 2, "event": "assigned", "step": 2},
    ]


def test_a_last_approval_or_a_rejection_records_the_decision_alone() -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    last = doc("approved", "pending", final="in_progress")
    approved = workflow.decide(last, decision(2))
    first = doc("pending", "pending")
    rejected = workflow.decide(first, decision(1, "rejected"))
    assert isinstance(approved, workflow.Applied)
    assert isinstance(rejected, workflow.Applied)

    assert [e["event"] for e in workflow.decision_history(last, approved, now)] == ["approved"]
    assert [e["event"] for e in workflow.decision_history(first, rejected, now)] == ["rejected"]


def test_a_new_request_records_its_creation_and_first_assignment_by_the_requester() -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    assert workflow.creation_history(doc("pending", "pending"), now) == [
        {"at": now, "actor": 1, "event": "created"},
        {"at": now, "actor": 1, "event": "assigned", "step": 1},
    ]


def test_a_withdrawal_takes_the_waiting_step_out_and_tells_requester_and_approver() -> None:
    outcome = workflow.withdraw(doc("approved", "pending", final="in_progress"), reason="왜")
    assert isinstance(outcome, workflow.Withdrawn)
    assert outcome.index == 1
    assert [e.kind for e in outcome.effects] == ["withdrawal", "notify", "notify"]
    assert outcome.effects[0].payload == {
        "requestId": 7,
        "step": 2,
        "approverId": 3,
        "withdrawn": True,
    }
    told = [e.payload for e in outcome.effects[1:]]
    assert [n["employeeId"] for n in told] == [1, 3]
    assert {(n["type"], n["finalStatus"], n["reason"]) for n in told} == {
        ("approval_withdrawn", "withdrawn", "왜")
    }


def test_a_withdrawn_leave_releases_its_days() -> None:
    outcome = workflow.withdraw(doc("pending", kind="LEAVE"), reason=None)
    assert isinstance(outcome, workflow.Withdrawn)
    assert [e.kind for e in outcome.effects][-1] == "leave_release"
    assert all("reason" not in e.payload for e in outcome.effects)


def test_a_final_request_can_no_longer_be_withdrawn() -> None:
    for final, steps in [
        ("approved", ("approved",)),
        ("rejected", ("rejected", "pending")),
        ("withdrawn", ("pending",)),
    ]:
        assert workflow.withdraw(doc(*steps, final=final), reason=None) == workflow.Refused(
            409, "Request can no longer be withdrawn"
        )


def test_a_decision_after_the_withdrawal_is_refused() -> None:
    withdrawn = doc("approved", "pending", final="withdrawn")
    assert workflow.awaiting_index(withdrawn) is None
    assert workflow.decide(withdrawn, decision(2)) == workflow.Refused(
        409, "Approval request was withdrawn"
    )


def test_the_withdrawal_history_names_who_and_why() -> None:
    now = datetime.now(UTC)
    assert workflow.withdrawal_history(1, "plans changed", now) == [
        {"at": now, "actor": 1, "event": "withdrawn", "reason": "plans changed"}
    ]


def test_a_reassignment_moves_the_waiting_step_to_the_new_approver_and_keeps_it_pending() -> None:
    waiting = doc("approved", "pending", final="in_progress")
    outcome = workflow.reassign_step(waiting, step=2, approver_id=9)
    assert isinstance(outcome, workflow.Reassigned)
    assert outcome.index == 1
    assert outcome.changes == {
        "steps.1.approverId": 9,
        "steps.1.delegatedFrom": 3,
        "approverIds": [2, 9],
    }
    removal, handoff = outcome.effects
    assert removal == workflow.Effect(
        "reassignment", {"requestId": 7, "step": 2, "approverId": 3, "reassignedTo": 9}
    )
    assert handoff.kind == "handoff"
    assert handoff.payload["steps"] == [
        {"step": 1, "approverId": 2, "status": "approved"},
        {"step": 2, "approverId": 9, "status": "pending"},
    ]


def test_only_the_step_awaiting_a_decision_of_an_open_request_is_reassigned() -> None:
    waiting = doc("approved", "pending", "pending", final="in_progress")
    for step in (1, 3):
        assert workflow.reassign_step(waiting, step=step, approver_id=9) == workflow.Refused(
            409, f"Step {step} is not the step awaiting a decision"
        )
    for final, steps in [("rejected", ("rejected", "pending")), ("withdrawn", ("pending",))]:
        assert workflow.reassign_step(
            doc(*steps, final=final), step=len(steps), approver_id=9
        ) == workflow.Refused(409, f"Approval request is already {final}")
    assert workflow.reassign_step(waiting, step=4, approver_id=9) == workflow.Refused(
        404, "Approval step not found"
    )


def test_a_step_is_not_reassigned_to_its_requester_nor_to_its_own_approver() -> None:
    waiting = doc("pending")
    assert workflow.reassign_step(waiting, step=1, approver_id=1) == workflow.Refused(
        400, "requester cannot approve their own request"
    )
    assert workflow.reassign_step(waiting, step=1, approver_id=2) == workflow.Refused(
        400, "Employee 2 already approves step 1"
    )


def test_an_approver_of_another_step_may_take_the_waiting_one() -> None:
    outcome = workflow.reassign_step(doc("pending", "pending"), step=1, approver_id=3)
    assert isinstance(outcome, workflow.Reassigned)
    assert outcome.changes["approverIds"] == [3]


def test_the_former_approvers_decision_after_a_reassignment_is_refused() -> None:
    reassigned = doc("pending")
    reassigned["steps"][0] |= {"approverId": 9, "delegatedFrom": 2}
    assert workflow.decide(reassigned, decision(1)) == workflow.Refused(
        409, "The step was reassigned to another approver"
    )
    new = Decision(requestId=7, step=1, approverId=9, status="approved")
    assert isinstance(workflow.decide(reassigned, new), workflow.Applied)


def test_the_reassignment_history_names_who_which_step_and_why() -> None:
    now = datetime.now(UTC)
    assert workflow.reassignment_history(2, 1, "on leave", now) == [
        {"at": now, "actor": 2, "event": "reassigned", "step": 1, "reason": "on leave"}
    ]


def test_an_approved_leave_that_has_not_started_is_cancelled_and_its_days_given_back() -> None:
    approved = doc("approved", final="approved", kind="LEAVE")  # starts 2027-01-01
    effects = workflow.cancel(approved, today=date(2026, 12, 31), reason="아파서")
    assert effects == [workflow.Effect("leave_cancel", {"requestId": 7, "reason": "아파서"})]
    assert workflow.leave_cancelled_notification(
        {"requestId": 7, "reason": "아파서"}, approved
    ) == {
        "employeeId": 1,
        "type": "leave_cancelled",
        "requestId": 7,
        "finalStatus": "cancelled",
        "title": "t",
        "reason": "아파서",
    }


def test_only_an_approved_leave_not_started_yet_can_be_cancelled() -> None:
    refused = workflow.Refused(409, "Request can no longer be cancelled")
    before = date(2026, 12, 31)
    for request in [
        doc("approved", final="approved", kind="LEAVE"),  # starting today
        doc("approved", final="cancelled", kind="LEAVE"),
        doc("pending", kind="LEAVE"),
        doc("rejected", final="rejected", kind="LEAVE"),
        doc("pending", final="withdrawn", kind="LEAVE"),
        doc("approved", final="approved"),  # GENERAL
    ]:
        today = date(2027, 1, 1) if request["finalStatus"] == "approved" else before
        assert workflow.cancel(request, today=today, reason="r") == refused, request


def test_a_decision_on_a_cancelled_request_is_refused() -> None:
    cancelled = doc("approved", final="cancelled", kind="LEAVE")
    assert workflow.awaiting_index(cancelled) is None
    assert workflow.decide(cancelled, decision(1, "rejected")) == workflow.Refused(
        409, "Step 1 was already approved"
    )
