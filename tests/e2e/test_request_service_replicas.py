"""approval-request-service as two real processes on one database (FerretDB locally): racing
decisions on the same steps, sent to both, apply each step exactly once; every effect is
delivered once; a transition whose writer died between its claim and its rewrite is
finished by the next reader or writer; request ids stay unique."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from services.approval_request import service
from services.approval_request.repository import ApprovalRepository, revision_of
from services.approval_request.schemas import Decision
from tests.support import factories
from tests.support.pipeline import document, listening
from tests.support.settled import outbox_drained
from tests.support.stack import MONGO_URL, TEST_DB, Stack

RACERS = 12


@pytest.fixture(scope="module")
def second_replica(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another approval-request-service process, on the session stack's database and vhost."""
    with stack.another_replica("approval_request", Path(tmp_path_factory.mktemp("replica"))) as url:
        yield url


@pytest.fixture
def replicas(approvals_url: str, second_replica: str) -> list[str]:
    return [approvals_url, second_replica]


@pytest.fixture
async def mongo() -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO_URL, tz_aware=True)
    try:
        yield client
    finally:
        await client.close()


async def history(mongo: AsyncMongoClient[dict[str, Any]], request_id: int) -> list[Any]:
    """The claimed transitions of a request, in revision order."""
    cursor = mongo[TEST_DB]["transitions"].find({"requestId": request_id})
    return sorted([claim async for claim in cursor], key=lambda claim: claim["revision"])


def decided_version(claim: dict[str, Any]) -> bool:
    """Whether a claimed transition is a decision (it moves ``version`` on)."""
    return any(row["op"] == "$set" and row["path"] == "version" for row in claim["update"])


async def race(
    client: httpx.AsyncClient, replicas: list[str], request_id: int, step: int, approver: int
) -> str:
    """Concurrent approvals and rejections of one step, spread over both replicas; the
    status that won, once every answer was checked against it."""
    bodies = [
        {
            "requestId": request_id,
            "step": step,
            "approverId": approver,
            "status": "approved" if n % 3 else "rejected",
        }
        for n in range(RACERS)
    ]
    responses = await asyncio.gather(
        *(
            client.post(f"{replicas[n % 2]}/approvals/internal/result", json=body)
            for n, body in enumerate(bodies)
        )
    )
    doc = await document(client, replicas[0], request_id)
    decided = str(doc["steps"][step - 1]["status"])
    assert decided in ("approved", "rejected")
    for body, response in zip(bodies, responses, strict=True):
        expected = 204 if body["status"] == decided else 409
        assert response.status_code == expected, (body, response.text)
    return decided


