"""Cancelling an approved leave (issue 20 point 3), end to end on real services: the
requester (or an admin) cancels an approved LEAVE request that has not started; the leave
record is kept, marked cancelled, its days return to the balance exactly once, and the
requester is told; who may, in which state, with which texts; two cancellations at once (one
200, one 409, the days returned once). In both layouts. 2039 is these tests' year (and
2026, for leave that has started)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.employee.leave_calls import RESERVATIONS, balance
from tests.support import factories, layouts
from tests.support.auth import as_admin, as_user
from tests.support.layouts import Layout
from tests.support.pipeline import decide, document, eventually, final_status, listening
from tests.support.settled import outbox_drained

pytestmark = layouts.BOTH

NOT_CANCELLABLE = "Request can no longer be cancelled"


def _cancel_url(approvals_url: str, request_id: int) -> str:
    return f"{approvals_url}/approvals/{request_id}/cancel"


async def _approved_leave(
    client: httpx.AsyncClient,
    urls: dict[str, str],
    requester: int,
    approver: int,
    start: str,
    end: str,
) -> int:
    body = factories.leave_body(requester, [approver], startDate=start, endDate=end)
    del body["leaveInfo"]["days"]  # counted by employee-service
    request_id = await factories.approval(client, urls["approvals"], body)
    assert (await decide(client, urls["processing"], approver, request_id)).status_code == 200
    await final_status(client, urls["approvals"], request_id, "approved")
    await _reservation_is(client, urls["employee"], request_id, "approved")
    return request_id


async def _reservation_is(
    client: httpx.AsyncClient, employee_url: str, request_id: int, status: str
) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        found = await client.get(f"{employee_url}{RESERVATIONS}/{request_id}")
        assert found.status_code == 200, found.text
        return found.json() if found.json()["status"] == status else None

    return await eventually(probe, what=f"request {request_id}'s leave to be {status}")


async def test_a_cancelled_leave_is_kept_its_days_return_once_and_the_requester_is_told(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    urls = {"employee": employee_url, "approvals": approvals_url, "processing": processing_url}
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await _approved_leave(
        client, urls, requester, approver, "2039-03-08", "2039-03-10"
    )
    taken = await balance(client, employee_url, requester, 2039)
    assert (taken["used"], taken["remaining"]) == (3, 12)

    async with listening(notification_url, requester) as ws:
        cancelled = await client.post(
            _cancel_url(approvals_url, request_id),
            json={"reason": "일정 변경"},
            headers=as_user(requester),
        )

        assert cancelled.status_code == 200, cancelled.text
        doc = cancelled.json()
        assert doc["finalStatus"] == "cancelled"
        last = doc["history"][-1]
        assert (last["event"], last["actor"], last["reason"]) == (
            "cancelled",
            requester,
            "일정 변경",
        )
        record = await _reservation_is(client, employee_url, request_id, "cancelled")
        assert record["days"] == 3
        told = await eventually(
            lambda: _of_type(ws.of_request(request_id), "leave_cancelled"),
            what="leave_cancelled",
        )
        assert (told[0]["finalStatus"], told[0]["reason"]) == ("cancelled", "일정 변경")

    await outbox_drained(request_id, db=layout.db)
    back = await balance(client, employee_url, requester, 2039)
    assert (back["used"], back["reserved"], back["remaining"]) == (0, 0, 15)
    again = await client.post(
        _cancel_url(approvals_url, request_id), json={"reason": "또"}, headers=as_admin()
    )
    assert (again.status_code, again.json()["detail"]) == (409, NOT_CANCELLABLE)
    assert (await balance(client, employee_url, requester, 2039))["remaining"] == 15


async def _of_type(messages: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == kind]


async def test_who_may_cancel_and_when(
    client: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    urls = {"employee": employee_url, "approvals": approvals_url, "processing": processing_url}
    requester, approver, other = await factories.employees(client, employee_url, 3)
    request_id = await _approved_leave(
        client, urls, requester, approver, "2039-04-05", "2039-04-05"
    )
    url = _cancel_url(approvals_url, request_id)
    reason = {"reason": "사정이 생겼습니다"}

    assert (await anonymous.post(url, json=reason)).status_code == 401
    for stranger in (other, approver):
        refused = await client.post(url, json=reason, headers=as_user(stranger))
        assert refused.status_code == 403, refused.text
        assert refused.json()["detail"] == "Only its requester or an admin may cancel a request"
    for body in ({}, {"reason": "  "}, {"reason": "가" * 1001}, None):
        missing = await client.post(url, json=body, headers=as_user(requester))
        assert missing.status_code == 422, (body, missing.text)
    unknown = await client.post(_cancel_url(approvals_url, 999_999_999), json=reason)
    assert (unknown.status_code, unknown.json()["detail"]) == (404, "Approval request not found")
    assert (await document(client, approvals_url, request_id))["finalStatus"] == "approved"

    started = await _approved_leave(client, urls, requester, approver, "2026-11-02", "2026-11-04")
    pending_body = factories.leave_body(
        requester, [approver], startDate="2039-05-10", endDate="2039-05-11"
    )
    del pending_body["leaveInfo"]["days"]
    pending = await factories.approval(client, approvals_url, pending_body)
    general = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    assert (await decide(client, processing_url, approver, general)).status_code == 200
    await final_status(client, approvals_url, general, "approved")
    for refused_id in (started, pending, general):
        late = await client.post(
            _cancel_url(approvals_url, refused_id), json=reason, headers=as_user(requester)
        )
        assert (late.status_code, late.json()["detail"]) == (409, NOT_CANCELLABLE), refused_id

    # An admin may cancel.
    cancelled = await client.post(url, json=reason, headers=as_admin())
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["finalStatus"] == "cancelled"


async def test_two_cancellations_at_once_one_wins_and_the_days_return_once(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    urls = {"employee": employee_url, "approvals": approvals_url, "processing": processing_url}
    requester, approver = await factories.employees(client, employee_url, 2)
    for month in (6, 7, 8):
        request_id = await _approved_leave(
            client, urls, requester, approver, f"2039-{month:02d}-07", f"2039-{month:02d}-08"
        )
        url = _cancel_url(approvals_url, request_id)

        answers = await asyncio.gather(
            client.post(url, json={"reason": "하나"}, headers=as_user(requester)),
            client.post(url, json={"reason": "둘"}, headers=as_admin()),
        )

        codes = sorted(a.status_code for a in answers)
        assert codes == [200, 409], [a.text for a in answers]
        loser = next(a for a in answers if a.status_code == 409)
        assert loser.json()["detail"] == NOT_CANCELLABLE
        doc = await document(client, approvals_url, request_id)
        assert [h["event"] for h in doc["history"]].count("cancelled") == 1
        await outbox_drained(request_id, db=layout.db)
        await _reservation_is(client, employee_url, request_id, "cancelled")
    after = await balance(client, employee_url, requester, 2039)
    assert (after["used"], after["reserved"], after["remaining"]) == (0, 0, 15)
