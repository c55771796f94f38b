"""The outbox's relay lease, on the real MongoDB-compatible server: a write that stores side
effects takes the lease itself when it is free, so its writer delivers without claiming;
effects stored while another relay holds the lease reach that relay's next round; the
poller finds work by ``outboxOpen`` alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.approval_request.outbox import Deliver, OutboxRelay, _Held, stored_effects
from services.approval_request.repository import NEVER, ApprovalRepository
from services.approval_request.workflow import Effect
from tests.support.mongo import CountedDatabase, counted_database
from tests.support.stack import Stack

LEASE = timedelta(seconds=30)


@pytest.fixture
async def counted(stack: Stack) -> AsyncIterator[CountedDatabase]:
    async with counted_database("leases") as counted:
        yield counted


@pytest.fixture
async def repository(counted: CountedDatabase) -> ApprovalRepository:
    repository = ApprovalRepository(counted.database, relay_lease=LEASE)
    await repository.ensure_indexes()
    return repository


def two_steps(request_id: int) -> dict[str, Any]:
    return {
        "requestId": request_id,
        "steps": [
            {"step": 1, "approverId": 2, "status": "pending"},
            {"step": 2, "approverId": 3, "status": "pending"},
        ],
        "finalStatus": "pending",
        "version": 0,
        "title": "t",
    }


async def create(repository: ApprovalRepository, now: datetime) -> int:
    def build(request_id: int) -> dict[str, Any]:
        return {**two_steps(request_id), "outbox": stored_effects([Effect("handoff", {})], now=now)}

    stored = await repository.insert_new(build, now=now)
    assert stored.leased is not None
    return stored.request_id


async def created_with_lease(
    repository: ApprovalRepository,
) -> tuple[datetime, int, dict[str, Any]]:
    """A new two-step request whose creation holds the relay lease: when, its id, and the
    document as the relay that holds the lease would deliver it."""
    now = datetime.now(UTC)
    request_id = await create(repository, now)
    leased = await repository.approvals.find_one({"requestId": request_id})
    assert leased is not None
    return now, request_id, leased


def relay_for(
    repository: ApprovalRepository, deliverers: dict[str, Deliver], max_backoff_seconds: int = 1
) -> OutboxRelay:
    """A relay whose poller never runs in a test: only ``drain`` delivers."""
    return OutboxRelay(
        repository,
        deliverers,
        poll_seconds=60,
        max_backoff_seconds=max_backoff_seconds,
        batch=10,
    )


async def approve_step_1(
    repository: ApprovalRepository,
    request_id: int,
    now: datetime,
    *,
    relay: OutboxRelay | None = None,
    doc: dict[str, Any] | None = None,
) -> Any:
    """Step 1 approved, judged on ``doc`` (read from the store when not given)."""
    doc = doc or await repository.approvals.find_one({"requestId": request_id})
    assert doc is not None
    return await repository.apply(
        relay_holds=relay.holds if relay else None,
        doc=doc,
        index=0,
        changes={"steps.0.status": "approved", "finalStatus": "in_progress"},
        effects=stored_effects([Effect("notify", {"n": 1})], now=now),
        now=now,
    )


async def test_a_creation_holds_the_lease_and_the_poller_leaves_it_alone(
    repository: ApprovalRepository,
) -> None:
    now = datetime.now(UTC)
    stored = await repository.insert_new(
        lambda rid: {**two_steps(rid), "outbox": stored_effects([Effect("handoff", {})], now=now)},
        now=now,
    )

    assert stored.leased is not None
    assert stored.leased["relayLeaseUntil"] == now + LEASE
    assert next(iter(stored.leased["outbox"].values()))["kind"] == "handoff"
    assert await repository.due_for_delivery(now=now, limit=10) == []
    assert await repository.due_for_delivery(now=now + LEASE * 2, limit=10) == [stored.request_id]
    assert await repository.count_open_outboxes() == 1


async def test_a_decision_takes_a_free_lease_and_returns_the_document_as_written(
    repository: ApprovalRepository,
) -> None:
    created = datetime.now(UTC)
    request_id = await create(repository, created)
    later = created + LEASE * 2  # the creation's lease has run out

    stored = await approve_step_1(repository, request_id, later)

    assert stored is not None
    assert stored.leased is not None
    assert stored.leased["steps"][0]["status"] == "approved"
    assert {e["kind"] for e in stored.leased["outbox"].values()} == {"handoff", "notify"}
    assert abs(stored.leased["relayLeaseUntil"] - (later + LEASE)) < timedelta(milliseconds=1)


async def test_a_decision_while_a_relay_holds_the_lease_reaches_that_relays_next_round(
    repository: ApprovalRepository,
) -> None:
    now, request_id, leased = await created_with_lease(repository)
    delivered: list[dict[str, Any]] = []

    async def deliver(payload: dict[str, Any], doc: dict[str, Any]) -> list[Effect]:
        if not delivered:  # while the first effect is being delivered, a decision lands
            stored = await approve_step_1(repository, request_id, datetime.now(UTC))
            assert stored is not None
            assert stored.leased is None
        delivered.append(payload)
        return []

    relay = relay_for(repository, {"handoff": deliver, "notify": deliver})
    await relay.drain(request_id, leased=leased)

    assert delivered == [{}, {"n": 1}]
    doc = await repository.approvals.find_one({"requestId": request_id})
    assert doc is not None
    assert doc["outbox"] == {}
    assert doc["pendingEffects"] == 0
    assert doc["outboxOpen"] is False
    assert await repository.count_open_outboxes() == 0
    assert await repository.due_for_delivery(now=now + LEASE * 2, limit=10) == []


async def test_effects_stored_while_this_relay_delivers_join_its_next_round_without_a_read(
    repository: ApprovalRepository, counted: CountedDatabase
) -> None:
    now, request_id, leased = await created_with_lease(repository)
    delivered: list[dict[str, Any]] = []

    async def deliver(payload: dict[str, Any], doc: dict[str, Any]) -> list[Effect]:
        if not delivered:  # a decision lands in this process while its relay delivers
            assert relay.holds(request_id)
            counted.commands.names.clear()
            stored = await approve_step_1(
                repository, request_id, datetime.now(UTC), relay=relay, doc=leased
            )
            assert stored is not None
            assert stored.leased is None
            assert stored.written is not None
            assert stored.written["relayLeaseUntil"] > now + LEASE  # renewed for the holder
            relay.kick(stored)
        delivered.append(payload)
        return []

    relay = relay_for(repository, {"handoff": deliver, "notify": deliver})
    await relay.drain(request_id, leased=leased)

    assert delivered == [{}, {"n": 1}]
    assert not relay._tasks  # the kick started no drain of its own: no claim will follow
    # The decision's write, which hands the document over instead of trying for the lease,
    # and one write recording both rounds as it gives the lease back, each with the claim
    # of its revision: no lease claim, no read.
    assert counted.commands.names == ["insert", "findAndModify", "insert", "update"]
    assert not relay.holds(request_id)
    doc = await repository.approvals.find_one({"requestId": request_id})
    assert doc is not None
    assert (doc["outbox"], doc["pendingEffects"], doc["outboxOpen"]) == ({}, 0, False)
    assert doc["relayLeaseUntil"] == NEVER


async def test_an_effect_that_failed_before_a_handover_waits_for_its_retry_and_keeps_it(
    repository: ApprovalRepository,
) -> None:
    now, request_id, leased = await created_with_lease(repository)
    attempts: list[str] = []

    async def handoff(payload: dict[str, Any], doc: dict[str, Any]) -> list[Effect]:
        attempts.append("handoff")
        stored = await approve_step_1(repository, request_id, datetime.now(UTC), relay=relay)
        relay.kick(stored)
        raise ConnectionError("broker away")

    async def notify(payload: dict[str, Any], doc: dict[str, Any]) -> list[Effect]:
        attempts.append("notify")
        return []

    relay = relay_for(repository, {"handoff": handoff, "notify": notify}, max_backoff_seconds=60)
    await relay.drain(request_id, leased=leased)

    assert attempts == ["handoff", "notify"]  # the handed-over document's copy is not retried
    doc = await repository.approvals.find_one({"requestId": request_id})
    assert doc is not None
    [(kind, entry)] = [(e["kind"], e) for e in doc["outbox"].values()]
    assert (kind, entry["attempts"], entry["lastError"]) == ("handoff", 1, "broker away")
    assert entry["dueAt"] > now
    assert (doc["pendingEffects"], doc["outboxOpen"]) == (1, True)
    assert abs(doc["effectsDueAt"] - entry["dueAt"]) < timedelta(milliseconds=1)
    assert doc["relayLeaseUntil"] == NEVER


async def test_a_decision_written_after_the_relay_gave_the_lease_back_takes_the_lease_itself(
    repository: ApprovalRepository,
) -> None:
    _, request_id, leased = await created_with_lease(repository)
    relay = relay_for(repository, {"handoff": nothing})
    decisions: list[Any] = []
    settle = repository.settle

    async def settle_then_a_decision_arrives(**round: Any) -> bool:
        # The relay has given the lease back and still counts itself as holding it: the
        # decision is judged on the stored document, which shows the lease free.
        settled = await settle(**round)
        assert relay.holds(request_id)
        decisions.append(
            await approve_step_1(repository, request_id, datetime.now(UTC), relay=relay)
        )
        return settled

    repository.settle = settle_then_a_decision_arrives  # type: ignore[method-assign]
    await relay.drain(request_id, leased=leased)
    [stored] = decisions

    assert not relay.holds(request_id)
    assert stored.leased is not None  # nobody else would deliver it now
    assert stored.written is None


async def nothing(payload: dict[str, Any], doc: dict[str, Any]) -> list[Effect]:
    return []


async def test_a_recorded_round_renews_the_lease_it_keeps(repository: ApprovalRepository) -> None:
    created = datetime.now(UTC)
    request_id = await create(repository, created)
    later = created + LEASE / 2

    stored = await repository.approvals.find_one({"requestId": request_id})
    assert stored is not None
    doc = await repository.record_round(
        doc=stored,
        owner=stored["relayLeaseOwner"],
        delivered=[],
        retries={},
        follow_ups={},
        now=later,
    )

    assert doc is not None
    assert abs(doc["relayLeaseUntil"] - (later + LEASE)) < timedelta(milliseconds=1)
    assert await repository.due_for_delivery(now=created + LEASE * 1.2, limit=10) == []


def test_a_handed_over_document_older_than_the_one_in_hand_is_ignored() -> None:
    held = _Held(newer={"outboxVersion": 3})

    assert OutboxRelay._newer(held, {"outboxVersion": 3}) is None
    assert held.newer is None
    held.newer = {"outboxVersion": 4}
    assert OutboxRelay._newer(held, {"outboxVersion": 3}) == {"outboxVersion": 4}


async def test_documents_from_before_the_flag_are_marked_once_at_start(
    repository: ApprovalRepository,
) -> None:
    await repository.approvals.insert_one({"requestId": 99, "pendingEffects": 1})
    await repository.counters.delete_one({"_id": "schema:outboxOpen"})

    await repository.ensure_indexes()

    assert await repository.count_open_outboxes() == 1


async def lease_owner_of(repository: ApprovalRepository, request_id: int) -> str:
    doc = await repository.approvals.find_one({"requestId": request_id})
    assert doc is not None
    return str(doc["relayLeaseOwner"])


async def lease_runs_out(repository: ApprovalRepository, request_id: int) -> None:
    """Until the poller of any replica would find ``request_id`` free to claim."""
    deadline = datetime.now(UTC) + repository.relay_lease * 10
    while request_id not in await repository.due_for_delivery(now=datetime.now(UTC), limit=10):
        assert datetime.now(UTC) < deadline, "the lease never ran out"
        await asyncio.sleep(0.05)


@pytest.fixture
async def replicas(counted: CountedDatabase) -> tuple[ApprovalRepository, ApprovalRepository]:
    """Two replicas' repositories over one database, with a lease short enough to lapse."""
    short = timedelta(seconds=0.5)
    first = ApprovalRepository(counted.database, relay_lease=short)
    await first.ensure_indexes()
    return first, ApprovalRepository(counted.database, relay_lease=short)


