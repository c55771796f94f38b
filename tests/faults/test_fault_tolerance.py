"""Breaking things on purpose, then checking nothing was lost: service crashes (SIGKILL),
a RabbitMQ restart, MariaDB and FerretDB outages, notification-service down. Every loop is
bounded; everything runs on loopback against this session's own processes and databases.

Every test runs in two layouts (tests/support/layouts.py): the session's one process a
service, and two replicas of each behind the local gateway."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from devstack import backing
from devstack.process import read_pid
from tests.support import factories, layouts
from tests.support.layouts import Layout
from tests.support.pipeline import document, eventually, final_status, inbox, listening
from tests.support.settled import effect_attempted, outbox_drained, settled

pytestmark = layouts.BOTH
RETRYABLE = {502, 503}


def _ours(name: str) -> None:
    """The outage tests stop backing services only when this checkout's stack started them
    (processes are ended only by the ids we recorded); say so clearly otherwise."""
    assert read_pid(name) is not None, (
        f"{name} was not started by this checkout's stack (another checkout or a system "
        f"service runs it), so this test will not stop it; stop that one and rerun"
    )


@dataclass
class Flow:
    request_id: int
    requester: int
    approvers: list[int]
    leave: bool
    reject_at: int | None  # step number that rejects, or None

    @property
    def expected(self) -> str:
        return "rejected" if self.reject_at else "approved"


async def _post_until_accepted(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], deadline: float
) -> httpx.Response:
    while True:
        try:
            response = await client.post(url, json=body)
            if response.status_code not in RETRYABLE:
                return response
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{url} never accepted the request"
        await asyncio.sleep(0.2)


async def _create_flows(
    client: httpx.AsyncClient, employee_url: str, approvals_url: str, count: int
) -> list[Flow]:
    people = await factories.employees(client, employee_url, 6)
    rng = random.Random(count)
    flows = []
    for n in range(count):
        requester, *others = rng.sample(people, 3)
        approvers = others[: 1 + n % 2]
        leave = n % 3 == 0
        reject_at = len(approvers) if n % 5 == 4 else None
        body = (
            factories.leave_body(requester, approvers)
            if leave
            else factories.approval_body(requester, approvers)
        )
        created = await client.post(f"{approvals_url}/approvals", json=body)
        assert created.status_code == 201, created.text
        flows.append(Flow(created.json()["requestId"], requester, approvers, leave, reject_at))
    return flows


async def _work_inboxes(
    client: httpx.AsyncClient,
    processing_url: str,
    approvals_url: str,
    flows: list[Flow],
    timeout: float,
) -> None:
    """Approvers keep working their inboxes, riding out crashes, until every flow is final."""
    by_id = {flow.request_id: flow for flow in flows}
    approvers = sorted({a for flow in flows for a in flow.approvers})
    deadline = time.monotonic() + timeout

    async def approver_loop(approver: int) -> None:
        while time.monotonic() < deadline:
            try:
                items = await inbox(client, processing_url, approver)
            except (AssertionError, httpx.TransportError):
                await asyncio.sleep(0.2)
                continue
            held = [i["requestId"] for i in items]
            assert len(held) == len(set(held)), f"an item is held twice: {held}"
            for item in items:
                flow = by_id.get(item["requestId"])
                if flow is None:
                    continue
                action = "reject" if item["step"] == flow.reject_at else "approve"
                with contextlib.suppress(httpx.TransportError):
                    await client.post(
                        f"{processing_url}/process/{approver}/{flow.request_id}",
                        json={"action": action},
                    )
            if await _all_final(client, approvals_url, flows):
                return
            await asyncio.sleep(0.1)

    await asyncio.gather(*(approver_loop(a) for a in approvers))


async def _all_final(client: httpx.AsyncClient, approvals_url: str, flows: list[Flow]) -> bool:
    try:
        for flow in flows:
            if (await document(client, approvals_url, flow.request_id))["finalStatus"] not in (
                "approved",
                "rejected",
            ):
                return False
    except (AssertionError, httpx.TransportError):
        return False
    return True


async def _assert_nothing_lost(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    flows: list[Flow],
) -> None:
    for flow in flows:
        doc = await final_status(
            client,
            approvals_url,
            flow.request_id,
            flow.expected,
        )
        statuses = [s["status"] for s in doc["steps"]]
        if flow.reject_at:
            assert statuses[flow.reject_at - 1] == "rejected"
        else:
            assert statuses == ["approved"] * len(flow.approvers)
    # No delivery or hand-off under way.
    await settled(*(flow.request_id for flow in flows), db=layout.db)
    for requester in {f.requester for f in flows}:
        mine = {
            f.request_id for f in flows if f.requester == requester and f.leave and not f.reject_at
        }

        leaves = (
            await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
        ).json()
        assert len(leaves) == len(mine), "an approved leave is missing or doubled"
    for approver in {a for f in flows for a in f.approvers}:
        left = {i["requestId"] for i in await inbox(client, processing_url, approver)}
        assert not left & {f.request_id for f in flows}, "a decided item came back"


async def test_killing_each_service_in_turn_mid_run_loses_nothing(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    """On replicas one replica of each service is killed in turn (the first, the second,
    the first, the second) while the other serves: its share of the inboxes is rebuilt,
    whatever it was doing is finished by a replica, and still nothing is lost or doubled."""
    flows = await _create_flows(client, employee_url, approvals_url, 24)
    packages = ("approval_processing", "approval_request", "employee", "notification")

    async def crash_each_in_turn() -> None:
        for turn, package in enumerate(packages):
            await asyncio.sleep(0.7)
            await asyncio.to_thread(layout.kill, package, turn % layout.replicas)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(layout.start, package)

    await asyncio.gather(
        _work_inboxes(client, processing_url, approvals_url, flows, timeout=90),
        crash_each_in_turn(),
    )
    await _assert_nothing_lost(layout, client, employee_url, approvals_url, processing_url, flows)


async def test_notifications_sent_while_notification_service_is_down_arrive_after(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    """On replicas every notification replica is down, then all come back: the socket,
    on whichever replica, replays the result from the stream the replicas share."""
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await eventually(lambda: _held(client, processing_url, approver, request_id), what="the item")
    layout.stop("notification")
    try:
        decided = await client.post(
            f"{processing_url}/process/{approver}/{request_id}", json={"action": "approve"}
        )
        assert decided.status_code == 200
        await final_status(client, approvals_url, request_id, "approved")
        await effect_attempted(request_id, "notify", db=layout.db)  # and failed: nobody took it
    finally:
        layout.start("notification")
    await outbox_drained(request_id, db=layout.db)
    async with listening(notification_url, requester, after=0) as ws:
        (result,) = await ws.wait_for(1, request_id, timeout=30)
        assert (result["type"], result["finalStatus"]) == ("approval_result", "approved")


async def _held(
    client: httpx.AsyncClient, processing_url: str, approver: int, request_id: int
) -> bool:
    return any(i["requestId"] == request_id for i in await inbox(client, processing_url, approver))


async def test_rabbitmq_restart_loses_no_work_item(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    """On replicas every process of every service reconnects to the restarted broker: the
    partition owners and the request service's relays alike."""
    requester, approver = await factories.employees(client, employee_url, 2)
    url = f"{approvals_url}/approvals"
    before = [
        (await client.post(url, json=factories.approval_body(requester, [approver]))).json()[
            "requestId"
        ]
        for _ in range(5)
    ]
    _ours("rabbitmq")
    await asyncio.to_thread(backing.stop_rabbitmq)
    try:
        during = [
            (await client.post(url, json=factories.approval_body(requester, [approver]))).json()[
                "requestId"
            ]
            for _ in range(5)
        ]
    finally:
        await asyncio.to_thread(backing.ensure_rabbitmq)
    after = [
        (await client.post(url, json=factories.approval_body(requester, [approver]))).json()[
            "requestId"
        ]
        for _ in range(5)
    ]
    wanted = set(before + during + after)

    async def all_held() -> set[int] | None:
        held = {i["requestId"] for i in await inbox(client, processing_url, approver)}
        return held if wanted <= held else None

    await eventually(all_held, timeout=60, what="every work item after the broker restart")
    for request_id in during[:2]:
        decided = await client.post(
            f"{processing_url}/process/{approver}/{request_id}", json={"action": "approve"}
        )
        assert decided.status_code == 200


