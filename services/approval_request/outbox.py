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

from opentelemetry import context

from services.approval_request.metrics import OUTBOX_DELIVERIES, OUTBOX_PENDING
from services.approval_request.repository import FAR_FUTURE, ApprovalRepository, StoredWrite
from services.approval_request.workflow import Effect
from services.common import current_traceparent
from services.common.telemetry import traceparent_context, with_call_attributes

logger = logging.getLogger(__name__)

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


@dataclass
class _Held:
    """What a relay holding a request's lease learns from writes of this process."""

    stored_meanwhile: bool = False  # effects were stored; read the document again
    newer: Record | None = None  # ... and here it is, as that write left it


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
        # Requests this relay holds the lease of, with what ``kick`` told about each.
        self._holding: dict[int, _Held] = {}

    def holds(self, request_id: int) -> bool:
        """Whether this relay is delivering request ``request_id``'s outbox right now: a
        write that stores effects for it need not try for the lease (``apply``)."""
        return request_id in self._holding

    def start(self) -> None:
        self._poller = asyncio.create_task(self._poll_forever(), name="outbox-poller")

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._poller] if self._poller else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def kick(self, stored: StoredWrite) -> None:
        """Deliver now what a request just stored; the poller is the safety net. When the
        write took the lease itself, deliver from the document it returned; when this relay
        holds the lease, tell it to go round again rather than claim (the claim would fail
        and the holder would learn only when giving the lease back failed)."""
        held = self._holding.get(stored.request_id)
        if stored.leased is None and held is not None:
            if stored.written is not None:
                held.newer = stored.written
            else:
                held.stored_meanwhile = True
            return
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
            held = self._holding[request_id] = _Held()
            try:
                await self._deliver_rounds(request_id, doc, held, owner=doc["relayLeaseOwner"])
            finally:
                # Only ours: after a lease that ran out, another drain may hold it now.
                if self._holding.get(request_id) is held:
                    del self._holding[request_id]
            if not (held.stored_meanwhile or held.newer):
                return
            # Effects were stored just as the lease was given back: take it again.
            doc = await self.repository.claim(request_id=request_id, now=datetime.now(UTC))

    async def _deliver_rounds(
        self, request_id: int, doc: Record | None, held: _Held, *, owner: str
    ) -> None:
        """Deliver what is due, round after round, until a round gives the lease back, or
        until a write finds that the lease taken as ``owner`` ran out and another relay took
        it (that relay delivers what is left; what this one did is delivered again: at least
        once, as always).

        A write of this process that stores effects meanwhile hands its document over
        (``kick``): the next round starts from it, and what earlier rounds did is recorded
        with the last one, in the write that gives the lease back. Until then a crash
        repeats those deliveries, as it would repeat any round's: at least once, as
        always. Follow-ups are recorded before they are delivered."""
        done = _Round([], {}, {})  # delivered, retried: not recorded yet
        while doc is not None:
            outbox: dict[str, Record] = doc.get("outbox") or {}
            now = datetime.now(UTC)
            due = sorted(
                (
                    (key, entry)
                    for key, entry in outbox.items()
                    if entry["dueAt"] <= now
                    and not entry.get("failed")
                    and key not in done.retries
                    and key not in done.delivered
                ),
                key=lambda item: (item[1]["createdAt"], item[1]["order"]),
            )
            for key, entry in due:
                await self._deliver(doc, key, entry, done)
            if not done.follow_ups:
                if (newer := self._newer(held, doc)) is not None:
                    doc = newer
                    continue
                if not held.stored_meanwhile:
                    later = [
                        done.retries.get(key, entry)["dueAt"]
                        for key, entry in outbox.items()
                        if key not in done.delivered and not entry.get("failed")
                    ]
                    release = (doc.get("outboxVersion", 0), min(later, default=FAR_FUTURE))
                    if await self.repository.settle(
                        doc=doc, owner=owner, release=release, **vars(done)
                    ):
                        return
                    if (newer := self._newer(held, doc)) is not None:
                        doc = newer
                        continue
            # Effects were added (by this round, or by a write we have no document of):
            # record what was done and go again on the document as written.
            held.stored_meanwhile, held.newer = False, None
            doc = await self.repository.record_round(
                doc=doc, owner=owner, now=datetime.now(UTC), **vars(done)
            )
            done = _Round([], {}, {})

    @staticmethod
    def _newer(held: _Held, doc: Record) -> Record | None:
        """The document a write handed over, if it is newer than ``doc``: every write that
        stores effects raises ``outboxVersion``."""
        newer, held.newer = held.newer, None
        if newer is None or newer.get("outboxVersion", 0) <= doc.get("outboxVersion", 0):
            return None
        return newer

    async def _deliver(self, doc: Record, key: str, entry: Record, outcome: _Round) -> None:
        """One delivery, in the trace of the request that stored it: the span of its call
        (the HTTP client span, or the AMQP publish) is the delivery's span, a child of that
        request's, labelled with the effect and the attempt. A span of its own around that
        one call would add nothing but cost (an eighth of a flow's spans)."""
        kind = entry["kind"]
        attributes = {
            "erp.request_id": doc["requestId"],
            "erp.effect": kind,
            "erp.attempt": entry["attempts"] + 1,
        }
        parent = traceparent_context(entry.get("traceparent"))
        token = context.attach(with_call_attributes(parent, attributes))
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
        else:
            OUTBOX_DELIVERIES.labels(kind, "delivered").inc()
            outcome.delivered.append(key)
            if follow_ups:  # stored in the delivery's trace, while its context is current
                outcome.follow_ups.update(stored_effects(follow_ups, now=datetime.now(UTC)))
        finally:
            context.detach(token)