async def test_racing_decisions_on_two_replicas_apply_each_step_once_and_deliver_once(
    client: httpx.AsyncClient,
    employee_url: str,
    notification_url: str,
    replicas: list[str],
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    async with listening(notification_url, requester) as heard:
        request_ids = [
            await factories.approval(
                client, replicas[n % 2], factories.leave_body(requester, [first, second])
            )
            for n in range(4)
        ]
        steps_decided: dict[int, int] = {}
        for request_id in request_ids:
            steps_decided[request_id] = 1
            if await race(client, replicas, request_id, 1, first) == "approved":
                await race(client, replicas, request_id, 2, second)
                steps_decided[request_id] = 2

        approved = 0
        for request_id, decided in steps_decided.items():
            doc = await outbox_drained(request_id)
            assert (doc["version"], doc["outbox"], doc["outboxOpen"]) == (decided, {}, False)
            claims = await history(mongo, request_id)
            assert [c["revision"] for c in claims] == list(range(1, revision_of(doc) + 1))
            assert sum(decided_version(c) for c in claims) == decided
            leave = ["leave_confirmed"] if doc["finalStatus"] == "approved" else []
            approved += len(leave)
            await heard.wait_for(decided + len(leave), request_id)
            kinds = sorted(m["type"] for m in heard.of_request(request_id))
            assert kinds == sorted(["approval_result"] * decided + leave)
    leaves = await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
    assert len(leaves.json()) == approved


class WriterDied(Exception):
    pass


def dies_after_its_claim(repository: ApprovalRepository) -> None:
    """A writer whose every rewrite of a document is lost, as if its process died after
    claiming the transition: the claim is written, the document is not."""

    async def die(*args: Any, **kwargs: Any) -> Any:
        raise WriterDied

    repository.approvals = type(  # type: ignore[assignment]
        "Dying",
        (),
        {"update_one": die, "find_one_and_update": die, "find_one": repository.approvals.find_one},
    )()


async def claimed_and_never_applied(
    mongo: AsyncMongoClient[dict[str, Any]], stack: Stack, request_id: int, approver: int
) -> None:
    """Step 1 of ``request_id`` approved by a writer that died between the claim and the
    rewrite, longer ago than a live writer takes."""
    settings = stack.env_for("approval_request")
    lease = timedelta(seconds=float(settings["APPROVAL_REQUEST_OUTBOX_LEASE_SECONDS"]))
    doomed = ApprovalRepository(mongo[TEST_DB], relay_lease=lease)
    dies_after_its_claim(doomed)
    decision = Decision(requestId=request_id, step=1, approverId=approver, status="approved")
    with pytest.raises(WriterDied):
        await service.decide(repository=doomed, decision=decision)
    await mongo[TEST_DB]["transitions"].update_many(
        {"requestId": request_id},
        {"$set": {"claimedAt": datetime.now(UTC) - timedelta(minutes=1)}},
    )


async def test_a_decision_whose_writer_died_after_its_claim_is_finished_by_the_next_read(
    client: httpx.AsyncClient,
    employee_url: str,
    notification_url: str,
    replicas: list[str],
    mongo: AsyncMongoClient[dict[str, Any]],
    stack: Stack,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    async with listening(notification_url, requester) as heard:
        request_id = await factories.approval(
            client, replicas[0], factories.approval_body(requester, [approver])
        )
        await outbox_drained(request_id)  # the creation's hand-off is out
        await claimed_and_never_applied(mongo, stack, request_id, approver)

        doc = await document(client, replicas[1], request_id)

        assert (doc["finalStatus"], doc["steps"][0]["status"]) == ("approved", "approved")
        stored = await outbox_drained(request_id)  # the claim's effects were delivered
        assert stored["version"] == 1
        (result,) = await heard.wait_for(1, request_id)
        assert (result["type"], result["stepStatus"]) == ("approval_result", "approved")
        url = f"{replicas[0]}/approvals/internal/result"
        body = {"requestId": request_id, "step": 1, "approverId": approver, "status": "approved"}
        assert (await client.post(url, json=body)).status_code == 204
        assert len(heard.of_request(request_id)) == 1


async def test_a_retried_decision_finishes_what_its_dead_writer_claimed_and_is_a_replay(
    client: httpx.AsyncClient,
    employee_url: str,
    notification_url: str,
    replicas: list[str],
    mongo: AsyncMongoClient[dict[str, Any]],
    stack: Stack,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    async with listening(notification_url, requester) as heard:
        request_id = await factories.approval(
            client, replicas[0], factories.approval_body(requester, [approver])
        )
        await outbox_drained(request_id)
        await claimed_and_never_applied(mongo, stack, request_id, approver)
        url = f"{replicas[1]}/approvals/internal/result"
        body = {"requestId": request_id, "step": 1, "approverId": approver}

        replay = await client.post(url, json={**body, "status": "approved"})
        rejected = await client.post(url, json={**body, "status": "rejected"})

        assert replay.status_code == 204
        assert rejected.status_code == 409
        stored = await outbox_drained(request_id)
        assert (stored["finalStatus"], stored["version"]) == ("approved", 1)
        await heard.wait_for(1, request_id)
        assert len(heard.of_request(request_id)) == 1


async def test_requests_created_on_both_replicas_at_once_get_distinct_ids(
    client: httpx.AsyncClient, employee_url: str, replicas: list[str]
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    body = factories.approval_body(requester, [approver])

    responses = await asyncio.gather(
        *(client.post(f"{replicas[n % 2]}/approvals", json=body) for n in range(30))
    )

    assert [r.status_code for r in responses] == [201] * 30
    ids = [r.json()["requestId"] for r in responses]
    assert len(set(ids)) == 30
    for n, request_id in enumerate(ids):
        doc = await document(client, replicas[(n + 1) % 2], request_id)
        assert doc["requesterId"] == requester