@pytest.mark.parametrize(
    ("package", "dependency", "stop", "start", "probe"),
    [
        ("employee", "mysql", backing.stop_mariadb, backing.ensure_mariadb, "/employees"),
        (
            "approval_request",
            "mongodb",
            backing.stop_ferretdb,
            backing.ensure_ferretdb,
            "/approvals",
        ),
    ],
    ids=["mariadb", "ferretdb"],
)
async def test_database_outage_gives_503s_and_service_resumes_by_itself(
    layout: Layout,
    client: httpx.AsyncClient,
    package: str,
    dependency: str,
    stop: Any,
    start: Any,
    probe: str,
) -> None:
    """On replicas every replica reports the outage and resumes by itself, and the gateway
    passes the 503 on (no replica could answer better)."""
    replicas = layout.process_urls(package)
    _ours("mariadb" if dependency == "mysql" else "ferretdb")
    await asyncio.to_thread(stop)
    try:
        for base in replicas:

            async def unready(base: str = base) -> httpx.Response | None:
                response = await client.get(f"{base}/ready")
                return response if response.status_code == 503 else None

            ready = await eventually(
                unready, timeout=20, what=f"{base}/ready to report {dependency}"
            )
            assert dependency in ready.json()["detail"]
            assert (await client.get(f"{base}/health")).status_code == 200
        for base in {*replicas, layout.url(package)}:
            answered = await client.get(f"{base}{probe}")
            assert answered.status_code == 503
            assert "unavailable" in answered.json()["detail"]
    finally:
        await asyncio.to_thread(start)

    for base in {*replicas, layout.url(package)}:

        async def serving(base: str = base) -> bool:
            return (await client.get(f"{base}{probe}")).status_code == 200

        await eventually(serving, timeout=30, what=f"{base} to resume")
    for base in replicas:
        assert (await client.get(f"{base}/ready")).status_code == 200
