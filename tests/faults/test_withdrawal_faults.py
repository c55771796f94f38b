"""A withdrawal made while a peer is down converges once the peer is back: with
approval-processing stopped the waiting item is not in any inbox after its restart (the
rebuild no longer lists the request, and the withdrawal waiting in its partition is
consumed); with notification-service stopped the requester and the approver are told once it
is back. In both layouts (tests/support/layouts.py)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import factories, layouts
from tests.support.auth import as_user
from tests.support.layouts import Layout
from tests.support.pipeline import Listener, eventually, inbox, item_arrives, listening
from tests.support.settled import effect_attempted, outbox_drained, settled

pytestmark = layouts.BOTH


async def _rebuilt_without(
    client: httpx.AsyncClient, processing_url: str, approver: int, request_id: int
) -> None:
    """Until the approver's inbox answers (rebuilt after the restart) without the request."""

    async def probe() -> bool:
        answer = await client.get(f"{processing_url}/process/{approver}")
        if answer.status_code != 200:
            return False  # still starting, or rebuilding (503)
        return all(i["requestId"] != request_id for i in answer.json())

    await eventually(probe, timeout=60, what=f"approver {approver}'s inbox without {request_id}")


async def test_a_withdrawal_while_processing_is_down_leaves_no_item_once_it_is_back(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    layout.stop("approval_processing")
    try:
        withdrawn = await client.post(
            f"{approvals_url}/approvals/{request_id}/withdraw", headers=as_user(requester)
        )
        assert withdrawn.status_code == 200, withdrawn.text
        # The withdrawal is published (the broker keeps it in the partition) and told.
        await outbox_drained(request_id, db=layout.db)
    finally:
        layout.start("approval_processing")

    await _rebuilt_without(client, processing_url, approver, request_id)
    await settled(request_id, db=layout.db)  # the withdrawal consumed too
    assert all(i["requestId"] != request_id for i in await inbox(client, processing_url, approver))
    decided = await client.post(
        f"{processing_url}/process/{approver}/{request_id}", json={"action": "approve"}
    )
    assert decided.status_code in (404, 409), decided.text


async def test_a_withdrawal_while_notification_service_is_down_is_told_once_it_is_back(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    layout.stop("notification")
    try:
        withdrawn = await client.post(
            f"{approvals_url}/approvals/{request_id}/withdraw",
            json={"reason": "취소"},
            headers=as_user(requester),
        )
        assert withdrawn.status_code == 200, withdrawn.text
        await effect_attempted(request_id, "notify", db=layout.db)  # and failed
    finally:
        layout.start("notification")

    await outbox_drained(request_id, db=layout.db)
    for employee in (requester, approver):
        async with listening(notification_url, employee, after=0) as ws:
            told = await eventually(
                lambda ws=ws: _withdrawals(ws, request_id), timeout=30, what=f"{employee} told"
            )
            assert (told[0]["finalStatus"], told[0]["reason"]) == ("withdrawn", "취소")
    await eventually(
        lambda: _without(client, processing_url, approver, request_id), what="the item gone"
    )


async def _withdrawals(ws: Listener, request_id: int) -> list[dict[str, Any]]:
    return [m for m in ws.of_request(request_id) if m["type"] == "approval_withdrawn"]


async def _without(
    client: httpx.AsyncClient, processing_url: str, approver: int, request_id: int
) -> bool:
    return all(i["requestId"] != request_id for i in await inbox(client, processing_url, approver))
