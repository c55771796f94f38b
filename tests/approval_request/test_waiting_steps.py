"""The rebuild listing (``GET /approvals/internal/waiting``): keyset pages in request order
served from equality queries on ``idBucket`` (docs/decisions.md D10), and the one-time
backfill that gives older documents their bucket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient, MongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from services.approval_request import service, workflow
from services.approval_request.repository import (
    ID_BUCKET_MARKER,
    WAITING_BUCKET,
    ApprovalRepository,
    BackfillUnderWay,
    id_bucket,
)
from services.approval_request.schemas import ApprovalCreate, Decision
from tests.support import factories
from tests.support.pipeline import eventually
from tests.support.stack import MONGO_URL, TEST_DB, Stack

Document = dict[str, Any]


@pytest.fixture
def database(stack: Stack) -> Iterator[Database[Document]]:
    """The session's own approval-request database."""
    with MongoClient(MONGO_URL, tz_aware=True) as mongo:
        yield mongo[TEST_DB]


async def _pages(
    client: httpx.AsyncClient, approvals_url: str, *, after: int, limit: int
) -> list[list[Document]]:
    """Every page the rebuild would read from ``after`` on, the short last one included."""
    pages: list[list[Document]] = []
    while True:
        response = await client.get(
            f"{approvals_url}/approvals/internal/waiting",
            params={"afterRequestId": after, "limit": limit},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        if len(page) < limit:
            return pages
        after = page[-1]["requestId"]


async def _decide(
    client: httpx.AsyncClient, approvals_url: str, request_id: int, approver: int, status: str
) -> None:
    body = {"requestId": request_id, "step": 1, "approverId": approver, "status": status}
    response = await client.post(f"{approvals_url}/approvals/internal/result", json=body)
    assert response.status_code == 204, response.text


async def test_pages_cross_a_bucket_boundary_with_every_waiting_step_once_in_order(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    database: Database[Document],
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    # Move the id counter (forward only) to just below a bucket boundary, so the next ids
    # land on both sides of it once the service has used up the block it holds.
    counter = database["counters"].find_one({"_id": "approvals"}) or {"seq": 0}
    boundary = (id_bucket(int(counter["seq"])) + 2) * WAITING_BUCKET
    database["counters"].update_one(
        {"_id": "approvals"}, {"$set": {"seq": boundary - 4}}, upsert=True
    )
    chains: dict[int, list[int]] = {}
    while sum(r >= boundary for r in chains) < 4:
        assert len(chains) < 30, "the counter did not move"
        chain = [first, second] if len(chains) % 2 else [first]
        body = factories.approval_body(requester, chain)
        chains[await factories.approval(client, approvals_url, body)] = chain
    mine = sorted(chains)
    below = [r for r in mine if r < boundary]
    above = [r for r in mine if r >= boundary]
    approved = next(r for r in reversed(below) if len(chains[r]) == 1)
    rejected = above[0]
    advanced = next(r for r in above[1:] if len(chains[r]) == 2)
    await _decide(client, approvals_url, approved, first, "approved")
    await _decide(client, approvals_url, rejected, first, "rejected")
    await _decide(client, approvals_url, advanced, first, "approved")

    pages = await _pages(client, approvals_url, after=mine[0] - 1, limit=3)

    listed = [item for page in pages for item in page]
    ids = [item["requestId"] for item in listed]
    assert ids == [r for r in mine if r not in (approved, rejected)]
    assert [len(page) for page in pages[:-1]] == [3] * (len(pages) - 1)
    assert len(pages[-1]) < 3
    assert min(ids) < boundary <= max(ids)
    for item in listed:
        request_id = item["requestId"]
        step = 2 if request_id == advanced else 1
        assert item == {
            "requestId": request_id,
            "step": step,
            "requesterId": requester,
            "approverId": chains[request_id][step - 1],
            "title": "결재 요청",
            "content": "내용",
        }
    stored = database["approvals"].find(
        {"requestId": {"$in": mine}}, {"requestId": 1, "idBucket": 1}
    )
    assert {doc["requestId"]: doc["idBucket"] for doc in stored} == {r: r // 1000 for r in mine}


async def test_documents_without_a_bucket_get_one_when_the_service_starts(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    database: Database[Document],
    stack: Stack,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    body = factories.approval_body(requester, [approver])
    ids = [await factories.approval(client, approvals_url, body) for _ in range(3)]
    stack.stop("approval_request")
    try:  # documents as a version before idBucket stored them
        database["approvals"].update_many({}, {"$unset": {"idBucket": ""}})
        database["counters"].delete_one(ID_BUCKET_MARKER)
    finally:
        stack.start("approval_request")

    async def marked() -> Document | None:
        return database["counters"].find_one(ID_BUCKET_MARKER)

    assert (await eventually(marked, what="the backfill marker"))["done"] is True
    assert database["approvals"].count_documents({"idBucket": {"$exists": False}}) == 0
    for doc in database["approvals"].find({}, {"requestId": 1, "idBucket": 1}):
        assert doc["idBucket"] == id_bucket(doc["requestId"])
    pages = await _pages(client, approvals_url, after=ids[0] - 1, limit=1000)
    assert [item["requestId"] for item in pages[0]] == ids


@pytest.fixture
async def scratch(infra: None) -> AsyncIterator[AsyncDatabase[Document]]:
    """A database of this test's own, for the repository alone (no service writes to it)."""
    name = f"{TEST_DB}_buckets"
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(MONGO_URL, tz_aware=True)
    await mongo.drop_database(name)
    try:
        yield mongo[name]
    finally:
        await mongo.drop_database(name)
        await mongo.close()


async def _nobody_missing(ids: object) -> list[int]:
    return []


async def _create(repository: ApprovalRepository, approvers: list[int]) -> int:
    body = ApprovalCreate.model_validate(factories.approval_body(1, approvers))
    stored = await service.create(repository=repository, find_missing=_nobody_missing, body=body)
    return stored.request_id


async def _six_requests(repository: ApprovalRepository) -> tuple[list[int], list[int]]:
    """Six one-step requests with ids on both sides of a bucket boundary, the second one
    approved: (all ids, the open ones)."""
    await repository.ensure_indexes()
    counter = {"_id": "approvals", "seq": WAITING_BUCKET - 3}
    await repository.counters.insert_one(counter)
    ids = [await _create(repository, [2]) for _ in range(6)]
    assert ids == list(range(WAITING_BUCKET - 2, WAITING_BUCKET + 4))
    decision = Decision(requestId=ids[1], step=1, approverId=2, status="approved")
    outcome, _ = await service.decide(repository=repository, decision=decision)
    assert isinstance(outcome, workflow.Applied)
    return ids, [r for r in ids if r != ids[1]]


async def test_the_repository_cuts_pages_exactly_at_the_limit(
    scratch: AsyncDatabase[Document],
) -> None:
    repository = ApprovalRepository(scratch)
    assert await repository.waiting(after_request_id=0, limit=10) == []  # no counter yet
    ids, open_ids = await _six_requests(repository)

    for limit, lengths in ((2, [2, 2, 1]), (5, [5, 0]), (6, [5])):
        pages, after = [], 0
        while not pages or len(pages[-1]) == limit:
            pages.append(await repository.waiting(after_request_id=after, limit=limit))
            after = pages[-1][-1]["requestId"] if pages[-1] else after
        assert [len(page) for page in pages] == lengths, limit
        assert [doc["requestId"] for page in pages for doc in page] == open_ids
    assert await repository.waiting(after_request_id=ids[-1], limit=10) == []


async def _as_before_id_buckets(scratch: AsyncDatabase[Document]) -> None:
    await scratch["approvals"].update_many({}, {"$unset": {"idBucket": ""}})
    await scratch["counters"].delete_one(ID_BUCKET_MARKER)


async def test_older_documents_get_their_bucket_once_before_any_page(
    scratch: AsyncDatabase[Document],
) -> None:
    ids, open_ids = await _six_requests(ApprovalRepository(scratch))

    # A restarted service whose start-up backfill has not run yet runs it for the first page.
    await _as_before_id_buckets(scratch)
    restarted = ApprovalRepository(scratch)
    page = await restarted.waiting(after_request_id=0, limit=10)
    assert [doc["requestId"] for doc in page] == open_ids
    assert await scratch["counters"].find_one(ID_BUCKET_MARKER) == {
        **ID_BUCKET_MARKER,
        "done": True,
    }
    stored = scratch["approvals"].find({}, {"_id": 0, "requestId": 1, "idBucket": 1})
    assert {doc["requestId"]: doc["idBucket"] async for doc in stored} == {
        r: id_bucket(r) for r in ids
    }
    assert await restarted.backfill_id_buckets() == 0

    # While the start-up backfill is under way, a page is refused (503), not queued.
    await _as_before_id_buckets(scratch)
    starting = ApprovalRepository(scratch)
    backfill = asyncio.create_task(starting.backfill_id_buckets())
    await asyncio.sleep(0)  # it holds its lock and waits for the database
    with pytest.raises(BackfillUnderWay):
        await starting.waiting(after_request_id=0, limit=10)
    assert await backfill == len(ids)
    page = await starting.waiting(after_request_id=0, limit=10)
    assert [doc["requestId"] for doc in page] == open_ids

    # The marker alone decides: a later start-up does not look for unbucketed documents.
    await scratch["approvals"].update_one({"requestId": ids[0]}, {"$unset": {"idBucket": ""}})
    assert await ApprovalRepository(scratch).backfill_id_buckets() == 0
    assert await scratch["approvals"].count_documents({"idBucket": {"$exists": False}}) == 1
