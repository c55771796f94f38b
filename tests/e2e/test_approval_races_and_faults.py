"""Races, crashes and unavailable peers: nothing the contract promises is lost or doubled."""

from __future__ import annotations

import asyncio

import aio_pika
import httpx

from services.common.messaging import (
    DEAD_LETTER_QUEUE,
    EXCHANGE,
    WORK_ROUTING_KEY,
    declare_topology,
)
from tests.support import factories
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
from tests.support.stack import AMQP_URL, Stack


async def test_racing_approve_and_reject_exactly_one_takes_effect(
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
        await outbox_drained(request_id)  # every result notification has been sent
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
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    stack: Stack,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    waiting: dict[int, int] = {}
    for n in range(6):
        approver = first if n % 2 else second
        created = await client.post(
            f"{approvals_url}/approvals", json=factories.approval_body(requester, [approver])
        )
        waiting[created.json()["requestId"]] = approver
    for request_id, approver in waiting.items():
        await item_arrives(client, processing_url, approver, request_id)

    stack.kill("approval_processing")
    stack.start("approval_processing")

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
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    stack: Stack,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.leave_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    stack.stop("employee")
    try:
        decided = await client.post(
            f"{processing_url}/process/{approver}/{request_id}", json={"action": "approve"}
        )
        assert decided.status_code == 200
        await effect_attempted(request_id, "leave")  # and failed: employee-service is down
        doc = await document(client, approvals_url, request_id)
        assert doc["finalStatus"] == "approved"
    finally:
        stack.start("employee")

    async def recorded() -> list[dict[str, object]] | None:
        leaves = await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
        return leaves.json() or None

    leaves = await eventually(recorded, timeout=20, what="the leave to be recorded")
    assert len(leaves) == 1
    await outbox_drained(request_id)  # no retry of the recording is still on its way
    again = await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
    assert len(again.json()) == 1
    assert (await document(client, approvals_url, request_id))["finalStatus"] == "approved"


async def test_creation_while_employee_service_is_down_is_a_502_and_stores_nothing(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    stack: Stack,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    stack.stop("employee")
    try:
        response = await client.post(
            f"{approvals_url}/approvals", json=factories.approval_body(requester, [approver])
        )
    finally:
        stack.start("employee")
    assert response.status_code == 502
    assert "employee-service" in response.json()["detail"]
    stored = await client.get(f"{approvals_url}/approvals", params={"requesterId": requester})
    assert stored.json() == []


async def test_unparseable_message_is_dead_lettered_and_the_consumer_keeps_going(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    connection = await aio_pika.connect(AMQP_URL)
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
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    stack: Stack,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    stack.stop("approval_request")
    try:
        response = await client.post(
            f"{processing_url}/process/{approver}/{request_id}", json={"action": "approve"}
        )
        assert response.status_code == 502
        held = await inbox(client, processing_url, approver)
        assert [i["requestId"] for i in held] == [request_id]
    finally:
        stack.start("approval_request")
    assert (await decide(client, processing_url, approver, request_id)).status_code == 200
    await final_status(client, approvals_url, request_id, "approved")
