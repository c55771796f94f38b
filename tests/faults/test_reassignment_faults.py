"""A reassignment made while a peer is down converges once the peer is back: with
approval-processing stopped, after its restart the former approver's inbox is without the
item and the new approver's holds it (the rebuild lists the new approver; the removal and
the hand-off waiting in their partitions are consumed); with notification-service stopped
the new approver is told once it is back. In both layouts (tests/support/layouts.py)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import factories, layouts
from tests.support.auth import as_admin
from tests.support.layouts import Layout
from tests.support.pipeline import Listener, eventually, inbox, item_arrives, listening
from tests.support.settled import outbox_drained, settled

pytestmark = layouts.BOTH


async def _reassign(
    client: httpx.AsyncClient, approvals_url: str, request_id: int, approver: int
) -> None:
    reassigned = await client.post(
        f"{approvals_url}/approvals/{request_id}/steps/1/reassign",
        json={"approverId": approver},
        headers=as_admin(),
    )
    assert reassigned.status_code == 200, reassigned.text


async def _moved(
    client: httpx.AsyncClient, processing_url: str, former: int, new: int, request_id: int
) -> None:
    """Until both inboxes answer (rebuilt after a restart): the former without the request,
    the new one with it."""

    async def probe() -> bool:
        answers = [await client.get(f"{processing_url}/process/{a}") for a in (former, new)]
        if any(a.status_code != 200 for a in answers):
            return False  # still starting, or rebuilding (503)
        held = [[i["requestId"] for i in a.json()] for a in answers]
        return request_id not in held[0] and request_id in held[1]

    await eventually(probe, timeout=60, what=f"request {request_id} moved from {former} to {new}")


async def test_a_reassignment_while_processing_is_down_moves_the_item_once_it_is_back(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver, substitute = await factories.employees(client, employee_url, 3)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    layout.stop("approval_processing")
    try:
        await _reassign(client, approvals_url, request_id, substitute)
        # The removal and the hand-off are published (the broker keeps them).
        await outbox_drained(request_id, db=layout.db)
    finally:
        layout.start("approval_processing")

    await _moved(client, processing_url, approver, substitute, request_id)
    await settled(request_id, db=layout.db)  # the removal consumed too
    assert all(i["requestId"] != request_id for i in await inbox(client, processing_url, approver))
    former = await client.post(
        f"{processing_url}/process/{approver}/{request_id}", json={"action": "approve"}
    )
    assert former.status_code in (404, 409), former.text
    decided = await client.post(
        f"{processing_url}/process/{substitute}/{request_id}", json={"action": "approve"}
    )
    assert decided.status_code == 200, decided.text


async def test_a_reassignment_while_notification_service_is_down_is_told_once_it_is_back(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, approver, substitute = await factories.employees(client, employee_url, 3)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    layout.stop("notification")
    try:
        await _reassign(client, approvals_url, request_id, substitute)
        # Held by the new approver's inbox though not yet told (the hand-off is parked).
        await _moved(client, processing_url, approver, substitute, request_id)
    finally:
        layout.start("notification")

    async with listening(notification_url, substitute, after=0) as ws:
        told = await eventually(
            lambda: _assignments(ws, request_id), timeout=60, what=f"{substitute} told"
        )
        assert (told[0]["step"], told[0]["approverId"]) == (1, substitute)
    await _moved(client, processing_url, approver, substitute, request_id)


async def _assignments(ws: Listener, request_id: int) -> list[dict[str, Any]]:
    return [m for m in ws.of_request(request_id) if m["type"] == "approval_assigned"]
