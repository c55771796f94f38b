"""The local FerretDB answers equality look-ups from an index (docs/decisions.md D10).

FerretDB reports PostgreSQL's plan under ``explain``; without the tuning every look-up by
``requestId`` (or by ``_id``) was a sequential scan of the whole collection."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from services.approval_request.repository import id_bucket
from tests.support.factories import approval, approval_body, employees
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


async def test_approval_look_ups_by_equality_use_an_index(
    database: Database[dict[str, Any]],
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
) -> None:
    requester, approver = await employees(client, employee_url, 2)
    request_id = await approval(client, approvals_url, approval_body(requester, [approver]))

    for query in (
        {"requestId": request_id},
        {"approverIds": approver},
        {"requesterId": requester},
        {"finalStatus": "pending"},
        {"idBucket": id_bucket(request_id), "finalStatus": "pending"},  # the inbox rebuild
    ):
        assert index_used(planned(database, "approvals", query)), query


def test_an_index_created_later_gets_its_companion_and_loses_it_on_drop(
    database: Database[dict[str, Any]],
) -> None:
    scratch = database["tuning_scratch"]
    scratch.drop()
    scratch.insert_many([{"code": n, "other": n} for n in range(500)])
    scratch.create_index("code", name="ix_code")

    assert index_used(planned(database, "tuning_scratch", {"code": 7}))
    assert index_used(planned(database, "tuning_scratch", {"other": 7})) is None

    scratch.drop_index("ix_code")
    assert index_used(planned(database, "tuning_scratch", {"code": 7})) is None
    scratch.drop()
