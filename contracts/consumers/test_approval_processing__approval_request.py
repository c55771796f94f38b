"""approval-processing-service -> approval-request-service.

Over HTTP: the decision callback (``submit_decision``) and the inbox rebuild's keyset-paged
read of waiting steps (``waiting_steps``). Over RabbitMQ: the ``approval.work`` hand-off,
fed into the consumer's own parser (``parse_work_item``), and the withdrawal or reassignment
that follows a hand-off on its route (``parse_message``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from pact import Pact, match
from pact.interaction import HttpInteraction

from contracts.support import DECISION, STEP_STATUS, service_token
from services.approval_processing.clients import submit_decision, waiting_steps
from services.approval_processing.consumer import (
    ReassignmentMessage,
    WithdrawalMessage,
    parse_message,
    parse_work_item,
)
from services.approval_processing.inbox import WorkItem
from services.common.messaging import EXCHANGE, partition_of, partition_routing_key

CONSUMER = "approval-processing-service"
PROVIDER = "approval-request-service"

Handler = Callable[[str | bytes | None, dict[str, object]], None]
AWAITS_STEP_2 = "approval request 12 awaits step 2 of approvers 2, 3"


def _decision(
    pact: Pact,
    description: str,
    state: str,
    request_id: int,
    step: int,
    approver_id: int,
    comment: str | None = None,
) -> HttpInteraction:
    body: dict[str, Any] = {
        "requestId": match.int(request_id),
        "step": match.int(step),
        "approverId": match.int(approver_id),
        "status": match.regex("approved", regex=DECISION),
    }
    if comment is not None:
        body["comment"] = match.str(comment)
    return (
        pact.upon_receiving(description)
        .given(state)
        .with_request("POST", "/approvals/internal/result")
        .with_header("Authorization", service_token())
        .with_body(body, "application/json")
    )


async def test_a_decision_on_the_awaited_step_is_applied(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    _decision(
        pact, "a decision on the step awaiting it", AWAITS_STEP_2, 12, 2, 3
    ).will_respond_with(204)

    with pact.serve() as server:
        status, _ = await submit_decision(
            http, str(server.url), request_id=12, step=2, approver_id=3, status="approved"
        )

    assert status == 204


async def test_a_decision_with_a_comment_carries_it(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    _decision(
        pact,
        "a decision with a comment on the step awaiting it",
        AWAITS_STEP_2,
        12,
        2,
        3,
        comment="일정 확인했습니다",
    ).will_respond_with(204)

    with pact.serve() as server:
        status, _ = await submit_decision(
            http,
            str(server.url),
            request_id=12,
            step=2,
            approver_id=3,
            status="approved",
            comment="일정 확인했습니다",
        )

    assert status == 204


async def test_a_decision_on_an_unknown_request_is_not_found(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    (
        _decision(
            pact,
            "a decision on a request that does not exist",
            "approval request 999 does not exist",
            999,
            1,
            2,
        )
        .will_respond_with(404)
        .with_body({"detail": match.str("Approval request not found")}, "application/json")
    )

    with pact.serve() as server:
        status, body = await submit_decision(
            http, str(server.url), request_id=999, step=1, approver_id=2, status="approved"
        )

    assert status == 404
    assert isinstance(body["detail"], str)


async def test_a_decision_on_a_step_not_yet_awaited_conflicts(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    (
        _decision(
            pact,
            "a decision on a step that is not the one awaiting a decision",
            "approval request 13 awaits step 1 of approvers 2, 3",
            13,
            2,
            3,
        )
        .will_respond_with(409)
        .with_body(
            {"detail": match.str("Step 2 is not the step awaiting a decision")}, "application/json"
        )
    )

    with pact.serve() as server:
        status, body = await submit_decision(
            http, str(server.url), request_id=13, step=2, approver_id=3, status="approved"
        )

    assert status == 409
    assert isinstance(body["detail"], str)


def _waiting(pact: Pact, description: str, states: list[str], after: int) -> HttpInteraction:
    interaction = pact.upon_receiving(description)
    for state in states:
        interaction.given(state)
    return (
        interaction.with_request("GET", "/approvals/internal/waiting")
        .with_header("Authorization", service_token())
        .with_query_parameter("afterRequestId", match.regex(str(after), regex=r"^\d+$"))
        .with_query_parameter("limit", match.regex("1000", regex=r"^\d+$"))
        .will_respond_with(200)
    )


WAITING_STEP = {
    "requestId": match.int(12),
    "step": match.int(2),
    "requesterId": match.int(1),
    "approverId": match.int(3),
    "title": match.str("결재 요청"),
    "content": match.str("내용"),
}


async def test_the_inbox_rebuild_reads_a_page_of_waiting_steps(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    _waiting(pact, "a first page of the steps awaiting a decision", [AWAITS_STEP_2], 0).with_body(
        match.each_like(WAITING_STEP, min=1), "application/json"
    )

    with pact.serve() as server:
        page = await waiting_steps(http, str(server.url), after_request_id=0, limit=1000)

    # The rebuild turns every row into an inbox item as it is.
    items = [WorkItem(**row) for row in page]
    assert (items[0].requestId, items[0].step, items[0].approverId) == (12, 2, 3)


async def test_the_inbox_rebuild_stops_at_an_empty_page(
    pact: Pact, http: aiohttp.ClientSession
) -> None:
    states = [AWAITS_STEP_2, "no approval request after 12 awaits a decision"]
    _waiting(pact, "a page after the last step awaiting a decision", states, 12).with_body(
        [], "application/json"
    )

    with pact.serve() as server:
        page = await waiting_steps(http, str(server.url), after_request_id=12, limit=1000)

    assert page == []


def _step(step: int, approver_id: int, status: str) -> dict[str, Any]:
    return {
        "step": match.int(step),
        "approverId": match.int(approver_id),
        "status": match.regex(status, regex=STEP_STATUS),
    }


def _handoff(
    pact: Pact, description: str, state: str, steps: list[dict[str, Any]], approver: int
) -> None:
    """Routed to the partition of the approver it waits for: only its owner consumes it."""
    (
        pact.upon_receiving(description, "Async")
        .given(state)
        .with_body(
            {
                "requestId": match.int(12),
                "requesterId": match.int(1),
                "title": match.str("결재 요청"),
                "content": match.str("내용"),
                "steps": match.type(steps, min=1),
            },
            "application/json",
        )
        .with_metadata(
            {"exchange": EXCHANGE, "routingKey": partition_routing_key(partition_of(approver))}
        )
    )


def _consume(expected: tuple[int, int]) -> Handler:
    """The message handler's parser must find the work item the message stands for."""

    def handle(body: str | bytes | None, metadata: dict[str, object]) -> None:
        assert body is not None
        assert metadata["contentType"] == "application/json"
        raw = body.encode() if isinstance(body, str) else body
        item = parse_work_item(raw)
        assert item is not None
        assert (item.requestId, item.step, item.approverId) == (12, *expected)
        key = partition_routing_key(partition_of(item.approverId))
        assert (metadata["exchange"], metadata["routingKey"]) == (EXCHANGE, key)

    return handle


