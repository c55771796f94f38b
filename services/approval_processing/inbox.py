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
        # (approverId, requestId) of items withdrawn while they waited: the approver's
        # decision on one is told why it is gone (409), not that it was never there.
        self._withdrawn: OrderedDict[tuple[int, int], None] = OrderedDict()
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

    def was_withdrawn(self, approver_id: int, request_id: int) -> bool:
        """Whether the request was withdrawn while waiting for this approver (as far as this
        process remembers)."""
        return (approver_id, request_id) in self._withdrawn

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
        self._refuse(item.requestId, item.step)
        if self._by_request.get(item.requestId) is item:
            self._drop(item)

    def withdraw(self, request_id: int, step: int, approver_id: int) -> bool:
        """The request was withdrawn while ``step`` waited: drop the item if held, and refuse
        that step from now on (a rebuild or a parked hand-off bringing it back is stale).
        Whether an item was held."""
        self._withdrawn[(approver_id, request_id)] = None
        while len(self._withdrawn) > self._remember:
            self._withdrawn.popitem(last=False)
        held = self._by_request.get(request_id)
        if held is not None and held.step == step:
            self.complete(held)
            return True
        self._refuse(request_id, step)
        return False

    def _refuse(self, request_id: int, step: int) -> None:
        self._decided[(request_id, step)] = None
        while len(self._decided) > self._remember:
            self._decided.popitem(last=False)

    def _drop(self, item: WorkItem) -> None:
        del self._by_request[item.requestId]
        queue = self._by_approver[item.approverId]
        del queue[item.requestId]
        if not queue:
            del self._by_approver[item.approverId]
        INBOX_ITEMS.set(len(self._by_request))
