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
        # requestId -> approverId -> item: one approver per request but for a moment after
        # a reassignment, when the new approver's hand-off may come before the message
        # taking the step from the former one (they travel on different partitions).
        self._by_request: dict[int, dict[int, WorkItem]] = {}
        self._held = 0
        # (requestId, step, approverId) no longer to be held: decided, withdrawn or
        # reassigned away. Keyed by approver, so a step reassigned (or lost by a former
        # approver's decision, 409) is still taken for its new approver.
        self._decided: OrderedDict[tuple[int, int, int], None] = OrderedDict()
        # (approverId, requestId) of items withdrawn or reassigned away while they waited:
        # the approver's decision on one is told why it is gone (409), not that it was
        # never there.
        self._withdrawn: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._reassigned: OrderedDict[tuple[int, int], None] = OrderedDict()
        self._remember = remembered_decisions
        self._in_flight: set[tuple[int, int, int]] = set()
        # Until the rebuild from the source of truth has finished, an inbox may lack items
        # that are waiting: it is not answered from (the API says 503) rather than shown part.
        self.rebuilt = False

    def __len__(self) -> int:
        return self._held

    def add(self, item: WorkItem) -> WorkItem | None:
        """Hold ``item`` unless it is stale; returns the item now held for that step."""
        if (item.requestId, item.step, item.approverId) in self._decided:
            return None
        held = self._by_request.get(item.requestId, {})
        if any(other.step > item.step for other in held.values()):
            return None
        mine = held.get(item.approverId)
        if mine is not None and mine.step == item.step:
            return mine
        for other in list(held.values()):
            if other.step < item.step:
                self._drop(other)
        self._by_request.setdefault(item.requestId, {})[item.approverId] = item
        self._by_approver.setdefault(item.approverId, {})[item.requestId] = item
        self._held += 1
        INBOX_ITEMS.set(self._held)
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

    def was_reassigned(self, approver_id: int, request_id: int) -> bool:
        """Whether the request's waiting step was taken from this approver and given to
        another (as far as this process remembers)."""
        return (approver_id, request_id) in self._reassigned

    def begin(self, item: WorkItem) -> bool:
        """Claim ``item`` for one decision at a time; False if one is already under way."""
        key = (item.requestId, item.step, item.approverId)
        if key in self._in_flight:
            return False
        self._in_flight.add(key)
        return True

    def end(self, item: WorkItem) -> None:
        self._in_flight.discard((item.requestId, item.step, item.approverId))

    def complete(self, item: WorkItem) -> None:
        """The step is decided (or gone upstream): remove it and refuse it from now on."""
        self._refuse(item.requestId, item.step, item.approverId)
        if self._by_request.get(item.requestId, {}).get(item.approverId) is item:
            self._drop(item)

    def withdraw(self, request_id: int, step: int, approver_id: int) -> bool:
        """The request was withdrawn while ``step`` waited: drop the item if held, and refuse
        that step from now on (a rebuild or a parked hand-off bringing it back is stale).
        Whether an item was held."""
        self._remember_gone(self._withdrawn, approver_id, request_id)
        return self._take_away(request_id, step, approver_id)

    def reassign(self, request_id: int, step: int, approver_id: int) -> bool:
        """``step`` was given to another approver: drop ``approver_id``'s item if held and
        refuse it to them from now on; the new approver's hand-off is held as any other.
        Whether an item was held."""
        self._remember_gone(self._reassigned, approver_id, request_id)
        return self._take_away(request_id, step, approver_id)

    def _take_away(self, request_id: int, step: int, approver_id: int) -> bool:
        held = self._by_request.get(request_id, {}).get(approver_id)
        if held is not None and held.step == step:
            self.complete(held)
            return True
        self._refuse(request_id, step, approver_id)
        return False

    def _remember_gone(
        self, gone: OrderedDict[tuple[int, int], None], approver_id: int, request_id: int
    ) -> None:
        gone[(approver_id, request_id)] = None
        while len(gone) > self._remember:
            gone.popitem(last=False)

    def _refuse(self, request_id: int, step: int, approver_id: int) -> None:
        self._decided[(request_id, step, approver_id)] = None
        while len(self._decided) > self._remember:
            self._decided.popitem(last=False)

    def _drop(self, item: WorkItem) -> None:
        held = self._by_request[item.requestId]
        del held[item.approverId]
        if not held:
            del self._by_request[item.requestId]
        queue = self._by_approver[item.approverId]
        del queue[item.requestId]
        if not queue:
            del self._by_approver[item.approverId]
        self._held -= 1
        INBOX_ITEMS.set(self._held)
