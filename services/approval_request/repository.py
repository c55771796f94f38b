"""MongoDB access for approval documents. Every state change is one conditional update on
one document (expected version and step status in the filter), never read-modify-replace.

The outbox lives inside the document as ``outbox.<effectId>`` entries so a state change and
the messages it implies are written by the same atomic update. That write also takes the
relay lease when it is free and hands the stored document back, so the writer delivers at
once without another round trip to claim it (``StoredWrite.leased``); when a relay of this
process already holds the lease, the write hands the document to that relay instead
(``StoredWrite.written``). A decision judges what this process last wrote of the request
(``recent``) and needs no read when that copy is still current. ``outboxOpen`` marks
documents with effects still to deliver: the relay's poller finds them by that equality
(the local server pushes nothing else down to an index, docs/decisions.md D10).

Every taking of the lease stores a fresh ``relayLeaseOwner`` token with it, and the relay's
own writes (``record_round``, ``settle``) name that token: a relay whose lease ran out while
it delivered, and that another relay has taken since, can neither renew nor give back the
new holder's lease, nor count its deliveries down a second time.

On MongoDB those conditional updates are atomic, so any number of replicas may write. The
local MongoDB-compatible server (FerretDB 1.24) is not: it runs an update as a query
followed by a rewrite of the whole document, so two concurrent updates of one document can
both "match" and the second silently drops the first (measured: 3 of 50 concurrent
compare-and-set updates won). Writes to one document are therefore also serialised inside
this process (striped locks), which makes a single replica correct on FerretDB; requestId
allocation additionally retries on the unique index, which FerretDB does enforce.

FerretDB 1.24 pushes only scalar equality filters down to its backend (docs/decisions.md
D10); a range, ``$in``, ``$exists``, sort or limit makes it fetch and decode every document
the equality part matches. Queries that run often are therefore equality-only: the
inbox rebuild (``waiting``) walks ``idBucket`` (``requestId // WAITING_BUCKET``, stored
with every document) one bucket and one open status at a time."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cachetools import LRUCache
from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.approval_request.schemas import FinalStatus

Document = dict[str, Any]
# Lease values compare as "free" when in the past; stored instead of null so one range
# query finds them on any MongoDB-compatible server.
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
OPEN_STATUSES = [FinalStatus.PENDING.value, FinalStatus.IN_PROGRESS.value]
# What an inbox item needs of a document (the rebuild reads only this) ...
WAITING_FIELDS = {
    "_id": 0,
    "requestId": 1,
    "requesterId": 1,
    "title": 1,
    "content": 1,
    "steps": 1,
    "finalStatus": 1,
}
# ... and what the public API shows.
PUBLIC_FIELDS = {
    **WAITING_FIELDS,
    "requestType": 1,
    "leaveInfo": 1,
    "createdAt": 1,
    "updatedAt": 1,
}
# What a decision reads of a document: ``remember`` keeps these of the documents this
# process wrote last, so the next decision on one needs no read (``recent``).
DECISION_FIELDS = (
    "_id",
    "requestId",
    "requesterId",
    "title",
    "content",
    "steps",
    "finalStatus",
    "requestType",
    "leaveInfo",
    "createdAt",
    "createdTraceparent",
    "version",
)
# Flows in flight are what it is for; at most ~25 MB even if every content had 5,000
# characters outside Latin-1 (two bytes each in a Python string).
RECENT_DOCUMENTS = 2048


LOCK_STRIPES = 1024
ID_BLOCK = 20
DEFAULT_RELAY_LEASE = timedelta(seconds=30)
# Request ids per ``idBucket``: how many documents one rebuild query decodes at most.
WAITING_BUCKET = 1000
# Buckets one rebuild page reads at once, at most (two queries each).
WAITING_ROUND_MAX = 8
# In ``counters``: every approval document carries ``idBucket`` (one-time backfill done).
ID_BUCKET_MARKER = {"_id": "schema:idBucket"}
BACKFILL_AT_ONCE = 16


def lease_owner() -> str:
    """A token naming one taking of the relay lease (see the module docstring)."""
    return uuid.uuid4().hex


class BackfillUnderWay(Exception):
    """Older documents are still getting their ``idBucket``: no rebuild page yet."""


def id_bucket(request_id: int) -> int:
    """The ``idBucket`` stored with request ``request_id``."""
    return request_id // WAITING_BUCKET


@dataclass(frozen=True)
class StoredWrite:
    """A write that stored side effects. ``leased`` is the document as written when that
    write also took the relay lease: its writer delivers the outbox. ``None`` when another
    relay holds the lease (it goes round again and sees the new effects). ``written`` is the
    document as written when a relay of this process holds the lease (``apply``'s
    ``relay_holds``): that relay continues from it without reading it again."""

    request_id: int
    leased: Document | None
    written: Document | None = None


class ApprovalRepository:
    def __init__(
        self,
        database: AsyncDatabase[Document],
        *,
        relay_lease: timedelta = DEFAULT_RELAY_LEASE,
        recent_documents: int = RECENT_DOCUMENTS,
    ) -> None:
        self.approvals: AsyncCollection[Document] = database["approvals"]
        self.counters: AsyncCollection[Document] = database["counters"]
        self.relay_lease = relay_lease
        self._locks = [asyncio.Lock() for _ in range(LOCK_STRIPES)]
        self._counter_lock = asyncio.Lock()
        self._ids: deque[int] = deque()
        self._buckets_lock = asyncio.Lock()
        self._buckets_done = False
        self._recent: LRUCache[int, Document] = LRUCache(maxsize=recent_documents)

    def _lock(self, request_id: int) -> asyncio.Lock:
        return self._locks[request_id % LOCK_STRIPES]

    async def ensure_indexes(self) -> None:
        await self.approvals.create_index("requestId", unique=True, name="uq_request_id")
        await self.approvals.create_index("requesterId", name="ix_requester")
        await self.approvals.create_index("approverIds", name="ix_approvers")
        await self.approvals.create_index("finalStatus", name="ix_final_status")
        await self.approvals.create_index("outboxOpen", name="ix_outbox_open")
        await self.approvals.create_index("idBucket", name="ix_id_bucket")
        await self._mark_open_outboxes()

    async def _mark_open_outboxes(self) -> None:
        """Documents written before ``outboxOpen`` existed get it once (one scan, then a
        marker in ``counters`` so later start-ups skip it). One update per document under
        its lock: the service already serves while this runs, and on FerretDB an unlocked
        ``update_many`` could rewrite a document a decision is changing (D6)."""
        marker = {"_id": "schema:outboxOpen"}
        if await self.counters.find_one(marker):
            return
        cursor = self.approvals.find(
            {"pendingEffects": {"$gt": 0}, "outboxOpen": {"$exists": False}},
            {"_id": 0, "requestId": 1},
        )
        for doc in [doc async for doc in cursor]:
            async with self._lock(doc["requestId"]):
                await self.approvals.update_one(
                    {"requestId": doc["requestId"], "outboxOpen": {"$exists": False}},
                    {"$set": {"outboxOpen": True}},
                )
        await self.counters.update_one(marker, {"$set": {"done": True}}, upsert=True)

    async def backfill_id_buckets(self) -> int:
        """Give ``idBucket`` to documents stored before it existed; returns how many.

        Once done, a marker in ``counters`` says so and later start-ups skip the scan (the
        ``$exists`` query decodes the whole collection on FerretDB). Run at start-up; until
        it has finished, ``waiting`` serves no page (it runs it itself if nothing has yet,
        and refuses while it is under way), so no page misses a document still without its
        bucket. Each update holds the document's lock, like every other write (D6); a few
        run at once (on FerretDB one takes ~4 ms: 10,000 documents in ~40 s one by one)."""
        if self._buckets_done:
            return 0
        async with self._buckets_lock:
            if self._buckets_done:
                return 0
            filled = 0
            if not await self.counters.find_one(ID_BUCKET_MARKER):
                cursor = self.approvals.find(
                    {"idBucket": {"$exists": False}}, {"_id": 0, "requestId": 1}
                )
                missing = [doc["requestId"] async for doc in cursor]
                for start in range(0, len(missing), BACKFILL_AT_ONCE):
                    chunk = missing[start : start + BACKFILL_AT_ONCE]
                    await asyncio.gather(*(self._set_id_bucket(r) for r in chunk))
                    filled += len(chunk)
                await self.counters.update_one(
                    ID_BUCKET_MARKER, {"$set": {"done": True}}, upsert=True
                )
            self._buckets_done = True
            return filled

    async def _set_id_bucket(self, request_id: int) -> None:
        async with self._lock(request_id):
            await self.approvals.update_one(
                {"requestId": request_id}, {"$set": {"idBucket": id_bucket(request_id)}}
            )

    async def _next_request_id(self) -> int:
        """Ids come from the shared counter in blocks, so creations do not queue on one
        counter update each; the unique index still arbitrates between processes."""
        async with self._counter_lock:
            if not self._ids:
                counter = await self.counters.find_one_and_update(
                    {"_id": "approvals"},
                    {"$inc": {"seq": ID_BLOCK}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
                assert counter is not None  # upsert with AFTER always returns the document
                last = int(counter["seq"])
                self._ids.extend(range(last - ID_BLOCK + 1, last + 1))
            return self._ids.popleft()

    def drop_id_block(self) -> None:
        """Forget the ids taken from the counter but not used (test-mode state hooks)."""
        self._ids.clear()

    async def insert_new(
        self, build: Callable[[int], Document], *, now: datetime, attempts: int = 20
    ) -> StoredWrite:
        """Store ``build(request_id)`` under a fresh id, with its ``idBucket``; the effects in
        its ``outbox`` come with the relay lease taken. The unique index is the arbiter: an
        id already taken (possible with several writers on FerretDB) just takes the next
        one."""
        for _ in range(attempts):
            request_id = await self._next_request_id()
            doc = build(request_id)
            effects = doc.setdefault("outbox", {})
            doc |= {
                "idBucket": id_bucket(request_id),
                "pendingEffects": len(effects),
                "outboxVersion": 1,
                "outboxOpen": bool(effects),
                "effectsDueAt": now if effects else FAR_FUTURE,
                "relayLeaseUntil": now + self.relay_lease if effects else NEVER,
                "relayLeaseOwner": lease_owner() if effects else None,
            }
            try:
                await self.approvals.insert_one(doc)
            except DuplicateKeyError:
                continue
            self.remember(doc)
            doc.pop("_id", None)
            return StoredWrite(request_id, doc if effects else None)
        raise RuntimeError("could not allocate a requestId")

    def recent(self, request_id: int) -> Document | None:
        """What this process last wrote of request ``request_id`` (``DECISION_FIELDS``), if
        it still remembers: a copy that may be behind the stored document, when another
        replica or a test changed it since. Judge a decision on it only to attempt a write
        that names its ``_id`` and ``version`` (``apply``); anything else is judged on the
        stored document. Saves a decision its read (two of a two-step flow's ~10 commands)."""
        return self._recent.get(request_id)

    def remember(self, doc: Document) -> None:
        self._recent[doc["requestId"]] = {key: doc[key] for key in DECISION_FIELDS if key in doc}

    def forget(self, request_id: int) -> None:
        self._recent.pop(request_id, None)

    async def get(self, request_id: int, *, public: bool = False) -> Document | None:
        projection = PUBLIC_FIELDS if public else None
        return await self.approvals.find_one({"requestId": request_id}, projection)

    async def find_many(
        self, *, filters: Mapping[str, Any], limit: int, offset: int
    ) -> list[Document]:
        cursor = (
            self.approvals.find(dict(filters), PUBLIC_FIELDS)
            .sort([("createdAt", DESCENDING), ("requestId", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return [doc async for doc in cursor]

    async def waiting(self, *, after_request_id: int, limit: int) -> list[Document]:
        """Up to ``limit`` open requests with ids above ``after_request_id``, in id order, with
        just what an inbox item needs (keyset paging; fewer than ``limit`` means no more).

        Equality queries only, one per bucket and open status, from the bucket of
        ``after_request_id + 1`` up to that of the highest id ever allocated: on FerretDB a
        range, ``$in``, sort or limit would decode the whole collection for every page.
        Each query decodes at most ``WAITING_BUCKET`` documents. Buckets are read whole, in
        rounds run concurrently (as many as a page of dense ids spans, doubling while the
        page is not full), so once ``limit`` are gathered every later bucket holds only
        higher ids and the page is cut there."""
        if not self._buckets_done and self._buckets_lock.locked():
            raise BackfillUnderWay  # answered 503: callers retry later rather than queue
        await self.backfill_id_buckets()
        counter = await self.counters.find_one({"_id": "approvals"})
        if counter is None:
            return []
        bucket, last = id_bucket(after_request_id + 1), id_bucket(int(counter["seq"]))
        per_round = min(limit // WAITING_BUCKET + 1, WAITING_ROUND_MAX)
        found: list[Document] = []
        while bucket <= last and len(found) < limit:
            batch = range(bucket, min(bucket + per_round, last + 1))
            queries = [
                self._open_in(b, status, after_request_id)
                for b in batch
                for status in OPEN_STATUSES
            ]
            for docs in await asyncio.gather(*queries):
                found.extend(docs)
            bucket, per_round = batch.stop, min(per_round * 2, WAITING_ROUND_MAX)
        found.sort(key=lambda doc: doc["requestId"])
        return found[:limit]

    async def _open_in(self, bucket: int, status: str, after_request_id: int) -> list[Document]:
        cursor = self.approvals.find({"idBucket": bucket, "finalStatus": status}, WAITING_FIELDS)
        return [doc async for doc in cursor if doc["requestId"] > after_request_id]

    async def apply(
        self,
        *,
        request_id: int,
        version: int,
        index: int,
        changes: Mapping[str, Any],
        effects: Mapping[str, Document],
        now: datetime,
        document_id: Any = None,
        relay_holds: Callable[[int], bool] | None = None,
    ) -> StoredWrite | None:
        """Apply a decision if nobody changed the document since ``version`` was read
        (``None`` otherwise). With effects, the same write takes the relay lease if free.
        When ``relay_holds(request_id)`` says a relay of this process holds it, the write
        skips that attempt and hands the document as written back for that relay instead
        (asked under the document's lock, which the relay's own writes take: the answer
        cannot change before this write lands).
        ``document_id``, the ``_id`` of the document read, pins the write to that very
        document: a request deleted and created again under its id is another one."""
        sets: dict[str, Any] = {
            **changes,
            "version": version + 1,
            "updatedAt": now,
            **{f"outbox.{key}": effect for key, effect in effects.items()},
        }
        update: dict[str, Any] = {
            "$set": sets,
            "$inc": {"pendingEffects": len(effects), "outboxVersion": 1},
        }
        query = {"requestId": request_id, "version": version, f"steps.{index}.status": "pending"}
        if document_id is not None:
            query["_id"] = document_id
        if effects:
            sets["outboxOpen"] = True
            update["$min"] = {"effectsDueAt": now}
        async with self._lock(request_id):
            held_here = relay_holds is not None and relay_holds(request_id)
            if effects and not held_here:
                leased = await self.approvals.find_one_and_update(
                    {**query, "relayLeaseUntil": {"$lt": now}},
                    {
                        **update,
                        "$set": {
                            **sets,
                            "relayLeaseUntil": now + self.relay_lease,
                            "relayLeaseOwner": lease_owner(),
                        },
                    },
                    return_document=ReturnDocument.AFTER,
                )
                if leased is not None:
                    return StoredWrite(request_id, leased)
            elif effects:
                # The holder goes on with more to deliver: its lease starts again from now.
                sets["relayLeaseUntil"] = now + self.relay_lease
                written = await self.approvals.find_one_and_update(
                    query, update, return_document=ReturnDocument.AFTER
                )
                return None if written is None else StoredWrite(request_id, None, written)
            result = await self.approvals.update_one(query, update)
        return StoredWrite(request_id, None) if result.modified_count == 1 else None

    async def due_for_delivery(self, *, now: datetime, limit: int) -> list[int]:
        cursor = self.approvals.find(
            {"outboxOpen": True, "effectsDueAt": {"$lte": now}, "relayLeaseUntil": {"$lt": now}},
            {"_id": 0, "requestId": 1},
        ).limit(limit)
        return [doc["requestId"] async for doc in cursor]

    async def count_open_outboxes(self) -> int:
        return await self.approvals.count_documents({"outboxOpen": True})

    async def claim(self, *, request_id: int, now: datetime) -> Document | None:
        """Take the relay lease on one document so one relay at a time delivers its outbox;
        the document handed back names the taking (``relayLeaseOwner``).
        (No projection: FerretDB's findAndModify does not support one.)"""
        async with self._lock(request_id):
            return await self.approvals.find_one_and_update(
                {"requestId": request_id, "relayLeaseUntil": {"$lt": now}},
                {
                    "$set": {
                        "relayLeaseUntil": now + self.relay_lease,
                        "relayLeaseOwner": lease_owner(),
                    }
                },
                return_document=ReturnDocument.AFTER,
            )

    async def settle(
        self,
        *,
        request_id: int,
        owner: str,
        delivered: Sequence[str],
        retries: Mapping[str, Document],
        follow_ups: Mapping[str, Document],
        release: tuple[int, datetime],
    ) -> bool:
        """Record a delivery round and give the lease back, ``release=(outbox_version,
        next_due)``, but only if ``owner`` still holds it and no effect was added since that
        version (else nothing is written: the caller records the round with
        ``record_round`` and goes again)."""
        version, next_due = release
        update = self._round(
            delivered,
            retries,
            follow_ups,
            {
                "effectsDueAt": next_due,
                "relayLeaseUntil": NEVER,
                "outboxOpen": next_due != FAR_FUTURE,
            },
        )
        query = {"requestId": request_id, "outboxVersion": version, "relayLeaseOwner": owner}
        async with self._lock(request_id):
            result = await self.approvals.update_one(query, update)
        return result.matched_count == 1

    async def record_round(
        self,
        *,
        request_id: int,
        owner: str,
        delivered: Sequence[str],
        retries: Mapping[str, Document],
        follow_ups: Mapping[str, Document],
        now: datetime,
    ) -> Document | None:
        """Record a delivery round, keeping the lease (renewed from ``now``: a document with
        effects coming one after another can keep a relay busy for longer than one lease),
        and hand back the document as written for the next round (one command: the relay
        needs both). ``None``, and nothing written, when ``owner`` no longer holds it."""
        update = self._round(
            delivered, retries, follow_ups, {"relayLeaseUntil": now + self.relay_lease}
        )
        async with self._lock(request_id):
            return await self.approvals.find_one_and_update(
                {"requestId": request_id, "relayLeaseOwner": owner},
                update,
                return_document=ReturnDocument.AFTER,
            )

    @staticmethod
    def _round(
        delivered: Sequence[str],
        retries: Mapping[str, Document],
        follow_ups: Mapping[str, Document],
        sets: dict[str, Any],
    ) -> dict[str, Any]:
        """The update that records a delivery round (and sets ``sets``)."""
        sets |= {f"outbox.{key}": value for key, value in follow_ups.items()}
        for key, changes in retries.items():
            sets.update({f"outbox.{key}.{name}": value for name, value in changes.items()})
        update: dict[str, Any] = {
            "$inc": {
                "pendingEffects": len(follow_ups) - len(delivered),
                "outboxVersion": 1 if follow_ups else 0,
            },
        }
        if sets:
            update["$set"] = sets
        if delivered:
            update["$unset"] = {f"outbox.{key}": "" for key in delivered}
        return update

    async def ping(self) -> None:
        await self.approvals.database.command("ping")
