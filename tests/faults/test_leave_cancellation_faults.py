"""employee-service down while an approved leave is cancelled: the cancellation is answered
(200, cancelled) and waits in the outbox; once employee-service is back the leave record is
cancelled exactly once (counted once by employee-service), the days are back and the
requester is told. In both layouts (tests/support/layouts.py). 2039 is this test's year."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.employee.leave_calls import RESERVATIONS, balance
from tests.support import factories, layouts
from tests.support.auth import as_user
from tests.support.layouts import Layout
from tests.support.pipeline import decide, eventually, final_status, listening
from tests.support.settled import effect_attempted, outbox_drained

pytestmark = layouts.BOTH


async def _cancelled_count(client: httpx.AsyncClient, layout: Layout) -> float:
    """Leave records the employee-service processes cancelled since they started."""
    pattern = re.compile(r'^erp_leave_reservations_total{outcome="cancelled"} (\S+)$', re.M)
    total = 0.0
    for url in layout.process_urls("employee"):
        found = pattern.search((await client.get(f"{url}/metrics")).text)
        total += float(found[1]) if found else 0.0
    return total


async def _leave_is(
    client: httpx.AsyncClient, employee_url: str, request_id: int, status: str
) -> None:
    async def probe() -> bool:
        found = await client.get(f"{employee_url}{RESERVATIONS}/{request_id}")
        return found.status_code == 200 and found.json()["status"] == status

    await eventually(probe, timeout=30, what=f"request {request_id}'s leave to be {status}")


async def test_a_leave_cancelled_while_employee_service_is_down_is_cancelled_once_it_is_back(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    body: dict[str, Any] = factories.leave_body(
        requester, [approver], startDate="2039-11-08", endDate="2039-11-10"
    )
    request_id = await factories.approval(client, approvals_url, body)
    assert (await decide(client, processing_url, approver, request_id)).status_code == 200
    await final_status(client, approvals_url, request_id, "approved")
    await _leave_is(client, employee_url, request_id, "approved")
    await outbox_drained(request_id, db=layout.db)
    before = await _cancelled_count(client, layout)

    async with listening(notification_url, requester) as ws:
        layout.stop("employee")
        try:
            cancelled = await client.post(
                f"{approvals_url}/approvals/{request_id}/cancel",
                json={"reason": "출장"},
                headers=as_user(requester),
            )
            assert cancelled.status_code == 200, cancelled.text
            assert cancelled.json()["finalStatus"] == "cancelled"
            await effect_attempted(request_id, "leave_cancel", db=layout.db)  # and failed
        finally:
            layout.start("employee")

        await _leave_is(client, employee_url, request_id, "cancelled")
        await outbox_drained(request_id, db=layout.db)
        told = await eventually(
            lambda: _cancellations(ws.of_request(request_id)), timeout=30, what="told"
        )
        assert told[0]["reason"] == "출장"

    assert await _cancelled_count(client, layout) == before + 1
    after = await balance(client, employee_url, requester, 2039)
    assert (after["used"], after["reserved"], after["remaining"]) == (0, 0, 15)


async def _cancellations(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["type"] == "leave_cancelled"]
