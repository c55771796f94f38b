"""Per-approver in-memory inboxes. Not the source of truth (approval-request-service is):
after a restart they are rebuilt from it. One (requestId, step) is never held twice."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, fields
from typing import Any

from services.approval_processing.metrics import INBOX_ITEMS


@dataclass(slots=True)
class WorkItem:
    requestId: int
    step: int
    requesterId: int
    approverId: int
    title: str
    content: str
    status: str = "pending"
    # This process's telling of the approver (approval_assigned): in flight, done, or failed.
    told: asyncio.Future[bool] | None = None

    def public(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "told"}

    @property
    def untold(self) -> bool:
        """Neither told nor being told (the last attempt, if any, failed)."""
        told = self.told
        return told is None or (told.done() and (told.cancelled() or told.exception() is not None))


class Inbox:
    def __init__(self, *, remembered_decisions: int) -> None:
        self._by_approver: dict[int, dict[int, WorkItem]] = {}
        self._by_request: dict[int, WorkItem] = {}
        self._decided: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._remember = remembered_decisions
        self._in_flight: set[tuple[int, int]] = set()
        # Until the rebuild from the source of truth has finished, an inbox may lack items
        # that are waiting: it is not answered from (the API says 503) rather than shown part.
        self.rebuilt = False

    def __len__(self) -> int:
        return len(self._by_request)

    def add(self, item: WorkItem) -> WorkItem | None:
        """Hold ``item`` unless it is stale; returns the item now held for that step."""
        if (item.requestId, item.step) in self._decided:
            return None
        held = self._by_request.get(item.requestId)
        if held is not None:
            if held.step == item.step:
                return held
            if held.step > item.step:
                return None
            self._drop(held)
        self._by_request[item.requestId] = item
        self._by_approver.setdefault(item.approverId, {})[item.requestId] = item
        INBOX_ITEMS.set(len(self._by_request))
        return item

    def pending(self, approver_id: int) -> list[WorkItem]:
        """Oldest first (arrival order)."""
        return list(self._by_approver.get(approver_id, {}).values())

    def find(self, approver_id: int, request_id: int) -> WorkItem | None:
        return self._by_approver.get(approver_id, {}).get(request_id)

    def begin(self, item: WorkItem) -> bool:
        """Claim ``item`` for one decision at a time; False if one is already under way."""
        key = (item.requestId, item.step)
        if key in self._in_flight:
            return False
        self._in_flight.add(key)
        return True

    def end(self, item: WorkItem) -> None:
        self._in_flight.discard((item.requestId, item.step))

    def complete(self, item: WorkItem) -> None:
        """The step is decided (or gone upstream): remove it and refuse it from now on."""
        self._decided[(item.requestId, item.step)] = None
        while len(self._decided) > self._remember:
            self._decided.popitem(last=False)
        if self._by_request.get(item.requestId) is item:
            self._drop(item)

    def _drop(self, item: WorkItem) -> None:
        del self._by_request[item.requestId]
        queue = self._by_approver[item.approverId]
        del queue[item.requestId]
        if not queue:
            del self._by_approver[item.approverId]
        INBOX_ITEMS.set(len(self._by_request))
