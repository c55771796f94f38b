"""The local FerretDB answers equality look-ups from an index (docs/decisions.md D10).

FerretDB reports PostgreSQL's plan under ``explain``; without the tuning every look-up by
``requestId`` (or by ``_id``) was a sequential scan of the whole collection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.database import Database

from services.approval_request.repository import ApprovalRepository, id_bucket
from tests.support.stack import MONGO_URL, TEST_DB, Stack


@pytest.fixture
def database(stack: Stack) -> Iterator[Database[dict[str, Any]]]:
    with MongoClient(MONGO_URL) as mongo:
        yield mongo[TEST_DB]


def index_used(plan: dict[str, Any]) -> str | None:
    if plan.get("Index Name"):
        return str(plan["Index Name"])
    for child in plan.get("Plans", []):
        found = index_used(child)
        if found:
            return found
    return None


def planned(database: Database[dict[str, Any]], collection: str, query: dict[str, Any]) -> Any:
    explained = database[collection].find(query).explain()
    return explained["queryPlanner"]["Plan"]


async def test_approval_look_ups_by_equality_use_the_repositorys_indexes(stack: Stack) -> None:
    """The indexes approval-request-service creates serve its equality queries. A scratch
    database of a few thousand documents: on a table of a few pages PostgreSQL rightly
    prefers reading it whole, so the session's own small collection proves nothing."""
    name = f"{TEST_DB}_tuning"
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO_URL, tz_aware=True)
    try:
        await mongo.drop_database(name)
        repository = ApprovalRepository(mongo[name])
        await repository.ensure_indexes()
        await repository.approvals.insert_many(
            {
                "requestId": n,
                "idBucket": id_bucket(n),
                "requesterId": 1000 + n % 500,
                "approverIds": [2000 + n % 300, 3000 + n % 200],
                "finalStatus": "pending" if n % 20 == 0 else "approved",
                "outboxOpen": n % 50 == 0,
                "title": "결재 요청",
            }
            for n in range(1, 3001)
        )
        queries: list[dict[str, Any]] = [
            {"requestId": 2019},
            {"approverIds": 2019},
            {"requesterId": 1019},
            {"finalStatus": "pending"},
            {"outboxOpen": True},  # the outbox poller
            {"idBucket": 2, "finalStatus": "pending"},  # the inbox rebuild
        ]
        for query in queries:
            explained = await repository.approvals.find(query).explain()
            assert index_used(explained["queryPlanner"]["Plan"]), query
    finally:
        await mongo.drop_database(name)
        await mongo.close()


def test_an_index_created_later_gets_its_companion_and_loses_it_on_drop(
    database: Database[dict[str, Any]],
) -> None:
    scratch = database["tuning_scratch"]
    scratch.drop()
    scratch.insert_many([{"code": n, "other": n} for n in range(3000)])
    scratch.create_index("code", name="ix_code")

    assert index_used(planned(database, "tuning_scratch", {"code": 7}))
    assert index_used(planned(database, "tuning_scratch", {"other": 7})) is None

    scratch.drop_index("ix_code")
    assert index_used(planned(database, "tuning_scratch", {"code": 7})) is None
    scratch.drop()
