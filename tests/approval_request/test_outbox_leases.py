"""The outbox's relay lease, on the real MongoDB-compatible server: a write that stores side
effects takes the lease itself when it is free, so its writer delivers without claiming;
effects stored while another relay holds the lease reach that relay's next round; the
poller finds work by ``outboxOpen`` alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.approval_request.outbox import OutboxRelay, stored_effects
from services.approval_request.repository import ApprovalRepository
from services.approval_request.workflow import Effect
from tests.support.stack import MONGO_URL, TEST_DB, Stack

LEASE = timedelta(seconds=30)


@pytest.fixture
async def repository(stack: Stack) -> AsyncIterator[ApprovalRepository]:
    name = f"{TEST_DB}_leases"
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO_URL, tz_aware=True)
    await mongo.drop_database(name)
    repository = ApprovalRepository(mongo[name], relay_lease=LEASE)
    await repository.ensure_indexes()
    yield repository
    await mongo.drop_database(name)
    await mongo.close()


def two_steps(request_id: int) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "steps": [
            {"step": 1, "approverId": 2, "status": "pending"},
            {"step": 2, "approverId": 3, "status": "pending"},
        ],
        "finalStatus": "pending",
        "version": 0,
        "title": "t",
    }


async def create(repository: ApprovalRepository, now: datetime) -> int:
    def build(request_id: int) -> dict[str, Any]:
        return {**two_steps(request_id), "outbox": stored_effects([Effect("handoff", {})], now=now)}

    stored = await repository.insert_new(build, now=now)
    assert stored.leased is not None
    return stored.request_id


async def approve_step_1(repository: ApprovalRepository, request_id: int, now: datetime) -> Any:
    return await repository.apply(
        request_id=request_id,
        version=0,
        index=0,
        changes={"steps.0.status": "approved", "finalStatus": "in_progress"},
        effects=stored_effects([Effect("notify", {"n": 1})], now=now),
        now=now,
    )


async def test_a_creation_holds_the_lease_and_the_poller_leaves_it_alone(
    repository: ApprovalRepository,
) -> None:
    now = datetime.now(UTC)
    stored = await repository.insert_new(
        lambda rid: {**two_steps(rid), "outbox": stored_effects([Effect("handoff", {})], now=now)},
        now=now,
    )

    assert stored.leased is not None
    assert stored.leased["relayLeaseUntil"] == now + LEASE
    assert next(iter(stored.leased["outbox"].values()))["kind"] == "handoff"
    assert await repository.due_for_delivery(now=now, limit=10) == []
    assert await repository.due_for_delivery(now=now + LEASE * 2, limit=10) == [stored.request_id]
    assert await repository.count_open_outboxes() == 1


async def test_a_decision_takes_a_free_lease_and_returns_the_document_as_written(
    repository: ApprovalRepository,
) -> None:
    created = datetime.now(UTC)
    request_id = await create(repository, created)
    later = created + LEASE * 2  # the creation's lease has run out

    stored = await approve_step_1(repository, request_id, later)

    assert stored is not None
    assert stored.leased is not None
    assert stored.leased["steps"][0]["status"] == "approved"
    assert {e["kind"] for e in stored.leased["outbox"].values()} == {"handoff", "notify"}
    assert abs(stored.leased["relayLeaseUntil"] - (later + LEASE)) < timedelta(milliseconds=1)


async def test_a_decision_while_a_relay_holds_the_lease_reaches_that_relays_next_round(
    repository: ApprovalRepository,
) -> None:
    now = datetime.now(UTC)
    request_id = await create(repository, now)
    leased = await repository.approvals.find_one({"requestId": request_id})
    assert leased is not None
    delivered: list[dict[str, Any]] = []

    async def deliver(payload: dict[str, Any], doc: dict[str, Any]) -> list[Effect]:
        if not delivered:  # while the first effect is being delivered, a decision lands
            stored = await approve_step_1(repository, request_id, datetime.now(UTC))
            assert stored is not None
            assert stored.leased is None
        delivered.append(payload)
        return []

    relay = OutboxRelay(
        repository,
        {"handoff": deliver, "notify": deliver},
        poll_seconds=60,
        max_backoff_seconds=1,
        batch=10,
    )
    await relay.drain(request_id, leased=leased)

    assert delivered == [{}, {"n": 1}]
    doc = await repository.approvals.find_one({"requestId": request_id})
    assert doc is not None
    assert doc["outbox"] == {}
    assert doc["pendingEffects"] == 0
    assert doc["outboxOpen"] is False
    assert await repository.count_open_outboxes() == 0
    assert await repository.due_for_delivery(now=now + LEASE * 2, limit=10) == []


async def test_documents_from_before_the_flag_are_marked_once_at_start(
    repository: ApprovalRepository,
) -> None:
    await repository.approvals.insert_one({"requestId": 99, "pendingEffects": 1})
    await repository.counters.delete_one({"_id": "schema:outboxOpen"})

    await repository.ensure_indexes()

    assert await repository.count_open_outboxes() == 1
