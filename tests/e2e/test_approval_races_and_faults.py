"""Races, crashes and unavailable peers: nothing the contract promises is lost or doubled.

Every test runs in two layouts (tests/support/layouts.py): the session's one process a
service, and two replicas of each behind the local gateway, where racing calls land on
different replicas, a crash takes one replica while the other serves, and a peer is
unavailable only when every one of its replicas is down."""

from __future__ import annotations

import asyncio

import aio_pika
import httpx

from services.common.messaging import (
    DEAD_LETTER_QUEUE,
    EXCHANGE,
    WORK_ROUTING_KEY,
    declare_topology,
    partition_of,
)
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
from tests.support.settled import effect_attempted, outbox_drained

pytestmark = layouts.BOTH


async def test_racing_approve_and_reject_exactly_one_takes_effect(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    async with listening(notification_url, requester) as r_ws:
        request_id = await factories.approval(
            client, approvals_url, factories.approval_body(requester, [approver])
        )
        await item_arrives(client, processing_url, approver, request_id)
        url = f"{processing_url}/process/{approver}/{request_id}"
        approve, reject = await asyncio.gather(
            client.post(url, json={"action": "approve"}),
            client.post(url, json={"action": "reject"}),
        )
        winners = [r for r in (approve, reject) if r.status_code == 200]
        assert len(winners) == 1
        loser = approve if winners[0] is reject else reject
        assert loser.status_code in (404, 409)
        decided = winners[0].json()["status"]

        doc = await final_status(client, approvals_url, request_id, decided)
        assert doc["steps"][0]["status"] == decided
        assert await inbox(client, processing_url, approver) == []
        (result,) = await r_ws.wait_for(1, request_id)
        assert result["stepStatus"] == decided
        await outbox_drained(request_id, db=layout.db)  # every result notification was sent
        assert len(r_ws.of_request(request_id)) == 1


async def test_concurrent_results_for_one_step_apply_once(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    url = f"{approvals_url}/approvals/internal/result"
    bodies = [
        {
            "requestId": request_id,
            "step": 1,
            "approverId": approver,
            "status": "approved" if n % 2 else "rejected",
        }
        for n in range(20)
    ]
    responses = await asyncio.gather(*(client.post(url, json=b) for b in bodies))
    doc = await document(client, approvals_url, request_id)
    decided = doc["steps"][0]["status"]
    assert decided in ("approved", "rejected")
    for body, response in zip(bodies, responses, strict=True):
        expected = 204 if body["status"] == decided else 409
        assert response.status_code == expected, (body, response.text)


async def test_replayed_decision_answers_204_and_changes_nothing(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [first, second])
    )
    body = {"requestId": request_id, "step": 1, "approverId": first, "status": "approved"}
    url = f"{approvals_url}/approvals/internal/result"
    assert (await client.post(url, json=body)).status_code == 204
    before = await document(client, approvals_url, request_id)
    assert (await client.post(url, json=body)).status_code == 204
    assert await document(client, approvals_url, request_id) == before


async def test_processing_killed_while_items_wait_gets_every_item_back_once(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    """On replicas the process killed is the one holding the first approver's inbox, while
    the other holds the second's: it rebuilds its share, and neither approver's items are
    lost or doubled."""
    requester, first, second = await factories.employees(client, employee_url, 3)
    owners = {partition_of(a) % layout.replicas for a in (first, second)}
    assert len(owners) == layout.replicas, "consecutive ids fall to different replicas"
    waiting: dict[int, int] = {}
    for n in range(6):
        approver = first if n % 2 else second
        created = await client.post(
            f"{approvals_url}/approvals", json=factories.approval_body(requester, [approver])
        )
        waiting[created.json()["requestId"]] = approver
    for request_id, approver in waiting.items():
        await item_arrives(client, processing_url, approver, request_id)

    layout.kill("approval_processing", partition_of(first) % layout.replicas)
    layout.start("approval_processing")

    for approver in (first, second):
        held = [i["requestId"] for i in await inbox(client, processing_url, approver)]
        expected = sorted(r for r, a in waiting.items() if a == approver)
        assert sorted(held) == expected
    some_request = next(iter(waiting))
    decided = await client.post(
        f"{processing_url}/process/{waiting[some_request]}/{some_request}",
        json={"action": "approve"},
    )
    assert decided.status_code == 200


async def test_leave_is_recorded_once_after_employee_service_comes_back(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    """On replicas every employee-service replica is down (one alone would be served by
    the other), so the gateway refuses the recording and the request service retries it."""
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.leave_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    layout.stop("employee")
    try:
        decided = await client.post(
            f"{processing_url}/process/{approver}/{request_id}", json={"action": "approve"}
        )
        assert decided.status_code == 200
        # and failed: employee-service is down
        await effect_attempted(request_id, "leave", db=layout.db)
        doc = await document(client, approvals_url, request_id)
        assert doc["finalStatus"] == "approved"
    finally:
        layout.start("employee")

    async def recorded() -> list[dict[str, object]] | None:
        leaves = await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
        return leaves.json() or None

    leaves = await eventually(recorded, timeout=20, what="the leave to be recorded")
    assert len(leaves) == 1
    await outbox_drained(request_id, db=layout.db)  # no retry of the recording is on its way
    again = await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
    assert len(again.json()) == 1
    assert (await document(client, approvals_url, request_id))["finalStatus"] == "approved"


async def test_creation_while_employee_service_is_down_is_a_502_and_stores_nothing(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
) -> None:
    """On replicas every employee-service replica is down: the request service hears the
    gateway's refusal and answers as it does to a dead peer."""
    requester, approver = await factories.employees(client, employee_url, 2)
    layout.stop("employee")
    try:
        response = await client.post(
            f"{approvals_url}/approvals", json=factories.approval_body(requester, [approver])
        )
    finally:
        layout.start("employee")
    assert response.status_code == 502
    assert "employee-service" in response.json()["detail"]
    stored = await client.get(f"{approvals_url}/approvals", params={"requesterId": requester})
    assert stored.json() == []


async def test_unparseable_message_is_dead_lettered_and_the_consumer_keeps_going(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    connection = await aio_pika.connect(layout.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange, _ = await declare_topology(channel)
        assert exchange.name == EXCHANGE
        await exchange.publish(
            aio_pika.Message(b"{not json", content_type="application/json"),
            routing_key=WORK_ROUTING_KEY,
        )
        await exchange.publish(
            aio_pika.Message(b'{"requestId": "x"}'), routing_key=WORK_ROUTING_KEY
        )
        dead = await channel.get_queue(DEAD_LETTER_QUEUE)

        async def dead_lettered() -> list[bytes] | None:
            bodies = []
            while (message := await dead.get(fail=False)) is not None:
                bodies.append(message.body)
                await message.ack()
            return bodies or None

        seen: list[bytes] = []
        while len(seen) < 2:
            seen += await eventually(dead_lettered, what="dead-lettered messages")
        assert set(seen) == {b"{not json", b'{"requestId": "x"}'}

    requester, approver = await factories.employees(client, employee_url, 2)
    created = await client.post(
        f"{approvals_url}/approvals", json=factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, created.json()["requestId"])


async def test_decision_while_request_service_is_down_is_a_502_and_the_item_stays(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    """On replicas every request-service replica is down, and the decision may land on a
    processing replica that forwards it to the approver's owner: still a 502, item kept."""
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    layout.stop("approval_request")
    try:
        response = await client.post(
            f"{processing_url}/process/{approver}/{request_id}", json={"action": "approve"}
        )
        assert response.status_code == 502
        held = await inbox(client, processing_url, approver)
        assert [i["requestId"] for i in held] == [request_id]
    finally:
        layout.start("approval_request")
    assert (await decide(client, processing_url, approver, request_id)).status_code == 200
    await final_status(client, approvals_url, request_id, "approved")
