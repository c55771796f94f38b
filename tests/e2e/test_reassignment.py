"""Reassigning the waiting step (issue 20 point 4), end to end on real services: an admin or
the step's approver gives it to another approver; the item leaves the former approver's
inbox and reaches the new one's on whichever replicas hold them, and the new approver is
told; who may, which step, with which texts; a decision racing the reassignment (exactly one
wins, the other is 409). In both layouts."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support import factories, layouts
from tests.support.auth import as_admin, as_user
from tests.support.pipeline import (
    Listener,
    document,
    eventually,
    final_status,
    inbox,
    item_arrives,
    listening,
)

pytestmark = layouts.BOTH

REASSIGNED = "The step was reassigned to another approver"


def _reassign_url(approvals_url: str, request_id: int, step: int) -> str:
    return f"{approvals_url}/approvals/{request_id}/steps/{step}/reassign"


async def _left_inbox(
    client: httpx.AsyncClient, processing_url: str, approver: int, request_id: int
) -> None:
    async def probe() -> bool:
        items = await inbox(client, processing_url, approver)
        return all(i["requestId"] != request_id for i in items)

    await eventually(probe, what=f"request {request_id} to leave approver {approver}'s inbox")


async def _assignments(ws: Listener, request_id: int) -> list[dict[str, Any]]:
    return [m for m in ws.of_request(request_id) if m["type"] == "approval_assigned"]


async def test_a_reassigned_step_moves_to_the_new_approvers_inbox_and_they_are_told(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, first, second, substitute = await factories.employees(client, employee_url, 4)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [first, second])
    )
    await item_arrives(client, processing_url, first, request_id)
    approved = await client.post(
        f"{processing_url}/process/{first}/{request_id}", json={"action": "approve"}
    )
    assert approved.status_code == 200, approved.text
    await item_arrives(client, processing_url, second, request_id)

    async with listening(notification_url, substitute) as ws:
        reassigned = await client.post(
            _reassign_url(approvals_url, request_id, 2),
            json={"approverId": substitute, "reason": "휴가 중입니다"},
            headers=as_user(second),
        )

        assert reassigned.status_code == 200, reassigned.text
        doc = reassigned.json()
        assert doc["finalStatus"] == "in_progress"
        assert doc["steps"][1] | {"updatedAt": None} == {
            "step": 2,
            "approverId": substitute,
            "delegatedFrom": second,
            "status": "pending",
            "updatedAt": None,
        }
        last = doc["history"][-1]
        assert {k: last[k] for k in ("actor", "event", "step", "reason")} == {
            "actor": second,
            "event": "reassigned",
            "step": 2,
            "reason": "휴가 중입니다",
        }
        await item_arrives(client, processing_url, substitute, request_id)
        await _left_inbox(client, processing_url, second, request_id)
        told = await eventually(lambda: _assignments(ws, request_id), what="approval_assigned")
        assert (told[0]["step"], told[0]["approverId"]) == (2, substitute)

    former = await client.post(
        f"{processing_url}/process/{second}/{request_id}", json={"action": "approve"}
    )
    assert (former.status_code, former.json()["detail"]) == (409, REASSIGNED)
    late = await client.post(
        f"{approvals_url}/approvals/internal/result",
        json={"requestId": request_id, "step": 2, "approverId": second, "status": "approved"},
    )
    assert (late.status_code, late.json()["detail"]) == (409, REASSIGNED)
    listed = await client.get(
        f"{approvals_url}/approvals", params={"approverId": substitute}, headers=as_admin()
    )
    assert request_id in [d["requestId"] for d in listed.json()]

    decided = await client.post(
        f"{processing_url}/process/{substitute}/{request_id}", json={"action": "approve"}
    )
    assert decided.status_code == 200, decided.text
    doc = await final_status(client, approvals_url, request_id, "approved")
    assert [h["event"] for h in doc["history"]][2:] == [
        "approved",
        "assigned",
        "reassigned",
        "approved",
    ]


async def test_who_may_reassign_which_step_and_to_whom(
    client: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, first, second, other = await factories.employees(client, employee_url, 4)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [first, second])
    )
    url = _reassign_url(approvals_url, request_id, 1)
    body = {"approverId": other}

    assert (await anonymous.post(url, json=body)).status_code == 401
    for stranger in (requester, second, other):
        refused = await client.post(url, json=body, headers=as_user(stranger))
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == (
            "Only an admin or the step's current approver may reassign it"
        )
    unknown = await client.post(
        _reassign_url(approvals_url, 999_999_999, 1), json=body, headers=as_admin()
    )
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "Approval request not found")
    for approver_id, detail in [
        (requester, "requester cannot approve their own request"),
        (999_999_998, "Employee 999999998 not found in Employee Service"),
        (first, f"Employee {first} already approves step 1"),
    ]:
        refused = await client.post(url, json={"approverId": approver_id}, headers=as_admin())
        assert (refused.status_code, refused.json()["detail"]) == (400, detail)
    not_waiting = await client.post(
        _reassign_url(approvals_url, request_id, 2), json=body, headers=as_admin()
    )
    assert (not_waiting.status_code, not_waiting.json()["detail"]) == (
        409,
        "Step 2 is not the step awaiting a decision",
    )
    assert (await client.post(url, json={}, headers=as_admin())).status_code == 422
    doc = await document(client, approvals_url, request_id)
    assert [s["approverId"] for s in doc["steps"]] == [first, second]

    # An admin may; the approver of another step of the request may take it.
    taken = await client.post(url, json={"approverId": second}, headers=as_admin())
    assert taken.status_code == 200, taken.text
    assert "reason" not in taken.json()["history"][-1]
    await item_arrives(client, processing_url, second, request_id)
    await _left_inbox(client, processing_url, first, request_id)

    rejected = await client.post(
        f"{processing_url}/process/{second}/{request_id}", json={"action": "reject"}
    )
    assert rejected.status_code == 200, rejected.text
    final = await client.post(url, json=body, headers=as_admin())
    assert (final.status_code, final.json()["detail"]) == (
        409,
        "Approval request is already rejected",
    )


async def test_a_decision_racing_the_reassignment_exactly_one_wins(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver, substitute = await factories.employees(client, employee_url, 3)
    for _ in range(6):
        request_id = await factories.approval(
            client, approvals_url, factories.approval_body(requester, [approver])
        )
        await item_arrives(client, processing_url, approver, request_id)

        reassigned, decided = await asyncio.gather(
            client.post(
                _reassign_url(approvals_url, request_id, 1),
                json={"approverId": substitute},
                headers=as_admin(),
            ),
            client.post(
                f"{processing_url}/process/{approver}/{request_id}", json={"action": "approve"}
            ),
        )

        codes = (reassigned.status_code, decided.status_code)
        assert codes in ((200, 409), (409, 200)), (reassigned.text, decided.text)
        await _left_inbox(client, processing_url, approver, request_id)
        if codes == (200, 409):
            assert decided.json()["detail"] == REASSIGNED
            await item_arrives(client, processing_url, substitute, request_id)
            doc = await document(client, approvals_url, request_id)
            assert (doc["finalStatus"], doc["steps"][0]["approverId"]) == ("pending", substitute)
        else:
            assert reassigned.json()["detail"] == "Approval request is already approved"
            doc = await final_status(client, approvals_url, request_id, "approved")
            assert [h["event"] for h in doc["history"]][2:] == ["approved"]


async def test_a_reassignment_racing_one_to_the_requester_leaves_only_the_valid_one(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver, substitute = await factories.employees(client, employee_url, 3)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    url = _reassign_url(approvals_url, request_id, 1)

    to_requester, to_substitute = await asyncio.gather(
        client.post(url, json={"approverId": requester}, headers=as_admin()),
        client.post(url, json={"approverId": substitute}, headers=as_admin()),
    )

    assert (to_requester.status_code, to_requester.json()["detail"]) == (
        400,
        "requester cannot approve their own request",
    )
    assert to_substitute.status_code == 200, to_substitute.text
    await item_arrives(client, processing_url, substitute, request_id)
    await _left_inbox(client, processing_url, approver, request_id)
    await _left_inbox(client, processing_url, requester, request_id)
