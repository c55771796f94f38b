"""MongoDB access for approval documents. Every write to a stored document is a transition
from one ``revision`` to the next, claimed first: the writer inserts the transition into
``transitions`` under the key (document, revision + 1), whose uniqueness the server enforces,
and only then rewrites the document, conditionally on the revision it judged (and on the
expected version, step status and lease, which make the write alone atomic on MongoDB).
Of concurrent writers from any number of processes exactly one inserts the claim; the others
get ``DuplicateKeyError``, read again and judge again. That holds on the local server too
(FerretDB 1.24), which runs an update as a query followed by a rewrite of the whole document,
so two concurrent conditional updates of one document can both "match" and the second
silently drops the first (measured: 3 of 50 concurrent compare-and-set updates won), but
which does enforce unique indexes (docs/decisions.md D21).

A claim carries the update it stands for. A writer that dies between the claim and the
rewrite leaves a claimed, unapplied transition that blocks every later one; whoever next
meets it (a write whose claim collides, a read of an open request) applies it once it is
older than ``roll_forward_after`` (roll forward), and goes on. The claims stay: they are the
history of every change of every request.

The outbox lives inside the document as ``outbox.<effectId>`` entries so a state change and
the messages it implies are written by the same transition. That write also takes the relay
lease when it is free and hands the stored document back, so the writer delivers at once
without another round trip to claim it (``StoredWrite.leased``); when a relay of this
process already holds the lease, the write hands the document to that relay instead
(``StoredWrite.written``). A decision judges what this process last wrote of the request
(``recent``) and needs no read when that copy is still current: if another process wrote
since, the claim of the next revision collides and the decision is judged again on the
stored document. ``outboxOpen`` marks documents with effects still to deliver: the relay's
poller finds them by that equality (the local server pushes nothing else down to an index,
docs/decisions.md D10).

Every taking of the lease stores a fresh ``relayLeaseOwner`` token with it, and the relay's
own writes (``record_round``, ``settle``) name that token: a relay whose lease ran out while
it delivered, and that another relay has taken since, can neither renew nor give back the
new holder's lease, nor count its deliveries down a second time.

requestId allocation takes blocks from a shared counter and lets the unique index on
``requestId`` arbitrate (the counter's ``$inc`` is not atomic on FerretDB either).

FerretDB 1.24 pushes only scalar equality filters down to its backend (docs/decisions.md
D10); a range, ``$in``, ``$exists``, sort or limit makes it fetch and decode every document
the equality part matches. Queries that run often are therefore equality-only: the
inbox rebuild (``waiting``) walks ``idBucket`` (``requestId // WAITING_BUCKET``, stored
with every document) one bucket and one open status at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cachetools import LRUCache
from pymongo import DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.approval_request.schemas import FinalStatus

logger = logging.getLogger(__name__)
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
    "history": 1,
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
    "revision",
    "relayLeaseUntil",
    "relayLeaseOwner",
)
# Flows in flight are what it is for; at most ~25 MB even if every content had 5,000
# characters outside Latin-1 (two bytes each in a Python string).
RECENT_DOCUMENTS = 2048

ID_BLOCK = 20
DEFAULT_RELAY_LEASE = timedelta(seconds=30)
# A claimed transition not yet applied this long after its claim is taken for the work of a
# writer that died, and applied by whoever meets it. A live writer rewrites within
# milliseconds of its claim; the margin covers a stalled one.
DEFAULT_ROLL_FORWARD_AFTER = timedelta(seconds=2)
# Waiting for a concurrent writer's rewrite to land after its claim: first pause, last pause.
LANDING_PAUSES = (0.002, 0.05)
# Request ids per ``idBucket``: how many documents one rebuild query decodes at most.
WAITING_BUCKET = 1000
# Buckets one rebuild page reads at once, at most (two queries each).
WAITING_ROUND_MAX = 8
# In ``counters``: every approval document carries ``idBucket`` (one-time backfill done).
ID_BUCKET_MARKER = {"_id": "schema:idBucket"}
BACKFILL_AT_ONCE = 16
# Writes one migration step retries when other writers keep moving the document on.
MIGRATION_ATTEMPTS = 20


def lease_owner() -> str:
    """A token naming one taking of the relay lease (see the module docstring)."""
    return uuid.uuid4().hex


class BackfillUnderWay(Exception):
    """Older documents are still getting their ``idBucket``: no rebuild page yet."""


def id_bucket(request_id: int) -> int:
    """The ``idBucket`` stored with request ``request_id``."""
    return request_id // WAITING_BUCKET


def revision_of(doc: Mapping[str, Any]) -> int:
    """Documents stored before revisions existed are at revision 0."""
    return int(doc.get("revision") or 0)


def transition_id(document_id: Any, revision: int) -> str:
    """The claim key of the transition that brings document ``document_id`` to ``revision``.
    The document's ``_id``, not its ``requestId``: a request deleted and created again under
    its id (test provider states) starts a history of its own."""
    return f"{document_id}/{revision}"


def _at_revision(revision: int) -> dict[str, Any]:
    # ``None`` matches a document written before revisions existed.
    return {"revision": revision} if revision else {"revision": {"$in": [0, None]}}


def _encode_update(update: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """An update as a list of ``{op, path, value}``: stored field names may hold neither a
    leading ``$`` nor a dot on every server (nor may arrays nest, on FerretDB). A
    ``$push`` of ``{"$each": [...]}`` is stored as its list, marked ``each``."""
    rows = []
    for op, fields in update.items():
        for path, value in fields.items():
            if isinstance(value, Mapping) and "$each" in value:
                rows.append({"op": op, "path": path, "value": value["$each"], "each": True})
            else:
                rows.append({"op": op, "path": path, "value": value})
    return rows


def _decode_update(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    update: dict[str, dict[str, Any]] = {}
    for row in rows:
        value = {"$each": row["value"]} if row.get("each") else row["value"]
        update.setdefault(row["op"], {})[row["path"]] = value
    return update


@dataclass
class _Turn:
    """Writers of one document in this process, one at a time (see ``_turn``)."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0


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
        roll_forward_after: timedelta = DEFAULT_ROLL_FORWARD_AFTER,
    ) -> None:
        self.approvals: AsyncCollection[Document] = database["approvals"]
        self.counters: AsyncCollection[Document] = database["counters"]
        self.transitions: AsyncCollection[Document] = database["transitions"]
        self.relay_lease = relay_lease
        self.roll_forward_after = roll_forward_after
        self._counter_lock = asyncio.Lock()
        self._ids: deque[int] = deque()
        self._buckets_lock = asyncio.Lock()
        self._buckets_done = False
        self._recent: LRUCache[int, Document] = LRUCache(maxsize=recent_documents)
        self._turns: dict[int, _Turn] = {}

    async def ensure_indexes(self) -> None:
        await self.approvals.create_index("requestId", unique=True, name="uq_request_id")
        await self.approvals.create_index("requesterId", name="ix_requester")
        await self.approvals.create_index("approverIds", name="ix_approvers")
        await self.approvals.create_index("finalStatus", name="ix_final_status")
        await self.approvals.create_index("outboxOpen", name="ix_outbox_open")
        await self.approvals.create_index("idBucket", name="ix_id_bucket")
        # The claim key is the transitions' ``_id``, unique on every server; this one serves
        # reading a request's history.
        await self.transitions.create_index("requestId", name="ix_request_id")
        await self._mark_open_outboxes()

    # -- transitions -------------------------------------------------------------------

    async def _claim(self, doc: Document, update: dict[str, Any]) -> dict[str, Any] | None:
        """Claim the transition of ``doc`` (as judged, at its revision) to the next revision;
        the update to store, which sets that revision, or ``None`` when another writer
        claimed it first (after waiting for its rewrite to land, or rolling it forward if its
        writer is gone): read again and judge again."""
        revision = revision_of(doc)
        update = {**update, "$set": {**update.get("$set", {}), "revision": revision + 1}}
        try:
            await self.transitions.insert_one(
                {
                    "_id": transition_id(doc["_id"], revision + 1),
                    "requestId": doc["requestId"],
                    "revision": revision + 1,
                    "claimedAt": datetime.now(UTC),
                    "update": _encode_update(update),
                }
            )
        except DuplicateKeyError:
            await self._await_transition(doc["_id"], revision)
            return None
        return update

    @asynccontextmanager
    async def _turn(self, request_id: int) -> AsyncIterator[None]:
        """This process's writers of one document take turns. Not for correctness (the
        claims give that, across processes): a decision and the relay of one process
        writing the same document at once would only collide on their claims and cost
        each other reads; in turn, the second sees from ``recent`` that its copy is behind
        (``_behind``) and goes again without a round trip."""
        turn = self._turns.setdefault(request_id, _Turn())
        turn.waiting += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.waiting -= 1
            if not turn.waiting:
                del self._turns[request_id]

    def _behind(self, doc: Document) -> bool:
        """Whether this process has since written (or read) a later revision of ``doc``."""
        known = self._recent.get(doc["requestId"])
        return (
            known is not None
            and known.get("_id") == doc["_id"]
            and revision_of(known) > revision_of(doc)
        )

    async def _write(
        self, doc: Document, update: dict[str, Any], *, also: Mapping[str, Any] | None = None
    ) -> bool:
        """Claim the next revision of ``doc`` and rewrite the stored document with
        ``update``; ``False`` when another writer got there first. ``also`` adds the
        conditions the write was judged on to the filter: what makes it atomic on MongoDB
        by itself."""
        async with self._turn(doc["requestId"]):
            if self._behind(doc):
                return False
            claimed = await self._claim(doc, update)
            if claimed is None:
                return False
            query = {"_id": doc["_id"], **_at_revision(revision_of(doc)), **(also or {})}
            result = await self.approvals.update_one(query, claimed)
            if result.matched_count == 1:
                return True
            return await self._unmatched(doc, revision_of(doc)) is not None

    async def _write_returning(
        self, doc: Document, update: dict[str, Any], *, also: Mapping[str, Any] | None = None
    ) -> Document | None:
        """``_write`` that hands back the document as written (``findAndModify``)."""
        async with self._turn(doc["requestId"]):
            if self._behind(doc):
                return None
            claimed = await self._claim(doc, update)
            if claimed is None:
                return None
            query = {"_id": doc["_id"], **_at_revision(revision_of(doc)), **(also or {})}
            written = await self.approvals.find_one_and_update(
                query, claimed, return_document=ReturnDocument.AFTER
            )
            if written is None:
                written = await self._unmatched(doc, revision_of(doc))
            if written is not None:
                self.remember(written)
            return written

    async def _unmatched(self, doc: Document, revision: int) -> Document | None:
        """After a claimed write matched nothing: the document as it stands if another
        process already applied this claim for us (it rolled it forward while we stalled
        past ``roll_forward_after``). Otherwise the conditions the write was judged on did
        not hold after all (a copy that differed from the stored document at the same
        revision): the claim is voided, so that nobody rolls it forward, and ``None``."""
        stored = await self.approvals.find_one({"_id": doc["_id"]})
        if stored is None or revision_of(stored) > revision:
            return stored
        logger.error(
            "approval %s: write judged on a copy unlike revision %d as stored; voided",
            doc["requestId"],
            revision,
        )
        self.forget(doc["requestId"])
        void = {"$set": {"revision": revision + 1}}
        await self.transitions.update_one(
            {"_id": transition_id(doc["_id"], revision + 1)},
            {"$set": {"update": _encode_update(void), "void": True}},
        )
        await self.approvals.update_one({"_id": doc["_id"], **_at_revision(revision)}, void)
        return None

    async def _await_transition(self, document_id: Any, revision: int) -> None:
        """Another writer claimed ``revision + 1`` of the document: wait until its rewrite
        has landed, or roll its transition forward once it is older than
        ``roll_forward_after`` (its writer is taken for gone)."""
        pause, longest = LANDING_PAUSES
        while True:
            doc = await self.approvals.find_one({"_id": document_id}, {"revision": 1})
            if doc is None or revision_of(doc) > revision:
                return
            claim = await self.transitions.find_one(
                {"_id": transition_id(document_id, revision + 1)}
            )
            if claim is None:
                return
            if datetime.now(UTC) - claim["claimedAt"] >= self.roll_forward_after:
                await self._roll_forward(document_id, revision, claim)
                return
            await asyncio.sleep(pause)
            pause = min(pause * 2, longest)

    async def _unapplied_claim(self, document_id: Any, revision: int) -> Document | None:
        """The claim of ``revision + 1`` if it is old enough to be taken for abandoned."""
        claim = await self.transitions.find_one({"_id": transition_id(document_id, revision + 1)})
        if claim is None or datetime.now(UTC) - claim["claimedAt"] < self.roll_forward_after:
            return None
        return claim

    async def _roll_forward(self, document_id: Any, revision: int, claim: Document) -> None:
        """Apply a claimed transition its writer never applied (it died in between).
        Applied twice by two such readers at once, it writes the same document twice."""
        await self.approvals.update_one(
            {"_id": document_id, **_at_revision(revision)}, _decode_update(claim["update"])
        )
        logger.warning(
            "approval %s: transition to revision %d claimed at %s but never applied; "
            "rolled forward",
            claim["requestId"],
            revision + 1,
            claim["claimedAt"].isoformat(),
        )
        self.forget(claim["requestId"])

    async def _migrate(self, request_id: int, sets: Mapping[str, Any]) -> None:
        """A one-time schema change of one document, as a transition like any other write."""
        for _ in range(MIGRATION_ATTEMPTS):
            doc = await self.approvals.find_one({"requestId": request_id})
            if doc is None or all(doc.get(key) == value for key, value in sets.items()):
                return
            if await self._write(doc, {"$set": dict(sets)}):
                return
        raise RuntimeError(f"approval {request_id} kept changing during a migration")

    async def _mark_open_outboxes(self) -> None:
        """Documents written before ``outboxOpen`` existed get it once (one scan, then a
        marker in ``counters`` so later start-ups skip it). One transition per document:
        the service already serves while this runs, and on FerretDB an ``update_many`` could
        rewrite a document a decision is changing (D6)."""
        marker = {"_id": "schema:outboxOpen"}
        if await self.counters.find_one(marker):
            return
        cursor = self.approvals.find(
            {"pendingEffects": {"$gt": 0}, "outboxOpen": {"$exists": False}},
            {"_id": 0, "requestId": 1},
        )
        for doc in [doc async for doc in cursor]:
            await self._migrate(doc["requestId"], {"outboxOpen": True})
        await self._mark_done(marker)

    async def _mark_done(self, marker: Mapping[str, Any]) -> None:
        """Set a one-time marker; replicas starting together may each try to insert it."""
        with contextlib.suppress(DuplicateKeyError):  # another one did: it is set
            await self.counters.update_one(marker, {"$set": {"done": True}}, upsert=True)

    async def backfill_id_buckets(self) -> int:
        """Give ``idBucket`` to documents stored before it existed; returns how many.

        Once done, a marker in ``counters`` says so and later start-ups skip the scan (the
        ``$exists`` query decodes the whole collection on FerretDB). Run at start-up; until
        it has finished, ``waiting`` serves no page (it runs it itself if nothing has yet,
        and refuses while it is under way), so no page misses a document still without its
        bucket. Each update is a transition, like every other write (D21); a few run at once
        (on FerretDB one takes ~4 ms: 10,000 documents in ~40 s one by one)."""
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
                    await asyncio.gather(
                        *(self._migrate(r, {"idBucket": id_bucket(r)}) for r in chunk)
                    )
                    filled += len(chunk)
                await self._mark_done(ID_BUCKET_MARKER)
            self._buckets_done = True
            return filled

    async def _next_request_id(self) -> int:
        """Ids come from the shared counter in blocks, so creations do not queue on one
        counter update each; the unique index still arbitrates between processes."""
        async with self._counter_lock:
            if not self._ids:
                try:
                    counter = await self._take_id_block()
                except DuplicateKeyError:
                    # Another process inserted the counter first (every first upsert tries
                    # to): it exists now, so the increment finds it.
                    counter = await self._take_id_block()
                last = int(counter["seq"])
                self._ids.extend(range(last - ID_BLOCK + 1, last + 1))
            return self._ids.popleft()

    async def _take_id_block(self) -> Document:
        counter = await self.counters.find_one_and_update(
            {"_id": "approvals"},
            {"$inc": {"seq": ID_BLOCK}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert counter is not None  # upsert with AFTER always returns the document
        return counter

    def drop_id_block(self) -> None:
        """Forget the ids taken from the counter but not used (test-mode state hooks, and a
        block another process was handed too)."""
        self._ids.clear()

    async def insert_new(
        self, build: Callable[[int], Document], *, now: datetime, attempts: int = 20
    ) -> StoredWrite:
        """Store ``build(request_id)`` under a fresh id, with its ``idBucket``; the effects in
        its ``outbox`` come with the relay lease taken. The unique index is the arbiter: an
        id already taken means another process was handed the same block (FerretDB's
        ``$inc`` is not atomic), so the rest of the block goes too and a new one is taken."""
        for _ in range(attempts):
            stored = await self.insert_as(build(await self.next_request_id()), now=now)
            if stored is not None:
                return stored
        raise RuntimeError("could not allocate a requestId")

    async def next_request_id(self) -> int:
        """An id for a request to be stored with ``insert_as``, for a caller that must use
        it before storing (a LEAVE request reserves its days under it)."""
        return await self._next_request_id()

    async def insert_as(self, doc: Document, *, now: datetime) -> StoredWrite | None:
        """``insert_new`` for a document built under an id from ``next_request_id``;
        ``None`` when the id turned out to be taken, and the rest of its block dropped."""
        request_id = doc["requestId"]
        effects = doc.setdefault("outbox", {})
        doc |= {
            "idBucket": id_bucket(request_id),
            "revision": 0,
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
            self.drop_id_block()
            return None
        self.remember(doc)
        return StoredWrite(request_id, doc if effects else None)

    def recent(self, request_id: int) -> Document | None:
        """What this process last wrote of request ``request_id`` (``DECISION_FIELDS``), if
        it still remembers: a copy that may be behind the stored document, when another
        replica or a test changed it since. Judging on it is safe: the write it leads to
        claims the revision after the copy's, which collides if the document moved on, and a
        refusal or a replay judged on it is judged again on the stored document. Saves a
        decision its read (two of a two-step flow's commands)."""
        return self._recent.get(request_id)

    def remember(self, doc: Document) -> None:
        self._recent[doc["requestId"]] = {key: doc[key] for key in DECISION_FIELDS if key in doc}

    def _remember_after(self, doc: Document, sets: Mapping[str, Any]) -> None:
        """Remember ``doc`` as a write of top-level ``sets`` at its revision left it."""
        self.remember({**doc, **sets, "revision": revision_of(doc) + 1})

    def later_than(self, doc: Document) -> Document | None:
        """What this process knows of ``doc``'s request that is later than ``doc`` (a write
        of this process went first), else ``None`` (forgotten: read the stored document)."""
        if self._behind(doc):
            return self._recent.get(doc["requestId"])
        self.forget(doc["requestId"])
        return None

    def forget(self, request_id: int) -> None:
        self._recent.pop(request_id, None)

    async def get(self, request_id: int, *, public: bool = False) -> Document | None:
        """The stored document. Reading an open request for the public also finishes a
        transition claimed for it and never applied (its writer died in between): the
        reader would otherwise see the request as it was before a decision already taken."""
        if not public:
            return await self.approvals.find_one({"requestId": request_id})
        doc = await self.approvals.find_one(
            {"requestId": request_id}, {**PUBLIC_FIELDS, "_id": 1, "revision": 1}
        )
        if doc is None or doc["finalStatus"] not in OPEN_STATUSES:
            return _public(doc)
        claim = await self._unapplied_claim(doc["_id"], revision_of(doc))
        if claim is None:
            return _public(doc)
        await self._roll_forward(doc["_id"], revision_of(doc), claim)
        return await self.approvals.find_one({"requestId": request_id}, PUBLIC_FIELDS)

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
        doc: Document,
        index: int | None,
        changes: Mapping[str, Any],
        effects: Mapping[str, Document],
        now: datetime,
        history: Sequence[Document] = (),
        after: Document | None = None,
        relay_holds: Callable[[int], bool] | None = None,
    ) -> StoredWrite | None:
        """Apply a decision judged on ``doc`` if nobody changed the document since (``None``
        otherwise: read again and judge again). With effects, the same write takes the relay
        lease if ``doc`` shows it free. Else, when ``relay_holds(request_id)`` says a relay of
        this process holds it, the write hands the document as written back for that relay.
        Both are judged on ``doc``, which the claim proves current: a relay that gave the
        lease back just before is seen to have done so, whatever it still believes.
        ``history`` is appended to the document's ``history`` by the same write. ``index``
        is the step the change was judged to find pending (``None``: a change that needs
        no pending step, such as cancelling an approved leave).
        ``after`` is ``doc`` as the decision leaves it (remembered for the next decision when
        the write hands nothing back)."""
        request_id, version = doc["requestId"], doc["version"]
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
        if history:
            update["$push"] = {"history": {"$each": list(history)}}
        also: dict[str, Any] = {"version": version}
        if index is not None:
            also[f"steps.{index}.status"] = "pending"
        if effects:
            sets["outboxOpen"] = True
            update["$min"] = {"effectsDueAt": now}
        if effects and doc.get("relayLeaseUntil", NEVER) < now:
            sets |= {"relayLeaseUntil": now + self.relay_lease, "relayLeaseOwner": lease_owner()}
            also["relayLeaseUntil"] = {"$lt": now}
            leased = await self._write_returning(doc, update, also=also)
            return None if leased is None else StoredWrite(request_id, leased)
        if effects and relay_holds is not None and relay_holds(request_id):
            # The holder goes on with more to deliver: its lease starts again from now.
            sets["relayLeaseUntil"] = now + self.relay_lease
            written = await self._write_returning(doc, update, also=also)
            return None if written is None else StoredWrite(request_id, None, written)
        if not await self._write(doc, update, also=also):
            return None
        if after is None:
            self.forget(request_id)
        else:
            self._remember_after(after, {})
        return StoredWrite(request_id, None)

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
        the document handed back names the taking (``relayLeaseOwner``). ``None`` when the
        lease is not free (or another writer moved the document on meanwhile: the poller
        comes back to it)."""
        doc = await self.approvals.find_one({"requestId": request_id})
        if doc is None or doc.get("relayLeaseUntil", NEVER) >= now:
            return None
        return await self._write_returning(
            doc,
            {"$set": {"relayLeaseUntil": now + self.relay_lease, "relayLeaseOwner": lease_owner()}},
            also={"relayLeaseUntil": {"$lt": now}},
        )

    async def settle(
        self,
        *,
        doc: Document,
        owner: str,
        delivered: Sequence[str],
        retries: Mapping[str, Document],
        follow_ups: Mapping[str, Document],
        release: tuple[int, datetime],
    ) -> bool:
        """Record a delivery round and give the lease back, ``release=(outbox_version,
        next_due)``, but only if ``doc``, the relay's copy, is still the stored document
        (so ``owner`` still holds the lease and no effect was added since that version);
        else nothing is written: the caller records the round with ``record_round`` and goes
        again."""
        version, next_due = release
        if doc.get("relayLeaseOwner") != owner or doc.get("outboxVersion", 0) != version:
            return False
        sets = {
            "effectsDueAt": next_due,
            "relayLeaseUntil": NEVER,
            "outboxOpen": next_due != FAR_FUTURE,
        }
        update = self._round(delivered, retries, follow_ups, dict(sets))
        also = {"outboxVersion": version, "relayLeaseOwner": owner}
        if not await self._write(doc, update, also=also):
            return False
        if follow_ups:
            self.forget(doc["requestId"])
        else:
            self._remember_after(doc, sets)
        return True

    async def record_round(
        self,
        *,
        doc: Document,
        owner: str,
        delivered: Sequence[str],
        retries: Mapping[str, Document],
        follow_ups: Mapping[str, Document],
        now: datetime,
    ) -> Document | None:
        """Record a delivery round, keeping the lease (renewed from ``now``: a document with
        effects coming one after another can keep a relay busy for longer than one lease),
        and hand back the document as written for the next round. ``doc`` is the relay's
        copy; when another writer moved the document on since, it is read again. ``None``,
        and nothing written, when ``owner`` no longer holds the lease."""
        update = self._round(
            delivered, retries, follow_ups, {"relayLeaseUntil": now + self.relay_lease}
        )
        current: Document | None = doc
        for _ in range(MIGRATION_ATTEMPTS):
            if current is None or current.get("relayLeaseOwner") != owner:
                return None
            written = await self._write_returning(current, update, also={"relayLeaseOwner": owner})
            if written is not None:
                return written
            current = await self.approvals.find_one({"_id": doc["_id"]})
        raise RuntimeError(f"approval {doc['requestId']} kept changing under its relay")

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


def _public(doc: Document | None) -> Document | None:
    if doc is not None:
        doc.pop("_id", None)
        doc.pop("revision", None)
    return doc