async def test_a_relay_whose_lease_lapsed_does_not_count_down_what_its_successor_settled(
    replicas: tuple[ApprovalRepository, ApprovalRepository],
) -> None:
    first, second = replicas
    _, request_id, leased = await created_with_lease(first)
    delivered: list[str] = []

    async def slow_handoff(payload: dict[str, Any], doc: dict[str, Any]) -> list[Effect]:
        # The first relay is still delivering when its lease runs out; the second replica's
        # relay claims the document and delivers and settles it meanwhile.
        if not delivered:
            delivered.append("first")
            await lease_runs_out(first, request_id)
            await relay_for(second, {"handoff": quick_handoff}).drain(request_id)
        return []

    async def quick_handoff(payload: dict[str, Any], doc: dict[str, Any]) -> list[Effect]:
        delivered.append("second")
        return []

    await relay_for(first, {"handoff": slow_handoff}).drain(request_id, leased=leased)

    assert delivered == ["first", "second"]
    doc = await first.approvals.find_one({"requestId": request_id})
    assert doc is not None
    assert (doc["outbox"], doc["pendingEffects"], doc["outboxOpen"]) == ({}, 0, False)
    assert doc["relayLeaseUntil"] == NEVER  # the late relay did not take it again


async def test_a_relay_whose_lease_lapsed_neither_renews_nor_releases_its_successors_lease(
    replicas: tuple[ApprovalRepository, ApprovalRepository],
) -> None:
    first, second = replicas
    _, request_id, leased = await created_with_lease(first)
    taken: list[dict[str, Any]] = []

    async def slow_handoff(payload: dict[str, Any], doc: dict[str, Any]) -> list[Effect]:
        await lease_runs_out(first, request_id)
        claimed = await second.claim(request_id=request_id, now=datetime.now(UTC))
        assert claimed is not None
        taken.append(claimed)  # ... and the second replica is still delivering it
        return [Effect("notify", {"n": 1})]  # a follow-up: the first relay records a round

    await relay_for(first, {"handoff": slow_handoff}).drain(request_id, leased=leased)

    doc = await first.approvals.find_one({"requestId": request_id})
    assert doc is not None
    assert doc["relayLeaseUntil"] == taken[0]["relayLeaseUntil"]
    assert doc["outbox"] == taken[0]["outbox"]  # the successor delivers it, once
    assert (doc["pendingEffects"], doc["outboxVersion"]) == (1, taken[0]["outboxVersion"])
    assert doc["relayLeaseOwner"] == taken[0]["relayLeaseOwner"] != leased["relayLeaseOwner"]


async def test_every_taking_of_the_lease_names_a_new_owner(repository: ApprovalRepository) -> None:
    created = datetime.now(UTC)
    request_id = await create(repository, created)
    at_creation = await lease_owner_of(repository, request_id)

    by_decision = await approve_step_1(repository, request_id, created + LEASE * 2)
    assert by_decision is not None
    assert by_decision.leased is not None
    claimed = await repository.claim(request_id=request_id, now=created + LEASE * 4)
    assert claimed is not None

    owners = {at_creation, by_decision.leased["relayLeaseOwner"], claimed["relayLeaseOwner"]}
    assert len(owners) == 3
