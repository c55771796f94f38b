"""Decisions on the real MongoDB-compatible server: the process that wrote a request last
judges the next decision on what it wrote, without reading the document again, and a copy
that fell behind the stored document (another replica decided, or the request was created
anew under its id) never decides anything by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.approval_request import service, workflow
from services.approval_request.repository import ApprovalRepository
from tests.support.mongo import Commands, counted_database
from tests.support.requests import create, decision, stored
from tests.support.stack import Stack


@pytest.fixture
async def database(stack: Stack) -> AsyncIterator[tuple[Any, Commands]]:
    async with counted_database("decision_reads") as counted:
        yield counted.database, counted.commands


async def replica(database: Any, **options: Any) -> ApprovalRepository:
    repository = ApprovalRepository(database, **options)
    await repository.ensure_indexes()
    return repository


async def test_decisions_on_a_request_this_process_wrote_read_nothing(
    database: tuple[Any, Commands],
) -> None:
    db, commands = database
    repository = await replica(db)
    request_id = await create(repository, 2, 3)

    commands.names.clear()
    first, _ = await service.decide(repository=repository, decision=decision(request_id, 1, 2))
    second, _ = await service.decide(repository=repository, decision=decision(request_id, 2, 3))

    assert isinstance(first, workflow.Applied)
    assert isinstance(second, workflow.Applied)
    # The creation still holds the relay lease here, so each decision writes without trying
    # for it: the claim of the next revision and the write, and no read.
    assert commands.names == ["insert", "update"] * 2
    doc = await stored(repository, request_id)
    assert [s["status"] for s in doc["steps"]] == ["approved", "approved"]
    assert (doc["finalStatus"], doc["version"]) == ("approved", 2)


async def test_a_step_another_replica_moved_past_is_judged_on_the_stored_document(
    database: tuple[Any, Commands],
) -> None:
    db, _ = database
    here, there = await replica(db), await replica(db)
    request_id = await create(here, 2, 3)
    first, _ = await service.decide(repository=there, decision=decision(request_id, 1, 2))
    assert isinstance(first, workflow.Applied)

    # ``here`` still remembers step 1 pending, which would refuse step 2 as out of turn.
    outcome, write = await service.decide(repository=here, decision=decision(request_id, 2, 3))

    assert isinstance(outcome, workflow.Applied)
    assert write is not None
    doc = await stored(here, request_id)
    assert (doc["finalStatus"], doc["version"]) == ("approved", 2)


async def test_a_decision_another_replica_already_applied_is_a_replay_that_writes_nothing(
    database: tuple[Any, Commands],
) -> None:
    db, _ = database
    here, there = await replica(db), await replica(db)
    request_id = await create(here, 2, 3)
    await service.decide(repository=there, decision=decision(request_id, 1, 2))
    before = await stored(here, request_id)

    # ``here`` remembers step 1 pending: the revision it claims is taken.
    outcome, write = await service.decide(repository=here, decision=decision(request_id, 1, 2))

    assert isinstance(outcome, workflow.Replay)
    assert write is None
    after = await stored(here, request_id)
    assert (after["version"], after["outbox"]) == (before["version"], before["outbox"])


async def test_a_request_created_anew_under_a_remembered_id_is_judged_as_it_is_now(
    database: tuple[Any, Commands],
) -> None:
    db, _ = database
    here = await replica(db)
    request_id = await create(here, 2, 3)
    remembered = here.recent(request_id)
    assert remembered is not None
    # Elsewhere the request is deleted and another one stored under the same id, version 0,
    # with approver 4 at step 1 (test-mode state set-ups do this).
    replacement = {key: value for key, value in remembered.items() if key != "_id"}
    replacement["steps"] = [{"step": 1, "approverId": 4, "status": "pending", "updatedAt": None}]
    await here.approvals.delete_one({"requestId": request_id})
    await here.approvals.insert_one(replacement)

    refused, _ = await service.decide(repository=here, decision=decision(request_id, 1, 2))
    applied, _ = await service.decide(repository=here, decision=decision(request_id, 1, 4))

    assert refused == workflow.STEP_NOT_FOUND
    assert isinstance(applied, workflow.Applied)
    doc = await stored(here, request_id)
    assert [s["approverId"] for s in doc["steps"]] == [4]
    assert (doc["finalStatus"], doc["version"]) == ("approved", 1)


async def test_only_the_most_recently_written_documents_are_remembered(
    database: tuple[Any, Commands],
) -> None:
    db, commands = database
    repository = await replica(db, recent_documents=2)
    oldest, *newest = [await create(repository, 2) for _ in range(3)]

    assert repository.recent(oldest) is None
    assert all(repository.recent(request_id) is not None for request_id in newest)
    commands.names.clear()
    outcome, _ = await service.decide(repository=repository, decision=decision(oldest, 1, 2))
    assert isinstance(outcome, workflow.Applied)
    assert commands.names == ["find", "insert", "update"]  # read, then as above