def test_a_new_request_is_handed_to_its_first_approver(pact: Pact) -> None:
    _handoff(
        pact,
        "an approval.work hand-off of a new request",
        "approval request 12 awaits step 1 of approvers 2, 3",
        [_step(1, 2, "pending"), _step(2, 3, "pending")],
        approver=2,
    )

    pact.verify(_consume((1, 2)), "Async")


def test_an_approved_step_hands_the_request_to_the_next_approver(pact: Pact) -> None:
    _handoff(
        pact,
        "an approval.work hand-off of the next step after an approval",
        AWAITS_STEP_2,
        [_step(1, 2, "approved"), _step(2, 3, "pending")],
        approver=3,
    )

    pact.verify(_consume((2, 3)), "Async")


def test_a_withdrawal_takes_the_waiting_step_out_of_its_approvers_inbox(pact: Pact) -> None:
    """On the route of the hand-off it withdraws (its approver's partition), so it never
    overtakes it."""
    (
        pact.upon_receiving("an approval.work withdrawal of the step awaiting a decision", "Async")
        .given(AWAITS_STEP_2)
        .with_body(
            {
                "requestId": match.int(12),
                "step": match.int(2),
                "approverId": match.int(3),
                "withdrawn": True,
            },
            "application/json",
        )
        .with_metadata({"exchange": EXCHANGE, "routingKey": partition_routing_key(partition_of(3))})
    )

    def handle(body: str | bytes | None, metadata: dict[str, object]) -> None:
        assert body is not None
        assert metadata["contentType"] == "application/json"
        withdrawal = parse_message(body.encode() if isinstance(body, str) else body)
        assert isinstance(withdrawal, WithdrawalMessage)
        assert (withdrawal.requestId, withdrawal.step, withdrawal.approverId) == (12, 2, 3)
        key = partition_routing_key(partition_of(withdrawal.approverId))
        assert (metadata["exchange"], metadata["routingKey"]) == (EXCHANGE, key)

    pact.verify(handle, "Async")


def test_a_reassigned_step_is_handed_to_its_new_approver(pact: Pact) -> None:
    """An ordinary hand-off, its waiting step naming the new approver (9 in the provider's
    reassignment), on that approver's partition."""
    _handoff(
        pact,
        "an approval.work hand-off of a reassigned step to its new approver",
        AWAITS_STEP_2,
        [_step(1, 2, "approved"), _step(2, 9, "pending")],
        approver=9,
    )

    pact.verify(_consume((2, 9)), "Async")


def test_a_reassignment_takes_the_waiting_step_out_of_its_former_approvers_inbox(
    pact: Pact,
) -> None:
    """On the route of the former approver's hand-off (their partition), so it never
    overtakes it; the new approver's hand-off is an ordinary one."""
    (
        pact.upon_receiving(
            "an approval.work reassignment of the step awaiting a decision", "Async"
        )
        .given(AWAITS_STEP_2)
        .with_body(
            {
                "requestId": match.int(12),
                "step": match.int(2),
                "approverId": match.int(3),
                "reassignedTo": match.int(9),
            },
            "application/json",
        )
        .with_metadata({"exchange": EXCHANGE, "routingKey": partition_routing_key(partition_of(3))})
    )

    def handle(body: str | bytes | None, metadata: dict[str, object]) -> None:
        assert body is not None
        assert metadata["contentType"] == "application/json"
        removal = parse_message(body.encode() if isinstance(body, str) else body)
        assert isinstance(removal, ReassignmentMessage)
        assert (removal.requestId, removal.step, removal.approverId) == (12, 2, 3)
        key = partition_routing_key(partition_of(removal.approverId))
        assert (metadata["exchange"], metadata["routingKey"]) == (EXCHANGE, key)

    pact.verify(handle, "Async")
