"""The waiting work the inbox bench loads: open approval documents of the exact shape
approval-request-service stores (built by its own `service.create`, then settled as the
outbox relay leaves them), written to MongoDB in batches, or served from memory as the
request service's `/approvals/internal/waiting` pages would be."""

from __future__ import annotations

import asyncio
import bisect
import copy
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from services.approval_request import service
from services.approval_request.repository import FAR_FUTURE, NEVER, StoredWrite, id_bucket
from services.approval_request.schemas import ApprovalCreate

Document = dict[str, Any]
BATCH = 1000


def created_document(steps: int) -> Document:
    """The document approval-request-service stores for a new request of `steps` steps."""
    stored: Document = {}

    class Capture:
        """Stands in for ApprovalRepository's write path (either of its shapes so far)."""

        async def insert_new(self, build: Callable[[int], Document], **_: Any) -> StoredWrite:
            stored.update(build(1))
            return StoredWrite(1, None)

        async def next_request_id(self) -> int:
            return 1

        async def insert(self, doc: Document) -> None:
            stored.update(doc)

    async def nobody_missing(ids: object) -> list[int]:
        return []

    body = ApprovalCreate.model_validate(
        {
            "requesterId": 1,
            "title": "template",
            "content": "",
            "steps": [{"step": n, "approverId": n + 1} for n in range(1, steps + 1)],
        }
    )
    create = service.create(repository=Capture(), find_missing=nobody_missing, body=body)  # type: ignore[arg-type]
    asyncio.run(create)
    return stored


def settled(doc: Document) -> Document:
    """`doc` once the outbox relay has delivered its hand-off (nothing left to send)."""
    return {
        **doc,
        "outbox": {},
        "pendingEffects": 0,
        "outboxVersion": 2,
        "outboxOpen": False,
        "effectsDueAt": FAR_FUTURE,
        "relayLeaseUntil": NEVER,
    }


def documents(count: int, approvers: int) -> Iterator[Document]:
    """`count` open requests with ids 1..count: one to three steps, a third of the longer
    ones already past step 1; approvers drawn from ids 2..approvers+1. Each carries the
    `idBucket` that `ApprovalRepository.insert_new` adds to what `service.create` builds."""
    templates = {steps: settled(created_document(steps)) for steps in (1, 2, 3)}
    rng = random.Random(6)
    started = datetime.now(UTC) - timedelta(days=1)
    for n in range(1, count + 1):
        steps = rng.randint(1, 3)
        doc = copy.deepcopy(templates[steps])
        chain = rng.sample(range(2, approvers + 2), steps)
        created = started + timedelta(milliseconds=n)
        doc.update(
            requestId=n,
            idBucket=id_bucket(n),
            requesterId=1,
            title=f"부하 시험 결재 요청 {n}",
            content="용량 시험을 위해 만든 결재 요청입니다. 내용을 확인하고 승인해 주세요.",
            createdAt=created,
            updatedAt=created,
            approverIds=sorted(chain),
        )
        for step, approver in zip(doc["steps"], chain, strict=True):
            step["approverId"] = approver
        if steps > 1 and n % 3 == 0:
            doc["steps"][0].update(status="approved", updatedAt=created)
            doc.update(finalStatus="in_progress", version=1)
        yield doc


def fill(database: Any, count: int, approvers: int) -> float:
    """Insert the documents in batches; returns the seconds it took."""
    started = time.perf_counter()
    batch: list[Document] = []
    for doc in documents(count, approvers):
        batch.append(doc)
        if len(batch) == BATCH:
            database["approvals"].insert_many(batch, ordered=False)
            batch = []
    if batch:
        database["approvals"].insert_many(batch, ordered=False)
    database["counters"].update_one({"_id": "approvals"}, {"$set": {"seq": count}}, upsert=True)
    return time.perf_counter() - started


def waiting_step(doc: Document) -> Document:
    """What `/approvals/internal/waiting` answers for an open document."""
    step = next(s for s in doc["steps"] if s["status"] == "pending")
    return {
        "requestId": doc["requestId"],
        "step": step["step"],
        "requesterId": doc["requesterId"],
        "approverId": step["approverId"],
        "title": doc["title"],
        "content": doc["content"],
    }


class WaitingSource:
    """`GET /approvals/internal/waiting` served from memory (keyset paging on
    `afterRequestId`, as the request service pages), so a run times the processing
    service alone, without the request service's database in the way."""

    def __init__(self, count: int, approvers: int) -> None:
        rows = [waiting_step(doc) for doc in documents(count, approvers)]
        self._rows = rows
        self._ids = [row["requestId"] for row in rows]
        source = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if parts.path != "/approvals/internal/waiting":
                    self.send_error(404)
                    return
                query = parse_qs(parts.query)
                body = orjson.dumps(
                    source.page(
                        int(query.get("afterRequestId", ["0"])[0]),
                        int(query.get("limit", ["1000"])[0]),
                    )
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def page(self, after: int, limit: int) -> list[Document]:
        start = bisect.bisect_right(self._ids, after)
        return self._rows[start : start + limit]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
