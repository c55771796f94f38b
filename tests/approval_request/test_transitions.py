"""Claimed transitions on the real MongoDB-compatible server (FerretDB locally): writers that
share nothing but the database (each its own client, as separate replicas are) apply a
decision exactly once, a claimed transition whose writer died before its rewrite is rolled
forward by whoever meets it next, and every change leaves its claim as history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from services.approval_request import service, workflow
from services.approval_request.repository import ApprovalRepository, revision_of
from tests.support.mongo import counted_database
from tests.support.requests import create, decision, stored
from tests.support.stack import MONGO_URL, Stack

WRITERS = 6


@pytest.fixture
async def database_name(stack: Stack) -> AsyncIterator[str]:
    async with counted_database("transitions") as counted:
        yield counted.database.name


@pytest.fixture
async def writers(database_name: str) -> AsyncIterator[list[ApprovalRepository]]:
    """Repositories that share nothing but the database, each on its own client."""
    clients: list[AsyncMongoClient[dict[str, Any]]] = [
        AsyncMongoClient(MONGO_URL, tz_aware=True) for _ in range(WRITERS)
    ]
    repositories = [ApprovalRepository(client[database_name]) for client in clients]
    await repositories[0].ensure_indexes()
    try:
        yield repositories
    finally:
        for client in clients:
            await client.close()


async def test_concurrent_decisions_of_separate_writers_apply_exactly_once(
    writers: list[ApprovalRepository],
) -> None:
    for _ in range(3):
        request_id = await create(writers[0], 2, 3)
        statuses = ["approved", "rejected"] * (len(writers) * 2)
        outcomes = await asyncio.gather(
            *(
                service.decide(
                    repository=writers[n % len(writers)],
                    decision=decision(request_id, 1, 2, status),
                )
                for n, status in enumerate(statuses)
            )
        )

        applied = [o for o, _ in outcomes if isinstance(o, workflow.Applied)]
        assert len(applied) == 1
        decided = applied[0].step_status.value
        for status, (outcome, _) in zip(statuses, outcomes, strict=True):
            if status == decided:
                assert isinstance(outcome, workflow.Applied | workflow.Replay)
            else:
                assert outcome == workflow.Refused(409, f"Step 1 was already {decided}")
        doc = await stored(writers[0], request_id)
        assert (doc["steps"][0]["status"], doc["version"]) == (decided, 1)
        # Nothing a decision stored was lost to another write: its two notifications (and
        # the hand-off to step 2 when approved) sit next to the creation's hand-off.
        kinds = sorted(e["kind"] for e in doc["outbox"].values())
        expected = ["handoff", "notify", "notify"] + (["handoff"] if decided == "approved" else [])
        assert kinds == sorted(expected)
        assert doc["pendingEffects"] == len(expected)


class WriterDiesAfterItsClaim(Exception):
    pass


def dies_after_its_claim(repository: ApprovalRepository) -> None:
    """Every rewrite of a document fails as if the process died just before sending it: what
    it claimed stays claimed and unapplied."""

    async def crash(*args: Any, **kwargs: Any) -> Any:
        raise WriterDiesAfterItsClaim

    repository.approvals = type(  # type: ignore[assignment]
        "Crashing",
        (),
        {
            "update_one": crash,
            "find_one_and_update": crash,
            "find_one": repository.approvals.find_one,
        },
    )()


async def backdate_claims(repository: ApprovalRepository, request_id: int) -> None:
    """As if the claims of ``request_id`` were written longer ago than a writer takes."""
    await repository.transitions.update_many(
        {"requestId": request_id},
        {"$set": {"claimedAt": datetime.now(UTC) - timedelta(minutes=1)}},
    )


async def test_a_transition_whose_writer_died_after_claiming_it_is_rolled_forward_by_the_next(
    writers: list[ApprovalRepository],
) -> None:
    survivor, doomed = writers[0], writers[1]
    request_id = await create(survivor, 2, 3)
    dies_after_its_claim(doomed)

    with pytest.raises(WriterDiesAfterItsClaim):
        await service.decide(repository=doomed, decision=decision(request_id, 1, 2))
    assert (await stored(survivor, request_id))["steps"][0]["status"] == "pending"
    await backdate_claims(survivor, request_id)

    # The approver's decision, retried on another replica, meets the claim: the claimed
    # decision is applied, and the retry is its replay; the opposite decision is refused.
    replay, _ = await service.decide(repository=survivor, decision=decision(request_id, 1, 2))
    refused, _ = await service.decide(
        repository=writers[2], decision=decision(request_id, 1, 2, "rejected")
    )

    assert replay == workflow.Replay()
    assert refused == workflow.Refused(409, "Step 1 was already approved")
    doc = await stored(survivor, request_id)
    assert (doc["steps"][0]["status"], doc["finalStatus"], doc["version"]) == (
        "approved",
        "in_progress",
        1,
    )
    kinds = sorted(e["kind"] for e in doc["outbox"].values())
    assert kinds == ["handoff", "handoff", "notify", "notify"]  # the claim's effects came too
    assert (doc["pendingEffects"], doc["outboxOpen"]) == (4, True)


async def test_reading_an_open_request_rolls_a_dead_writers_transition_forward(
    writers: list[ApprovalRepository],
) -> None:
    survivor, doomed = writers[0], writers[1]
    request_id = await create(survivor, 2)
    dies_after_its_claim(doomed)
    with pytest.raises(WriterDiesAfterItsClaim):
        await service.decide(repository=doomed, decision=decision(request_id, 1, 2, "rejected"))

    young = await survivor.get(request_id, public=True)
    assert young is not None
    assert young["finalStatus"] == "pending"  # its writer may still be on its way
    await backdate_claims(survivor, request_id)
    read = await survivor.get(request_id, public=True)

    assert read is not None
    assert (read["finalStatus"], read["steps"][0]["status"]) == ("rejected", "rejected")
    assert "_id" not in read
    assert "revision" not in read


async def test_every_change_of_a_request_is_a_claimed_revision_in_its_history(
    writers: list[ApprovalRepository],
) -> None:
    repository = writers[0]
    request_id = await create(repository, 2, 3)
    await service.decide(repository=repository, decision=decision(request_id, 1, 2))
    await service.decide(repository=writers[1], decision=decision(request_id, 2, 3))

    doc = await stored(repository, request_id)
    history = [claim async for claim in repository.transitions.find({"requestId": request_id})]
    assert sorted(c["revision"] for c in history) == list(range(1, revision_of(doc) + 1))
    assert revision_of(doc) == 2
    assert {c["_id"] for c in history} == {f"{doc['_id']}/1", f"{doc['_id']}/2"}


async def test_request_ids_allocated_by_separate_writers_at_once_are_all_different(
    writers: list[ApprovalRepository],
) -> None:
    created = await asyncio.gather(
        *(create(writers[n % len(writers)], 2) for n in range(len(writers) * 8))
    )

    assert len(set(created)) == len(created)
    assert await writers[0].approvals.count_documents({}) == len(created)


async def test_separate_writers_taking_the_first_ids_at_once_all_get_ids(
    writers: list[ApprovalRepository],
) -> None:
    """The counter document does not exist yet: every writer's upsert may insert it, and the
    server refuses all but one with a duplicate key (no request may fail on that)."""
    for _ in range(5):
        await writers[0].counters.delete_many({})
        await writers[0].approvals.delete_many({})
        for writer in writers:
            writer.drop_id_block()
        created = await asyncio.gather(*(create(writer, 2) for writer in writers))

        assert len(set(created)) == len(created)


async def test_separate_writers_starting_at_once_on_a_new_database_all_start(
    writers: list[ApprovalRepository],
) -> None:
    """Replicas starting together each set the one-time schema markers: none fails on it."""
    for _ in range(5):
        await writers[0].counters.delete_many({})
        for writer in writers:
            writer._buckets_done = False

        await asyncio.gather(*(writer.ensure_indexes() for writer in writers))
        await asyncio.gather(*(writer.backfill_id_buckets() for writer in writers))

        assert await writers[0].counters.count_documents({"done": True}) == 2


def events(doc: dict[str, Any]) -> list[tuple[str, int | None, int]]:
    return [(e["event"], e.get("step"), e["actor"]) for e in doc.get("history", [])]


async def test_racing_decisions_of_separate_writers_leave_exactly_one_decision_in_the_history(
    writers: list[ApprovalRepository],
) -> None:
    for _ in range(3):
        request_id = await create(writers[0], 2, 3)
        statuses = ["approved", "rejected"] * (len(writers) * 2)
        await asyncio.gather(
            *(
                service.decide(
                    repository=writers[n % len(writers)],
                    decision=decision(request_id, 1, 2, status),
                )
                for n, status in enumerate(statuses)
            )
        )

        doc = await stored(writers[0], request_id)
        decided = doc["steps"][0]["status"]
        after = [("assigned", 2, 2)] if decided == "approved" else []
        assert events(doc) == [
            ("created", None, 1),
            ("assigned", 1, 1),
            (decided, 1, 2),
            *after,
        ]
        at = [e["at"] for e in doc["history"]]
        assert at == sorted(at)


async def test_a_rolled_forward_transition_brings_its_history_entries(
    writers: list[ApprovalRepository],
) -> None:
    survivor, doomed = writers[0], writers[1]
    request_id = await create(survivor, 2, 3)
    dies_after_its_claim(doomed)
    with pytest.raises(WriterDiesAfterItsClaim):
        await service.decide(repository=doomed, decision=decision(request_id, 1, 2))
    await backdate_claims(survivor, request_id)

    read = await survivor.get(request_id, public=True)

    assert read is not None
    assert events(read) == [
        ("created", None, 1),
        ("assigned", 1, 1),
        ("approved", 1, 2),
        ("assigned", 2, 2),
    ]
