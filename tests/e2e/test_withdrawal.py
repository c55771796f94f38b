"""Withdrawal (issue 20 point 2), end to end on real services: the requester (or an admin)
takes back an open request; its waiting step leaves the approver's inbox on whichever
replica holds it, requester and approver are told, a LEAVE request's days are released; who
may, in which state, with which texts; and a decision racing the withdrawal (exactly one
wins, the other is 409). In both layouts. 2038 is these tests' year."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.employee.leave_calls import RESERVATIONS, balance
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

NOT_WITHDRAWABLE = "Request can no longer be withdrawn"
WITHDRAWN = "Approval request was withdrawn"


def _withdraw_url(approvals_url: str, request_id: int) -> str:
    return f"{approvals_url}/approvals/{request_id}/withdraw"


async def _left_inbox(
    client: httpx.AsyncClient, processing_url: str, approver: int, request_id: int
) -> None:
    async def probe() -> bool:
        items = await inbox(client, processing_url, approver)
        return all(i["requestId"] != request_id for i in items)

    await eventually(probe, what=f"request {request_id} to leave approver {approver}'s inbox")


async def test_a_withdrawn_request_leaves_the_inbox_and_requester_and_approver_are_told(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [first, second])
    )
    await item_arrives(client, processing_url, first, request_id)
    approved = await client.post(
        f"{processing_url}/process/{first}/{request_id}", json={"action": "approve"}
    )
    assert approved.status_code == 200, approved.text
    await item_arrives(client, processing_url, second, request_id)

    async with (
        listening(notification_url, requester) as r_ws,
        listening(notification_url, second) as a_ws,
    ):
        withdrawn = await client.post(
            _withdraw_url(approvals_url, request_id),
            json={"reason": "계획이 바뀌었습니다"},
            headers=as_user(requester),
        )

        assert withdrawn.status_code == 200, withdrawn.text
        doc = withdrawn.json()
        assert doc["finalStatus"] == "withdrawn"
        assert [s["status"] for s in doc["steps"]] == ["approved", "pending"]
        last = doc["history"][-1]
        assert {k: last[k] for k in ("actor", "event", "reason")} == {
            "actor": requester,
            "event": "withdrawn",
            "reason": "계획이 바뀌었습니다",
        }
        await _left_inbox(client, processing_url, second, request_id)
        for ws in (r_ws, a_ws):
            told = await eventually(
                lambda ws=ws: _withdrawals(ws, request_id), what="approval_withdrawn"
            )
            assert told[0]["step"] == 2
            assert told[0]["reason"] == "계획이 바뀌었습니다"

    decided = await client.post(
        f"{processing_url}/process/{second}/{request_id}", json={"action": "approve"}
    )
    assert (decided.status_code, decided.json()["detail"]) == (409, WITHDRAWN)
    late = await client.post(
        f"{approvals_url}/approvals/internal/result",
        json={"requestId": request_id, "step": 2, "approverId": second, "status": "approved"},
    )
    assert (late.status_code, late.json()["detail"]) == (409, WITHDRAWN)
    assert (await document(client, approvals_url, request_id))["finalStatus"] == "withdrawn"


async def _withdrawals(ws: Listener, request_id: int) -> list[dict[str, Any]]:
    return [m for m in ws.of_request(request_id) if m["type"] == "approval_withdrawn"]


async def test_who_may_withdraw_and_when(
    client: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver, other = await factories.employees(client, employee_url, 3)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    url = _withdraw_url(approvals_url, request_id)

    assert (await anonymous.post(url)).status_code == 401
    for stranger in (other, approver):
        refused = await client.post(url, headers=as_user(stranger))
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == "Only its requester or an admin may withdraw a request"
    too_long = await client.post(url, json={"reason": "가" * 1001}, headers=as_user(requester))
    assert too_long.status_code == 422
    unknown = await client.post(_withdraw_url(approvals_url, 999_999_999), headers=as_admin())
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "Approval request not found")
    assert (await document(client, approvals_url, request_id))["finalStatus"] == "pending"

    # No body at all is a withdrawal without a reason; an admin may withdraw.
    withdrawn = await client.post(url, headers=as_admin())
    assert withdrawn.status_code == 200, withdrawn.text
    assert "reason" not in withdrawn.json()["history"][-1]
    again = await client.post(url, headers=as_user(requester))
    assert (again.status_code, again.json()["detail"]) == (409, NOT_WITHDRAWABLE)

    decided_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, decided_id)
    rejected = await client.post(
        f"{processing_url}/process/{approver}/{decided_id}", json={"action": "reject"}
    )
    assert rejected.status_code == 200, rejected.text
    late = await client.post(_withdraw_url(approvals_url, decided_id), headers=as_user(requester))
    assert (late.status_code, late.json()["detail"]) == (409, NOT_WITHDRAWABLE)


async def test_a_withdrawn_leave_gives_its_days_back(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    body = factories.leave_body(requester, [approver], startDate="2038-03-02", endDate="2038-03-04")
    request_id = await factories.approval(client, approvals_url, body)
    await item_arrives(client, processing_url, approver, request_id)
    assert (await balance(client, employee_url, requester, 2038))["reserved"] == 3

    withdrawn = await client.post(
        _withdraw_url(approvals_url, request_id), headers=as_user(requester)
    )

    assert withdrawn.status_code == 200, withdrawn.text

    async def released() -> bool:
        found = await client.get(f"{employee_url}{RESERVATIONS}/{request_id}")
        return found.status_code == 200 and found.json()["status"] == "released"

    await eventually(released, what=f"request {request_id}'s reservation to be released")
    after = await balance(client, employee_url, requester, 2038)
    assert (after["reserved"], after["used"]) == (0, 0)


async def test_a_decision_racing_the_withdrawal_exactly_one_wins(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    outcomes = set()
    for _ in range(6):
        request_id = await factories.approval(
            client, approvals_url, factories.approval_body(requester, [approver])
        )
        await item_arrives(client, processing_url, approver, request_id)

        withdrawn, decided = await asyncio.gather(
            client.post(_withdraw_url(approvals_url, request_id), headers=as_user(requester)),
            client.post(
                f"{processing_url}/process/{approver}/{request_id}", json={"action": "approve"}
            ),
        )

        codes = (withdrawn.status_code, decided.status_code)
        assert codes in ((200, 409), (409, 200)), (withdrawn.text, decided.text)
        if codes == (200, 409):
            assert decided.json()["detail"] == WITHDRAWN
            expected = "withdrawn"
        else:
            assert withdrawn.json()["detail"] == NOT_WITHDRAWABLE
            expected = "approved"
        outcomes.add(expected)
        doc = await final_status(client, approvals_url, request_id, expected)
        assert [h["event"] for h in doc["history"]][2:] == [expected]
        await _left_inbox(client, processing_url, approver, request_id)
