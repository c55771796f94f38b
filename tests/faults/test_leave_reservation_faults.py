"""employee-service down while a LEAVE request is decided: the release (rejected) or the
confirmation (approved) waits in the outbox and, once employee-service is back, changes the
reservation exactly once; the balance is right afterwards (docs/decisions.md D24).
2037 is these tests' year."""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.employee.leave_calls import RESERVATIONS, balance
from tests.support import factories
from tests.support.layouts import Layout
from tests.support.pipeline import eventually, final_status, item_arrives
from tests.support.settled import effect_attempted, outbox_drained

ENTITLED = 15


async def _reservation_is(
    client: httpx.AsyncClient, employee_url: str, request_id: int, status: str
) -> None:
    async def probe() -> bool:
        found = await client.get(f"{employee_url}{RESERVATIONS}/{request_id}")
        return found.status_code == 200 and found.json()["status"] == status

    await eventually(probe, timeout=30, what=f"request {request_id}'s reservation to be {status}")


async def _changes(client: httpx.AsyncClient, layout: Layout, outcome: str) -> float:
    """How many reservations the employee-service processes changed to ``outcome`` since
    they started."""
    pattern = re.compile(rf'^erp_leave_reservations_total{{outcome="{outcome}"}} (\S+)$', re.M)
    total = 0.0
    for url in layout.process_urls("employee"):
        found = pattern.search((await client.get(f"{url}/metrics")).text)
        assert found, f"no {outcome} count at {url}"
        total += float(found[1])
    return total


async def _decided_while_employee_service_is_down(
    layout: Layout,
    client: httpx.AsyncClient,
    urls: dict[str, str],
    action: str,
    effect: str,
) -> tuple[int, int]:
    """A held LEAVE request of three days, decided with employee-service stopped, which is
    started again once the relay failed to deliver ``effect``; the requester and request."""
    requester, approver = await factories.employees(client, urls["employee"], 2)
    body: dict[str, Any] = factories.leave_body(
        requester, [approver], startDate="2037-03-02", endDate="2037-03-04"
    )
    request_id = await factories.approval(client, urls["approvals"], body)
    await _reservation_is(client, urls["employee"], request_id, "held")
    await item_arrives(client, urls["processing"], approver, request_id)
    layout.stop("employee")
    try:
        decided = await client.post(
            f"{urls['processing']}/process/{approver}/{request_id}", json={"action": action}
        )
        assert decided.status_code == 200, decided.text
        await effect_attempted(request_id, effect, db=layout.db)
    finally:
        layout.start("employee")
    return requester, request_id


async def test_a_leave_rejected_while_employee_service_is_down_is_released_once_it_is_back(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    urls = {"employee": employee_url, "approvals": approvals_url, "processing": processing_url}
    requester, request_id = await _decided_while_employee_service_is_down(
        layout, client, urls, "reject", "leave_release"
    )

    await _reservation_is(client, employee_url, request_id, "released")
    await outbox_drained(request_id, db=layout.db)  # no retry of the release is on its way
    assert await _changes(client, layout, "released") == 1
    back = await balance(client, employee_url, requester, 2037)
    assert (back["reserved"], back["used"], back["remaining"]) == (0, 0, ENTITLED)
    await final_status(client, approvals_url, request_id, "rejected")


async def test_a_leave_approved_while_employee_service_is_down_is_confirmed_once_it_is_back(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    urls = {"employee": employee_url, "approvals": approvals_url, "processing": processing_url}
    requester, request_id = await _decided_while_employee_service_is_down(
        layout, client, urls, "approve", "leave"
    )

    await _reservation_is(client, employee_url, request_id, "approved")
    await outbox_drained(request_id, db=layout.db)
    assert await _changes(client, layout, "confirmed") == 1
    used = await balance(client, employee_url, requester, 2037)
    assert (used["reserved"], used["used"], used["remaining"]) == (0, 3, ENTITLED - 3)
    leaves = await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
    assert len(leaves.json()) == 1
