"""Waiting until the approval pipeline has nothing more in flight for a request, so that a
test asserting "exactly once" or "never" knows the answer is final: every side effect in
the request's outbox delivered, and every hand-off message consumed. Read from the stack's
own database and broker; a fixed sleep would only make the race less likely."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient

from services.common.messaging import PARTITIONS, WORK_QUEUE, partition_queue
from tests.support.pipeline import eventually
from tests.support.stack import MONGO_URL, TEST_DB


async def _stored(request_id: int, db: str = TEST_DB) -> dict[str, Any]:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO_URL, tz_aware=True)
    try:
        doc = await mongo[db]["approvals"].find_one({"requestId": request_id})
    finally:
        await mongo.close()
    assert doc is not None, f"request {request_id} is not stored"
    return doc


async def outbox_drained(
    request_id: int, *, timeout: float = 30.0, db: str = TEST_DB
) -> dict[str, Any]:
    """The stored request, once every side effect it implied has been delivered."""

    async def probe() -> dict[str, Any] | None:
        doc = await _stored(request_id, db)
        return doc if not doc.get("outbox") and doc.get("pendingEffects") == 0 else None

    return await eventually(probe, timeout=timeout, what=f"request {request_id}'s outbox")


async def effect_attempted(
    request_id: int, kind: str, *, timeout: float = 30.0, db: str = TEST_DB
) -> None:
    """Until the relay has tried (and failed) to deliver an effect of ``kind`` at least once."""

    async def probe() -> bool:
        outbox = (await _stored(request_id, db)).get("outbox") or {}
        return any(e["kind"] == kind and e["attempts"] >= 1 for e in outbox.values())

    await eventually(probe, timeout=timeout, what=f"a failed {kind} of request {request_id}")


WORK_QUEUES = {WORK_QUEUE, *(partition_queue(p) for p in range(PARTITIONS))}


async def _work_queue_depth(vhost: str = TEST_DB) -> int:
    """Messages in the work queues (the partitions and the unpartitioned one they replace),
    delivered-but-unacked ones included."""
    listing = await asyncio.create_subprocess_exec(
        *("rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "messages"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await listing.communicate()
    depths = dict(line.split("\t", 1) for line in out.decode().splitlines() if "\t" in line)
    missing = WORK_QUEUES - depths.keys()
    assert not missing, f"no {sorted(missing)} queues in {out.decode()!r}"
    return sum(int(depths[name]) for name in WORK_QUEUES)


async def settled(*request_ids: int, timeout: float = 30.0, db: str = TEST_DB) -> None:
    """Until the requests' outboxes are delivered and the consumer has taken every hand-off
    (so no inbox can still change because of them); `db` names the stack's databases and
    vhost."""
    for request_id in request_ids:
        await outbox_drained(request_id, timeout=timeout, db=db)

    async def consumed() -> bool:
        return await _work_queue_depth(db) == 0

    await eventually(consumed, timeout=timeout, what="the approval.work queues to empty")


async def queue_depths(vhost: str = TEST_DB) -> dict[str, int]:
    """Messages (ready and unacknowledged) in every classic or quorum queue of ``vhost``.
    Streams are left out: they keep what was read."""
    listing = await asyncio.create_subprocess_exec(
        *(
            "rabbitmqctl",
            "-q",
            "list_queues",
            "--no-table-headers",
            "-p",
            vhost,
            "name",
            "messages",
            "type",
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await listing.communicate()
    rows = [line.split("\t") for line in out.decode().splitlines()]
    return {row[0]: int(row[1]) for row in rows if len(row) == 3 and row[2] != "stream"}
