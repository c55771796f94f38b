"""Per-approver inboxes and the work-message parser, as pure logic."""

from __future__ import annotations

import orjson
import pytest

from services.approval_processing.consumer import (
    ReassignmentMessage,
    WithdrawalMessage,
    parse_message,
    parse_work_item,
)
from services.approval_processing.inbox import Inbox, WorkItem


def item(request_id: int, step: int = 1, approver: int = 2) -> WorkItem:
    return WorkItem(
        requestId=request_id, step=step, requesterId=1, approverId=approver, title="t", content="c"
    )


def test_an_item_is_held_once_however_often_it_arrives() -> None:
    inbox = Inbox(remembered_decisions=10)
    first = inbox.add(item(1))
    assert inbox.add(item(1)) is first
    assert len(inbox) == 1
    assert inbox.pending(2) == [first]


def test_items_are_listed_oldest_first() -> None:
    inbox = Inbox(remembered_decisions=10)
    for request_id in (5, 3, 9):
        inbox.add(item(request_id))
    assert [i.requestId for i in inbox.pending(2)] == [5, 3, 9]


def test_a_decided_step_never_comes_back() -> None:
    inbox = Inbox(remembered_decisions=10)
    held = inbox.add(item(1))
    assert held is not None
    inbox.complete(held)
    assert inbox.add(item(1)) is None
    assert inbox.pending(2) == []


def test_a_withdrawn_item_leaves_and_a_rebuild_cannot_bring_it_back() -> None:
    inbox = Inbox(remembered_decisions=10)
    inbox.add(item(1))
    assert inbox.withdraw(1, 1, 2)
    assert inbox.pending(2) == []
    assert inbox.add(item(1)) is None
    assert inbox.was_withdrawn(2, 1)
    assert not inbox.was_withdrawn(3, 1)


def test_a_withdrawal_before_its_item_arrives_keeps_the_item_out() -> None:
    """A rebuild may read a request as waiting just before its withdrawal is consumed."""
    inbox = Inbox(remembered_decisions=10)
    assert not inbox.withdraw(1, 1, 2)
    assert inbox.add(item(1)) is None
    assert len(inbox) == 0


def test_a_reassigned_item_leaves_its_former_approver_for_the_new_one() -> None:
    inbox = Inbox(remembered_decisions=10)
    inbox.add(item(1, approver=2))
    assert inbox.reassign(1, 1, 2)
    held = inbox.add(item(1, approver=5))
    assert held is not None
    assert inbox.pending(2) == []
    assert inbox.pending(5) == [held]
    assert inbox.was_reassigned(2, 1)
    assert not inbox.was_reassigned(5, 1)


def test_the_new_approvers_hand_off_before_the_removal_leaves_the_item_in_one_inbox() -> None:
    """The two travel on different partitions: either may come first."""
    inbox = Inbox(remembered_decisions=10)
    inbox.add(item(1, approver=2))
    new = inbox.add(item(1, approver=5))
    assert new is not None
    assert inbox.reassign(1, 1, 2)
    assert inbox.pending(2) == []
    assert inbox.pending(5) == [new]
    assert len(inbox) == 1


def test_a_reassigned_step_comes_back_neither_to_its_former_approver_nor_is_lost_to_the_new() -> (
    None
):
    """A parked hand-off or a rebuild of the former approver's item is stale; a decision
    the former approver lost (409) refuses the step to them alone."""
    inbox = Inbox(remembered_decisions=10)
    former = inbox.add(item(1, approver=2))
    assert former is not None
    inbox.complete(former)
    assert not inbox.reassign(1, 1, 2)
    assert inbox.add(item(1, approver=2)) is None
    assert inbox.add(item(1, approver=5)) is not None
    assert len(inbox) == 1


def test_a_reassignment_message_is_parsed_apart_from_a_hand_off() -> None:
    body = {"requestId": 1, "step": 2, "approverId": 3, "reassignedTo": 4}
    assert parse_message(orjson.dumps(body)) == ReassignmentMessage(**body)
    with pytest.raises(ValueError, match="reassignedTo"):
        parse_message(orjson.dumps({**body, "reassignedTo": 0}))


def test_a_withdrawal_of_an_earlier_step_leaves_a_later_one_held() -> None:
    inbox = Inbox(remembered_decisions=10)
    later = inbox.add(item(1, step=2))
    assert not inbox.withdraw(1, 1, 2)
    assert inbox.pending(2) == [later]


def test_the_parser_tells_a_withdrawal_from_a_hand_off() -> None:
    parsed = parse_message(
        orjson.dumps({"requestId": 4, "step": 2, "approverId": 9, "withdrawn": True})
    )
    assert parsed == WithdrawalMessage(requestId=4, step=2, approverId=9, withdrawn=True)
    with pytest.raises(ValueError, match="step"):
        parse_message(orjson.dumps({"requestId": 4, "withdrawn": True}))


def test_a_later_step_replaces_a_stale_earlier_one() -> None:
    inbox = Inbox(remembered_decisions=10)
    inbox.add(item(1, step=1, approver=2))
    inbox.add(item(1, step=2, approver=3))
    assert inbox.pending(2) == []
    assert [i.step for i in inbox.pending(3)] == [2]
    assert inbox.add(item(1, step=1, approver=2)) is None


def test_one_decision_at_a_time_per_item() -> None:
    inbox = Inbox(remembered_decisions=10)
    held = inbox.add(item(1))
    assert held is not None
    assert inbox.begin(held)
    assert not inbox.begin(held)
    inbox.end(held)
    assert inbox.begin(held)


def test_parser_takes_the_lowest_pending_step() -> None:
    body = {
        "requestId": 7,
        "requesterId": 1,
        "title": "t",
        "content": "c",
        "steps": [
            {"step": 2, "approverId": 3, "status": "pending"},
            {"step": 1, "approverId": 2, "status": "approved"},
            {"step": 3, "approverId": 4, "status": "pending"},
        ],
    }
    parsed = parse_work_item(orjson.dumps(body))
    assert parsed is not None
    assert (parsed.requestId, parsed.step, parsed.approverId) == (7, 2, 3)


def test_parser_returns_nothing_when_no_step_is_pending() -> None:
    body = {
        "requestId": 7,
        "requesterId": 1,
        "title": "t",
        "content": "c",
        "steps": [{"step": 1, "approverId": 2, "status": "approved"}],
    }
    assert parse_work_item(orjson.dumps(body)) is None


@pytest.mark.parametrize("raw", [b"", b"{", b"[]", b'{"requestId": 1}', b'{"requestId": "x"}'])
def test_parser_rejects_malformed_messages(raw: bytes) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_work_item(raw)
