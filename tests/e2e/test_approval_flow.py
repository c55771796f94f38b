"""The approval pipeline end to end: real service processes on real MariaDB, RabbitMQ and
FerretDB, driven only through their HTTP and WebSocket interfaces (the database and broker
are read only to know when nothing more is in flight: tests/support/settled.py).

Every flow runs in two layouts: the session's one process a service, and two replicas of
each behind the local gateway (`erp up --replicas 2`), where each call may land on either
replica and a socket on one notification replica gets what was posted to the other."""

from __future__ import annotations

import asyncio

import httpx

from tests.support import factories, layouts
from tests.support.layouts import Layout
from tests.support.pipeline import (
    decide,
    document,
    eventually,
    final_status,
    inbox,
    item_arrives,
    listening,
)
from tests.support.settled import outbox_drained, settled

pytestmark = layouts.BOTH


async def test_two_step_general_request_is_approved_by_both(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    async with (
        listening(notification_url, requester) as r_ws,
        listening(notification_url, first) as a1_ws,
        listening(notification_url, second) as a2_ws,
    ):
        created = await client.post(
            f"{approvals_url}/approvals", json=factories.approval_body(requester, [first, second])
        )
        assert created.status_code == 201
        request_id = created.json()["requestId"]
        assert created.json() == {"requestId": request_id}

        doc = await document(client, approvals_url, request_id)
        assert doc["finalStatus"] == "pending"
        assert [(s["status"], s["updatedAt"]) for s in doc["steps"]] == [("pending", None)] * 2

        item = await item_arrives(client, processing_url, first, request_id)
        assert item == {
            "requestId": request_id,
            "step": 1,
            "requesterId": requester,
            "approverId": first,
            "title": "결재 요청",
            "content": "내용",
            "status": "pending",
        }
        assert await inbox(client, processing_url, second) == []

        approved = await client.post(
            f"{processing_url}/process/{first}/{request_id}", json={"action": "approve"}
        )
        assert approved.status_code == 200
        assert approved.json() == {**item, "status": "approved"}
        doc = await final_status(client, approvals_url, request_id, "in_progress")
        assert doc["steps"][0]["status"] == "approved"
        assert doc["steps"][0]["updatedAt"] is not None
        assert doc["steps"][1] == {
            "step": 2,
            "approverId": second,
            "status": "pending",
            "updatedAt": None,
        }
        assert await inbox(client, processing_url, first) == []

        assert (await decide(client, processing_url, second, request_id)).status_code == 200
        doc = await final_status(client, approvals_url, request_id, "approved")
        assert all(s["status"] == "approved" and s["updatedAt"] for s in doc["steps"])
        assert doc["updatedAt"] >= doc["createdAt"]

        to_first = await a1_ws.wait_for(2, request_id)
        assert [(m["type"], m.get("step")) for m in to_first] == [
            ("approval_assigned", 1),
            ("approval_result", 1),
        ]
        to_second = await a2_ws.wait_for(2, request_id)
        assert [(m["type"], m.get("step"), m.get("finalStatus")) for m in to_second] == [
            ("approval_assigned", 2, None),
            ("approval_result", 2, "approved"),
        ]
        to_requester = await r_ws.wait_for(2, request_id)
        assert [(m["type"], m["stepStatus"], m["finalStatus"]) for m in to_requester] == [
            ("approval_result", "approved", "in_progress"),
            ("approval_result", "approved", "approved"),
        ]
        ids = [m["id"] for m in r_ws.messages]
        assert ids == sorted(ids)
        assert len(set(ids)) == len(ids)
        assert all("createdAt" in m for m in to_first + to_second + to_requester)


async def test_rejection_at_step_one_ends_the_request(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    async with listening(notification_url, requester) as r_ws:
        request_id = await factories.approval(
            client, approvals_url, factories.approval_body(requester, [first, second])
        )
        rejected = await decide(client, processing_url, first, request_id, "reject")
        assert rejected.status_code == 200
        assert rejected.json()["status"] == "rejected"
        doc = await final_status(client, approvals_url, request_id, "rejected")
        assert [s["status"] for s in doc["steps"]] == ["rejected", "pending"]
        (result,) = await r_ws.wait_for(1, request_id)
        assert (result["stepStatus"], result["finalStatus"]) == ("rejected", "rejected")
    await settled(request_id, db=layout.db)  # no hand-off to step 2 is on its way
    assert await inbox(client, processing_url, second) == []
    late = await client.post(
        f"{approvals_url}/approvals/internal/result",
        json={"requestId": request_id, "step": 2, "approverId": second, "status": "approved"},
    )
    assert late.status_code == 409


async def test_leave_request_approved_by_both_records_exactly_one_leave(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    body = factories.leave_body(
        requester,
        [first, second],
        startDate="2027-01-04",
        endDate="2027-01-06",
        days=3,
        leaveType="ANNUAL",
        reason="설 연휴",
    )
    async with listening(notification_url, requester) as r_ws:
        created = await client.post(f"{approvals_url}/approvals", json=body)
        assert created.status_code == 201
        request_id = created.json()["requestId"]
        doc = await document(client, approvals_url, request_id)
        assert doc["requestType"] == "LEAVE"
        assert doc["leaveInfo"] == body["leaveInfo"]

        assert (await decide(client, processing_url, first, request_id)).status_code == 200
        assert (await decide(client, processing_url, second, request_id)).status_code == 200
        await final_status(client, approvals_url, request_id, "approved")

        async def leaves() -> list[dict[str, object]] | None:
            found = await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
            return found.json() or None

        (leave,) = await eventually(leaves, what="the leave record")
        assert {
            k: leave[k]
            for k in ("start_date", "end_date", "days", "leave_type", "status", "reason")
        } == {
            "start_date": "2027-01-04",
            "end_date": "2027-01-06",
            "days": 3,
            "leave_type": "ANNUAL",
            "status": "approved",
            "reason": "설 연휴",
        }
        messages = await r_ws.wait_for(3, request_id)
        assert [m["type"] for m in messages] == [
            "approval_result",
            "approval_result",
            "leave_confirmed",
        ]
    await outbox_drained(request_id, db=layout.db)  # no leave is still being recorded
    again = await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
    assert len(again.json()) == 1


async def test_reconnecting_with_after_receives_what_was_missed(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    async with listening(notification_url, requester) as r_ws:
        request_id = await factories.approval(
            client, approvals_url, factories.approval_body(requester, [first, second])
        )
        await decide(client, processing_url, first, request_id)
        (seen,) = await r_ws.wait_for(1, request_id)
    await decide(client, processing_url, second, request_id)
    await final_status(client, approvals_url, request_id, "approved")
    await outbox_drained(request_id, db=layout.db)  # the result was sent while nobody listened
    async with listening(notification_url, requester, after=seen["id"]) as again:
        (missed,) = await again.wait_for(1, request_id)
        assert missed["finalStatus"] == "approved"
        assert missed["id"] > seen["id"]


async def test_fifty_concurrent_creations_get_distinct_ids_and_all_reach_the_inbox(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    responses = await asyncio.gather(
        *(
            client.post(
                f"{approvals_url}/approvals",
                json=factories.approval_body(requester, [approver], title=f"요청 {n}"),
            )
            for n in range(50)
        )
    )
    assert {r.status_code for r in responses} == {201}
    ids = {r.json()["requestId"] for r in responses}
    assert len(ids) == 50

    async def all_held() -> list[dict[str, object]] | None:
        items = await inbox(client, processing_url, approver)
        return items if {i["requestId"] for i in items} >= ids else None

    items = await eventually(all_held, what="50 items in the inbox")
    held = [i["requestId"] for i in items if i["requestId"] in ids]
    assert len(held) == len(set(held)) == 50
