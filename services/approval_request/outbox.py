"""The outbox relay: delivers the side effects stored inside approval documents.

A state change writes its messages into the document in the same update; this relay hands
them to RabbitMQ, notification-service and employee-service, retrying with backoff and
removing each only once it succeeded. A crash or a peer that is down delays, never loses."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import trace

from services.approval_request.metrics import OUTBOX_DELIVERIES, OUTBOX_PENDING
from services.approval_request.repository import FAR_FUTURE, ApprovalRepository, StoredWrite
from services.approval_request.workflow import Effect
from services.common import current_traceparent, extract_context

logger = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

Record = dict[str, Any]
# Delivers one effect; may return follow-up effects (a recorded leave implies a notification).
Deliver = Callable[[dict[str, Any], Record], Awaitable[list[Effect]]]


class PermanentFailure(Exception):
    """The peer refused the effect itself; retrying cannot help. It is parked, not dropped."""


def stored_effects(effects: list[Effect], *, now: datetime) -> dict[str, Record]:
    """Outbox entries for ``effects``, each remembering the trace that produced it."""
    traceparent = current_traceparent()
    return {
        uuid.uuid4().hex[:16]: {
            "kind": effect.kind,
            "payload": effect.payload,
            "traceparent": traceparent,
            "attempts": 0,
            "dueAt": now,
            "createdAt": now,
            "order": order,
        }
        for order, effect in enumerate(effects)
    }


@dataclass
class _Round:
    delivered: list[str]
    retries: dict[str, Record]
    follow_ups: dict[str, Record]


class OutboxRelay:
    def __init__(
        self,
        repository: ApprovalRepository,
        deliverers: Mapping[str, Deliver],
        *,
        poll_seconds: float,
        max_backoff_seconds: float,
        batch: int,
    ) -> None:
        self.repository = repository
        self.deliverers = deliverers
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff_seconds
        self.batch = batch
        self._tasks: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._poller = asyncio.create_task(self._poll_forever(), name="outbox-poller")

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._poller] if self._poller else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def kick(self, stored: StoredWrite) -> None:
        """Deliver now what a request just stored; the poller is the safety net. When the
        write took the lease itself, deliver from the document it returned."""
        task = asyncio.create_task(self.drain(stored.request_id, leased=stored.leased))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll_forever(self) -> None:
        while True:
            try:
                now = datetime.now(UTC)
                due = await self.repository.due_for_delivery(now=now, limit=self.batch)
                await asyncio.gather(*(self.drain(request_id) for request_id in due))
                OUTBOX_PENDING.set(await self.repository.count_open_outboxes())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("outbox poll failed; retrying")
            await asyncio.sleep(self.poll_seconds)

    async def drain(self, request_id: int, *, leased: Record | None = None) -> None:
        try:
            await self._drain(request_id, leased)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease expires and the poller takes the document up again.
            logger.exception("outbox drain of request %s failed", request_id)

    async def _drain(self, request_id: int, leased: Record | None) -> None:
        doc = leased or await self.repository.claim(request_id=request_id, now=datetime.now(UTC))
        while doc is not None:
            outbox: dict[str, Record] = doc.get("outbox") or {}
            now = datetime.now(UTC)
            due = sorted(
                (
                    (key, entry)
                    for key, entry in outbox.items()
                    if entry["dueAt"] <= now and not entry.get("failed")
                ),
                key=lambda item: (item[1]["createdAt"], item[1]["order"]),
            )
            outcome = _Round([], {}, {})
            for key, entry in due:
                await self._deliver(doc, key, entry, outcome)
            if outcome.follow_ups:
                await self.repository.settle(request_id=request_id, **vars(outcome))
                doc = await self.repository.reload_outbox(request_id)
                continue
            later = [
                outcome.retries.get(key, entry)["dueAt"]
                for key, entry in outbox.items()
                if key not in outcome.delivered and not entry.get("failed")
            ]
            release = (doc.get("outboxVersion", 0), min(later, default=FAR_FUTURE))
            if await self.repository.settle(
                request_id=request_id, release=release, **vars(outcome)
            ):
                return
            # Effects were added while we delivered: record this round, then go again.
            await self.repository.settle(request_id=request_id, **vars(outcome))
            doc = await self.repository.reload_outbox(request_id)

    async def _deliver(self, doc: Record, key: str, entry: Record, outcome: _Round) -> None:
        kind = entry["kind"]
        parent = extract_context({"traceparent": entry.get("traceparent")})
        attributes = {
            "erp.request_id": doc["requestId"],
            "erp.effect": kind,
            "erp.attempt": entry["attempts"] + 1,
        }
        with tracer.start_as_current_span(
            f"outbox deliver {kind}", context=parent, attributes=attributes
        ):
            try:
                follow_ups = await self.deliverers[kind](entry["payload"], doc)
            except PermanentFailure as exc:
                logger.error(
                    "outbox effect %s of request %s refused, parked: %s",
                    kind,
                    doc["requestId"],
                    exc,
                )
                OUTBOX_DELIVERIES.labels(kind, "failed").inc()
                outcome.retries[key] = {
                    "failed": True,
                    "dueAt": FAR_FUTURE,
                    "lastError": str(exc)[:500],
                }
                return
            except Exception as exc:
                attempts = entry["attempts"] + 1
                delay = min(self.max_backoff, 0.25 * 2**attempts) * random.uniform(0.8, 1.2)
                logger.warning(
                    "outbox effect %s of request %s failed (attempt %d), retry in %.1fs: %s",
                    kind,
                    doc["requestId"],
                    attempts,
                    delay,
                    exc,
                )
                OUTBOX_DELIVERIES.labels(kind, "retry").inc()
                outcome.retries[key] = {
                    "attempts": attempts,
                    "lastError": str(exc)[:500],
                    "dueAt": datetime.now(UTC) + timedelta(seconds=delay),
                }
                return
            OUTBOX_DELIVERIES.labels(kind, "delivered").inc()
            outcome.delivered.append(key)
            if follow_ups:
                outcome.follow_ups.update(stored_effects(follow_ups, now=datetime.now(UTC)))
