"""approval-processing as three real replicas on the session's broker and request service:
each approver's inbox is held by the one replica owning its partition, answered alike
through every replica (the others forward), in the request service's order; a killed
replica's approvers get 503 while it is down, and on restart it rebuilds only its share."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.apps import get_service, start_app, stop_process, wait_ready
from services.common.messaging import EXCHANGE, PARTITIONS, WORK_ROUTING_KEY, partition_of
from tests.support import factories
from tests.support.pipeline import document, eventually
from tests.support.settled import settled
from tests.support.stack import AMQP_URL, Stack, free_port

REPLICAS = 3
FORWARDED_BY = "X-Erp-Forwarded-By"


@dataclass
class Replicas:
    env: dict[str, str]
    log_dir: Path
    ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(REPLICAS)])
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.ports[index]}"

    def start(self, index: int) -> None:
        peers = ",".join(self.url(i) for i in range(REPLICAS))
        env = {
            **self.env,
            "APPROVAL_PROCESSING_REPLICAS": str(REPLICAS),
            "APPROVAL_PROCESSING_REPLICA_INDEX": str(index),
            "APPROVAL_PROCESSING_PEER_URLS": peers,
        }
        log_dir = self.log_dir / f"replica-{index}"
        log_dir.mkdir(parents=True, exist_ok=True)
        proc = start_app(
            get_service("approval_processing"),
            port=self.ports[index],
            extra_env=env,
            log_dir=log_dir,
        )
        self.procs[index] = proc
        wait_ready(self.url(index), timeout=60, proc=proc)

    def kill(self, index: int) -> None:
        """SIGKILL: no shutdown hook runs, as in a crash."""
        proc = self.procs.pop(index)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for index in list(self.procs):
            stop_process(self.procs.pop(index))


def owner(approver: int) -> int:
    return partition_of(approver) % REPLICAS


@pytest.fixture(scope="module")
def replicas(stack: Stack) -> Iterator[Replicas]:
    """Three replicas in place of the session's one, which would otherwise stay the single
    active consumer of every partition; it is started again (and rebuilds) afterwards."""
    stack.stop("approval_processing")
    running = Replicas(env=stack.env_for("approval_processing"), log_dir=stack.log_dir)
    try:
        for index in range(REPLICAS):
            running.start(index)
        yield running
    finally:
        running.stop_all()
        stack.start("approval_processing")


@pytest.fixture
async def people(client: httpx.AsyncClient, employee_url: str) -> dict[str, Any]:
    """A requester and more approvers than partitions, so every partition has one."""
    requester, *approvers = await factories.employees(client, employee_url, PARTITIONS + 3)
    assert {partition_of(a) for a in approvers} == set(range(PARTITIONS))
    return {"requester": requester, "approvers": approvers}


async def waiting_by_approver(client: httpx.AsyncClient, approvals_url: str) -> dict[int, list]:
    """The request service's waiting steps, (requestId, step) per approver in its order."""
    by_approver: dict[int, list[tuple[int, int]]] = defaultdict(list)
    after = 0
    while True:
        response = await client.get(
            f"{approvals_url}/approvals/internal/waiting",
            params={"afterRequestId": after, "limit": 5000},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        for row in page:
            by_approver[row["approverId"]].append((row["requestId"], row["step"]))
        if len(page) < 5000:
            return by_approver
        after = page[-1]["requestId"]


async def inboxes_agree(
    client: httpx.AsyncClient, replicas: Replicas, approvals_url: str, approvers: list[int]
) -> dict[int, list]:
    """Until every approver's inbox, read through every replica, is the waiting list."""
    expected = await waiting_by_approver(client, approvals_url)

    async def agree() -> bool:
        for index in replicas.procs:
            for approver in approvers:
                response = await client.get(f"{replicas.url(index)}/process/{approver}")
                if response.status_code != 200:
                    return False
                seen = [(i["requestId"], i["step"]) for i in response.json()]
                if seen != expected.get(approver, []):
                    return False
        return True

    await eventually(agree, timeout=30, what="every replica to show the waiting lists")
    return expected


async def metric(client: httpx.AsyncClient, url: str, name: str, **labels: str) -> float:
    text = (await client.get(f"{url}/metrics")).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


async def create(
    client: httpx.AsyncClient, approvals_url: str, requester: int, steps: list[int]
) -> int:
    return await factories.approval(
        client, approvals_url, factories.approval_body(requester, steps)
    )


async def test_every_replica_shows_each_approvers_inbox_as_the_waiting_list_in_order(
    client: httpx.AsyncClient, approvals_url: str, replicas: Replicas, people: dict[str, Any]
) -> None:
    requester, approvers = people["requester"], people["approvers"]
    created = []
    for round_ in range(2):
        for i, approver in enumerate(approvers):
            steps = [approver] if round_ == 0 else [approver, approvers[(i + 1) % len(approvers)]]
            created.append(await create(client, approvals_url, requester, steps))
    await settled(*created)

    expected = await inboxes_agree(client, replicas, approvals_url, approvers)

    assert all(len(expected[a]) == 2 for a in approvers)
    for index in range(REPLICAS):
        url = replicas.url(index)
        owned = [p for p in range(PARTITIONS) if p % REPLICAS == index]
        for partition in range(PARTITIONS):
            held = await metric(
                client, url, "erp_processing_partition_owned", partition=f"{partition:02d}"
            )
            assert held == (1.0 if partition in owned else 0.0)


async def test_a_decision_sent_to_a_replica_not_holding_the_inbox_is_applied_once(
    client: httpx.AsyncClient, approvals_url: str, replicas: Replicas, people: dict[str, Any]
) -> None:
    requester, approvers = people["requester"], people["approvers"]
    first, second = approvers[0], approvers[1]
    request_id = await create(client, approvals_url, requester, [first, second])
    await settled(request_id)
    via = (owner(first) + 1) % REPLICAS
    other = (owner(first) + 2) % REPLICAS
    before = await metric(
        client, replicas.url(via), "erp_processing_forwarded_total", outcome="answered"
    )

    decided = await client.post(
        f"{replicas.url(via)}/process/{first}/{request_id}", json={"action": "approve"}
    )
    again = await client.post(
        f"{replicas.url(other)}/process/{first}/{request_id}", json={"action": "approve"}
    )

    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    assert again.status_code == 404, again.text
    await settled(request_id)
    doc = await document(client, approvals_url, request_id)
    assert [s["status"] for s in doc["steps"]] == ["approved", "pending"]
    after = await metric(
        client, replicas.url(via), "erp_processing_forwarded_total", outcome="answered"
    )
    assert after == before + 1
    expected = await inboxes_agree(client, replicas, approvals_url, approvers)
    assert (request_id, 1) not in expected.get(first, [])
    assert expected[second].count((request_id, 2)) == 1

    last = await client.post(
        f"{replicas.url((owner(second) + 1) % REPLICAS)}/process/{second}/{request_id}",
        json={"action": "reject"},
    )
    assert last.status_code == 200, last.text
    await settled(request_id)
    doc = await document(client, approvals_url, request_id)
    assert ([s["status"] for s in doc["steps"]], doc["finalStatus"]) == (
        ["approved", "rejected"],
        "rejected",
    )


async def test_a_page_of_an_inbox_asked_of_a_replica_not_holding_it_is_that_page(
    client: httpx.AsyncClient, approvals_url: str, replicas: Replicas, people: dict[str, Any]
) -> None:
    requester, approver = people["requester"], people["approvers"][2]
    created = [await create(client, approvals_url, requester, [approver]) for _ in range(3)]
    await settled(*created)
    holding = await inboxes_agree(client, replicas, approvals_url, people["approvers"])
    mine = [request_id for request_id, _ in holding[approver]]
    via = replicas.url((owner(approver) + 1) % REPLICAS)

    response = await client.get(f"{via}/process/{approver}", params={"limit": 2, "offset": 1})

    assert response.status_code == 200, response.text
    assert [item["requestId"] for item in response.json()] == mine[1:3]


async def test_a_forwarded_call_reaching_a_replica_that_does_not_own_it_is_not_passed_on(
    client: httpx.AsyncClient, replicas: Replicas, people: dict[str, Any]
) -> None:
    approver = people["approvers"][0]
    wrong = (owner(approver) + 1) % REPLICAS

    response = await client.get(
        f"{replicas.url(wrong)}/process/{approver}", headers={FORWARDED_BY: "9"}
    )

    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    misrouted = await metric(
        client, replicas.url(wrong), "erp_processing_forwarded_total", outcome="misrouted"
    )
    assert misrouted >= 1


async def test_a_hand_off_left_in_the_unpartitioned_queue_reaches_its_owner(
    client: httpx.AsyncClient, approvals_url: str, replicas: Replicas, people: dict[str, Any]
) -> None:
    """What a publisher older than the partitions left in approval.work is moved to the
    partition of its approver (by replica 0), then held by that partition's owner."""
    approver = next(a for a in people["approvers"] if owner(a) == 2)
    ghost = 900_000_000 + approver  # a request the request service does not know
    body = {
        "requestId": ghost,
        "requesterId": people["requester"],
        "title": "결재 요청",
        "content": "내용",
        "steps": [{"step": 1, "approverId": approver, "status": "pending"}],
    }
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(EXCHANGE)
        await exchange.publish(
            aio_pika.Message(orjson.dumps(body), content_type="application/json"),
            routing_key=WORK_ROUTING_KEY,
        )

    async def held() -> bool:
        response = await client.get(f"{replicas.url(0)}/process/{approver}")
        return any(i["requestId"] == ghost for i in response.json())

    await eventually(held, timeout=30, what="the moved hand-off in its owner's inbox")
    moved = await metric(
        client, replicas.url(0), "erp_amqp_messages_consumed_total", outcome="moved"
    )
    assert moved >= 1
    # The request service does not know it: deciding drops it, as any stale item.
    gone = await client.post(
        f"{replicas.url(1)}/process/{approver}/{ghost}", json={"action": "approve"}
    )
    assert gone.status_code == 404, gone.text


async def test_a_killed_replica_rebuilds_only_its_share_while_the_others_keep_serving(
    client: httpx.AsyncClient, approvals_url: str, replicas: Replicas, people: dict[str, Any]
) -> None:
    requester, approvers = people["requester"], people["approvers"]
    dead = 1
    orphaned = [a for a in approvers if owner(a) == dead]
    served = [a for a in approvers if owner(a) != dead]
    replicas.kill(dead)

    created = [await create(client, approvals_url, requester, [a]) for a in approvers]

    for via in (0, 2):
        for approver in orphaned:
            response = await client.get(f"{replicas.url(via)}/process/{approver}")
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "2"
    await inboxes_agree(client, replicas, approvals_url, served)

    replicas.start(dead)
    await settled(*created)

    expected = await inboxes_agree(client, replicas, approvals_url, approvers)
    everything = await waiting_by_approver(client, approvals_url)
    share = sum(len(steps) for a, steps in everything.items() if owner(a) == dead)
    assert 0 < share < sum(len(steps) for steps in everything.values())
    assert await metric(client, replicas.url(dead), "erp_inbox_items") == share
    assert all(
        (request_id, 1) in expected[a] for request_id, a in zip(created, approvers, strict=True)
    )
