"""Every service as several real processes (3 approval-processing, 3 notification, 2
approval-request, 2 employee) behind the real gateway nginx, on databases of their own.
While approvals spread over more approvers than partitions are created and decided, with
a WebSocket through the gateway for every requester and approver, one approval-processing
and one notification replica are killed (SIGKILL, or SIGTERM) and restarted and another
replica's AMQP connection is closed by the broker. Then nothing is lost or applied twice:
inboxes equal the waiting lists, every step is applied once, every queue empties, and every
client has every notification it should, ids increasing."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
import subprocess
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psutil
import pytest
from pymongo import AsyncMongoClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from devstack.apps import get_service, start_app, stop_process, wait_ready
from services.common.messaging import PARTITIONS, partition_of
from tests.deploy.deploy_model import APPS
from tests.deploy.gateway import find_nginx, gateway_config, internal_config, start_gateway
from tests.support import factories
from tests.support.auth import as_admin, as_service, as_user, token_for
from tests.support.settled import queue_depths
from tests.support.stack import (
    MONGO_URL,
    TEST_DB,
    Stack,
    create_databases,
    drop_databases,
    free_port,
)

REPO = Path(__file__).resolve().parents[2]
REPLICAS = {"employee": 2, "approval_request": 2, "approval_processing": 3, "notification": 3}
# Reached by other services through the internal proxy; approval-processing replicas call
# each other directly (APPROVAL_PROCESSING_PEER_URLS).
INTERNAL = ("employee", "approval_request", "notification")
REQUESTS = 40
REQUESTERS = 4
APPROVERS = PARTITIONS + 3
VICTIM = 1  # the replica of approval-processing and of notification that is stopped
CLOSED = 2  # the replica whose AMQP connection the broker closes
RETRYABLE = {502, 503, 504}
Key = tuple[str, int, int]  # (type, requestId, step)


def app_name(package: str) -> str:
    return get_service(package).name


@dataclass
class Topology:
    """The replicas, the proxy between them and the public gateway, all on loopback."""

    db: str
    log_dir: Path
    ports: dict[str, list[int]] = field(
        default_factory=lambda: {p: [free_port() for _ in range(n)] for p, n in REPLICAS.items()}
    )
    internal: dict[str, int] = field(
        default_factory=lambda: {p: free_port() for p in [*INTERNAL, "health"]}
    )
    public: dict[str, int] = field(
        default_factory=lambda: {name: free_port() for name in [*APPS, "health"]}
    )
    procs: dict[tuple[str, int], subprocess.Popen[bytes]] = field(default_factory=dict)
    starts: Counter[tuple[str, int]] = field(default_factory=Counter)

    def url(self, package: str, replica: int) -> str:
        return f"http://127.0.0.1:{self.ports[package][replica]}"

    def gateway(self, package: str) -> str:
        return f"http://127.0.0.1:{self.public[app_name(package)]}"

    def env(self, package: str, replica: int) -> dict[str, str]:
        # The session stack's settings, pointed at this module's databases and at the
        # internal proxy in place of a single process.
        proxied = Stack(log_dir=self.log_dir, db=self.db, ports=dict(self.internal))
        env = {**proxied.env_for(package), "OTEL_RESOURCE_ATTRIBUTES": f"replica={replica}"}
        if package == "approval_processing":
            count = REPLICAS[package]
            env |= {
                "APPROVAL_PROCESSING_REPLICAS": str(count),
                "APPROVAL_PROCESSING_REPLICA_INDEX": str(replica),
                "APPROVAL_PROCESSING_PEER_URLS": ",".join(
                    self.url(package, i) for i in range(count)
                ),
            }
        return env

    def start(self, package: str, replica: int) -> None:
        self.starts[package, replica] += 1
        log_dir = self.log_dir / f"{package}-{replica}-{self.starts[package, replica]}"
        log_dir.mkdir(parents=True, exist_ok=True)
        proc = start_app(
            get_service(package),
            port=self.ports[package][replica],
            extra_env=self.env(package, replica),
            log_dir=log_dir,
        )
        self.procs[package, replica] = proc
        wait_ready(self.url(package, replica), timeout=60, proc=proc)

    def stop(self, package: str, replica: int, how: signal.Signals) -> None:
        """Ends one replica with ``how``, waiting for it to exit (SIGTERM: its shutdown)."""
        proc = self.procs.pop((package, replica))
        os.kill(proc.pid, how)
        proc.wait(30)

    def stop_all(self) -> None:
        for key in list(self.procs):
            stop_process(self.procs.pop(key), grace=10)


@pytest.fixture(scope="module")
def topology(infra: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    db = f"{TEST_DB}_replicas"
    create_databases(db)
    running = Topology(db=db, log_dir=REPO / ".run" / "test-logs" / "replica-faults")
    nginx = find_nginx()
    proxies: list[subprocess.Popen[bytes]] = []
    try:
        internal_dir = tmp_path_factory.mktemp("internal-proxy")
        upstreams = {app_name(p): running.ports[p] for p in INTERNAL}
        ports = {app_name(p): running.internal[p] for p in INTERNAL}
        config = internal_config(
            upstreams, {**ports, "health": running.internal["health"]}, internal_dir
        )
        proxies.append(start_gateway(nginx, config, internal_dir, running.internal["health"]))
        gateway_dir = tmp_path_factory.mktemp("gateway")
        public = gateway_config(
            {app_name(p): ports for p, ports in running.ports.items()}, running.public, gateway_dir
        )
        proxies.append(start_gateway(nginx, public, gateway_dir, running.public["health"]))
        # Notification first: the others call it from their first moment.
        for package in ("notification", "employee", "approval_request", "approval_processing"):
            for replica in range(REPLICAS[package]):
                running.start(package, replica)
        yield running
    finally:
        running.stop_all()
        for proxy in proxies:
            proxy.terminate()
            proxy.wait(10)
        drop_databases(db)


async def until(
    probe: Callable[[], Awaitable[Any] | Any], *, timeout: float, what: Callable[[], str] | str
) -> Any:
    """Poll ``probe`` until it returns something truthy; the failure says what was last seen."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout}s: {what() if callable(what) else what}"
            )
        await asyncio.sleep(0.1)


class Client:
    """One employee's WebSocket through the gateway, reconnecting with ``?after=`` the last
    id it received, keeping every message exactly as pushed (duplicates included)."""

    def __init__(self, gateway: str, employee: int) -> None:
        self.base = gateway.replace("http://", "ws://", 1)
        self.employee = employee
        self.messages: list[dict[str, Any]] = []
        self.connects = 0
        self.open = asyncio.Event()

    @property
    def after(self) -> int:
        # 0 until something arrived: the whole backlog of a new employee is wanted.
        return self.messages[-1]["id"] if self.messages else 0

    async def run(self) -> None:
        token = token_for(self.employee)
        for _ in range(500):  # bounded: a fault costs a few reconnects
            url = f"{self.base}/ws/{self.employee}?token={token}&after={self.after}"
            with contextlib.suppress(ConnectionClosed, InvalidHandshake, OSError, TimeoutError):
                async with connect(url, open_timeout=5) as websocket:
                    self.connects += 1
                    self.open.set()
                    async for text in websocket:
                        self.messages.append(orjson.loads(text))
            await asyncio.sleep(0.2)

    def keys(self) -> list[Key]:
        return [(m["type"], m["requestId"], m["step"]) for m in self.messages]

    def shown(self) -> set[Key]:
        """What a client shows: one entry per (type, requestId, step) (a notification that
        was stored twice, because an answer was lost to a crash, arrives with two ids)."""
        return set(self.keys())


@dataclass
class Run:
    requesters: list[int]
    approvers: list[int]
    flows: dict[int, tuple[int, list[int]]] = field(default_factory=dict)  # id: (who, steps)
    early: set[int] = field(default_factory=set)  # step 1 decided while the faults happen

    def expected(self) -> dict[int, set[Key]]:
        wanted: dict[int, set[Key]] = defaultdict(set)
        for request_id, (requester, steps) in self.flows.items():
            for step, approver in enumerate(steps, start=1):
                wanted[approver] |= {
                    ("approval_assigned", request_id, step),
                    ("approval_result", request_id, step),
                }
                wanted[requester].add(("approval_result", request_id, step))
        return wanted


async def people(http: httpx.AsyncClient, topology: Topology) -> Run:
    """New employees through the gateway: requesters, and approvers in every partition."""
    ids = await factories.employees(http, topology.gateway("employee"), REQUESTERS + APPROVERS)
    run = Run(requesters=ids[:REQUESTERS], approvers=ids[REQUESTERS:])
    assert {partition_of(a) for a in run.approvers} == set(range(PARTITIONS))
    return run


async def send(
    http: httpx.AsyncClient, method: str, url: str, *, who: int, deadline: float, **kw: Any
) -> httpx.Response:
    """A call that rides out replicas being down: 502/503/504 and transport errors retried."""
    headers = as_user(who)
    for _ in range(1000):
        with contextlib.suppress(httpx.TransportError):
            response = await http.request(method, url, headers=headers, **kw)
            if response.status_code not in RETRYABLE:
                return response
        assert time.monotonic() < deadline, f"{method} {url} never answered"
        await asyncio.sleep(0.2)
    raise AssertionError(f"{method} {url} kept failing")


async def create(http: httpx.AsyncClient, topology: Topology, run: Run, n: int) -> None:
    requester = run.requesters[n % REQUESTERS]
    steps = [run.approvers[n % APPROVERS], run.approvers[(n + 5) % APPROVERS]]
    body = factories.approval_body(requester, steps)
    url = f"{topology.gateway('approval_request')}/approvals"
    response = await http.post(url, json=body, headers=as_admin())
    assert response.status_code == 201, response.text
    request_id = int(response.json()["requestId"])
    run.flows[request_id] = (requester, steps)
    if n % 2 == 0:
        run.early.add(request_id)


async def step_statuses(
    mongo: AsyncMongoClient[dict[str, Any]], db: str, request_ids: list[int]
) -> dict[tuple[int, int], str]:
    docs = await final_documents(mongo, db, request_ids)
    return {(r, s["step"]): s["status"] for r, doc in docs.items() for s in doc["steps"]}


async def work_inbox(
    http: httpx.AsyncClient,
    mongo: AsyncMongoClient[dict[str, Any]],
    topology: Topology,
    run: Run,
    approver: int,
    wanted: Callable[[int, int], bool],
    told: Callable[[int, int], bool],
    created: asyncio.Event,
    answered: Counter[tuple[int, int]],
    deadline: float,
) -> None:
    """The approver approves the ``wanted`` steps in their inbox that they were ``told`` of
    (read and decided through the gateway with their own token) until the request service
    has every wanted step of theirs decided. ``answered`` counts the decisions answered 200
    (applied)."""
    base = f"{topology.gateway('approval_processing')}/process/{approver}"
    while time.monotonic() < deadline:
        response = await send(http, "GET", base, who=approver, deadline=deadline)
        items = [(i["requestId"], i["step"]) for i in response.json()]
        assert response.status_code == 200, response.text
        assert len(items) == len(set(items)), f"an item is held twice: {items}"
        todo = [(r, s) for r, s in items if r in run.flows and wanted(r, s) and told(r, s)]
        for request_id, step in todo:
            answer = await send(
                http,
                "POST",
                f"{base}/{request_id}",
                who=approver,
                deadline=deadline,
                json={"action": "approve"},
            )
            if answer.status_code == 200:
                answered[request_id, step] += 1
        if not todo and created.is_set():
            mine = [
                (r, s)
                for r, (_, steps) in list(run.flows.items())
                for s, a in enumerate(steps, start=1)
                if a == approver and wanted(r, s)
            ]
            statuses = await step_statuses(mongo, topology.db, [r for r, _ in mine])
            if all(statuses[key] != "pending" for key in mine):
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"approver {approver} did not finish in time")


async def final_documents(
    mongo: AsyncMongoClient[dict[str, Any]], db: str, request_ids: list[int]
) -> dict[int, dict[str, Any]]:
    cursor = mongo[db]["approvals"].find({"requestId": {"$in": request_ids}})
    return {doc["requestId"]: doc async for doc in cursor}


async def settled(
    mongo: AsyncMongoClient[dict[str, Any]], topology: Topology, run: Run, timeout: float
) -> None:
    """Until every outbox is delivered and every queue (work partitions, the old work
    queue, the retry queues, the dead letters) is empty, so nothing can still change."""
    seen: dict[str, Any] = {}

    async def quiet() -> bool:
        docs = await final_documents(mongo, topology.db, list(run.flows))
        busy = [r for r, d in docs.items() if d.get("outbox") or d.get("pendingEffects")]
        seen["busy"], seen["queues"] = busy, await queue_depths(topology.db)
        return not busy and len(docs) == len(run.flows) and not any(seen["queues"].values())

    await until(quiet, timeout=timeout, what=lambda: f"still in flight: {seen}")


async def waiting_lists(http: httpx.AsyncClient, topology: Topology) -> dict[int, list]:
    """The request service's waiting steps per approver (read from one replica directly:
    the gateway refuses internal paths)."""
    response = await http.get(
        f"{topology.url('approval_request', 0)}/approvals/internal/waiting",
        params={"limit": 5000},
        headers=as_service(),
    )
    assert response.status_code == 200, response.text
    by_approver: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for row in response.json():
        by_approver[row["approverId"]].append((row["requestId"], row["step"]))
    return by_approver


async def amqp_connections(pid: int, vhost: str) -> list[str]:
    """The broker's ids of the AMQP connections a process of ours holds on ``vhost``."""
    local_ports = {
        c.laddr.port
        for c in psutil.Process(pid).net_connections(kind="tcp")
        if c.raddr and c.raddr.port == 5672 and c.status == psutil.CONN_ESTABLISHED
    }
    listing = await asyncio.create_subprocess_exec(
        *(
            "rabbitmqctl",
            "-q",
            "list_connections",
            "--no-table-headers",
            "pid",
            "peer_port",
            "vhost",
        ),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await listing.communicate()
    rows = [line.split("\t") for line in out.decode().splitlines()]
    return [
        row[0]
        for row in rows
        if len(row) == 3 and row[2] == vhost and row[1].isdigit() and int(row[1]) in local_ports
    ]


async def close_amqp_connections(topology: Topology, package: str, replica: int) -> None:
    """The broker closes the replica's connections, as on a network fault or a broker-side
    close; then until the replica has connected again and is ready."""
    pid = topology.procs[package, replica].pid
    names = await amqp_connections(pid, topology.db)
    assert names, f"{package} replica {replica} holds no AMQP connection"
    for name in names:
        closing = await asyncio.create_subprocess_exec(
            *("rabbitmqctl", "-q", "close_connection", name, "closed by the replica fault test"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        assert await closing.wait() == 0, f"could not close {name}"

    async def back() -> bool:
        again = await amqp_connections(pid, topology.db)
        if not again or set(again) & set(names):
            return False
        async with httpx.AsyncClient(timeout=2) as http:
            ready = await http.get(f"{topology.url(package, replica)}/ready")
        return ready.status_code == 200

    await until(back, timeout=30, what=f"{package} replica {replica} to reconnect")


@pytest.fixture
async def mongo() -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGO_URL, tz_aware=True)
    try:
        yield client
    finally:
        await client.close()


def anything(request_id: int, step: int) -> bool:
    return True


def decided_version(claim: dict[str, Any]) -> bool:
    """Whether a claimed transition is a decision (it moves ``version`` on; D21)."""
    return any(row["op"] == "$set" and row["path"] == "version" for row in claim["update"])


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
async def test_killing_replicas_mid_run_loses_nothing_and_applies_every_step_once(
    topology: Topology, mongo: AsyncMongoClient[dict[str, Any]], how: signal.Signals
) -> None:
    deadline = time.monotonic() + 150
    async with httpx.AsyncClient(timeout=15, headers=as_admin()) as http:
        run = await people(http, topology)
        gateway = topology.gateway("notification")
        clients = {e: Client(gateway, e) for e in run.requesters + run.approvers}
        tasks = [asyncio.create_task(client.run()) for client in clients.values()]
        try:
            await until(
                lambda: all(c.open.is_set() for c in clients.values()),
                timeout=30,
                what="every client's first connection",
            )
            await faults_during_a_run(http, mongo, topology, run, how, clients, deadline)
            answered: Counter[tuple[int, int]] = Counter()  # decisions of the second half

            await settled(mongo, topology, run, timeout=60)
            waiting = await waiting_lists(http, topology)
            await inboxes_equal(http, topology, run, waiting)
            assert sorted(k for steps in waiting.values() for k in steps) == sorted(
                (r, 2 if r in run.early else 1) for r in run.flows
            )

            # Every approver was told of every step waiting for them.
            def untold() -> dict[int, list]:
                return {
                    a: [k for k in steps if ("approval_assigned", *k) not in clients[a].shown()]
                    for a, steps in waiting.items()
                    if any(("approval_assigned", *k) not in clients[a].shown() for k in steps)
                }

            await until(lambda: not untold(), timeout=30, what=lambda: f"untold {untold()}")

            done = asyncio.Event()
            done.set()
            await asyncio.gather(
                *(
                    work_inbox(
                        http, mongo, topology, run, a, anything, anything, done, answered, deadline
                    )
                    for a in run.approvers
                )
            )
            await settled(mongo, topology, run, timeout=60)

            # Every step applied once: one claimed decision per step, each decision made
            # after the faults answered 200 once.
            assert answered == Counter(
                {(r, s): 1 for r in run.flows for s in (1, 2) if not (s == 1 and r in run.early)}
            )
            docs = await final_documents(mongo, topology.db, list(run.flows))
            for request_id, doc in docs.items():
                assert (doc["finalStatus"], doc["version"]) == ("approved", 2), doc
                claims = mongo[topology.db]["transitions"].find({"requestId": request_id})
                assert sum([decided_version(c) async for c in claims]) == 2, request_id

            expected = run.expected()

            def missing() -> dict[int, set[Key]]:
                return {
                    e: expected[e] - c.shown()
                    for e, c in clients.items()
                    if expected[e] - c.shown()
                }

            await until(lambda: not missing(), timeout=30, what=lambda: f"missing {missing()}")
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    for employee, client in clients.items():
        ids = [m["id"] for m in client.messages]
        assert ids == sorted(set(ids)), f"employee {employee}'s ids do not increase: {ids}"
        assert client.shown() == expected[employee]
    assert sum(c.connects for c in clients.values()) > len(clients), "nobody reconnected"
    duplicates = {e: [k for k, n in Counter(c.keys()).items() if n > 1] for e, c in clients.items()}
    if how is signal.SIGTERM:
        # Graceful: nothing that was handled is handled again, so nothing is told twice.
        assert not any(duplicates.values()), duplicates


async def faults_during_a_run(
    http: httpx.AsyncClient,
    mongo: AsyncMongoClient[dict[str, Any]],
    topology: Topology,
    run: Run,
    how: signal.Signals,
    clients: dict[int, Client],
    deadline: float,
) -> None:
    """Requests are created by 8 concurrent callers and the first step of every other one
    is approved meanwhile; a third of the way in, replica VICTIM of approval-processing and
    of notification is ended with ``how``, the broker closes replica CLOSED's connection,
    and the ended ones are started again."""
    created = asyncio.Event()
    a_third = asyncio.Event()
    answered: Counter[tuple[int, int]] = Counter()

    async def creator(worker: int) -> None:
        for n in range(worker, REQUESTS, 8):
            await create(http, topology, run, n)
            if len(run.flows) >= REQUESTS // 3:
                a_third.set()

    async def creators() -> None:
        await asyncio.gather(*(creator(w) for w in range(8)))
        created.set()

    async def faults() -> None:
        await a_third.wait()
        await asyncio.gather(
            asyncio.to_thread(topology.stop, "approval_processing", VICTIM, how),
            asyncio.to_thread(topology.stop, "notification", VICTIM, how),
            close_amqp_connections(topology, "approval_processing", CLOSED),
        )
        if how is signal.SIGKILL:
            # Not with SIGTERM: a publish whose confirm is lost with the connection is
            # answered 503 and stored again when retried, which is no graceful stop.
            await close_amqp_connections(topology, "notification", CLOSED)
        await asyncio.gather(
            asyncio.to_thread(topology.start, "approval_processing", VICTIM),
            asyncio.to_thread(topology.start, "notification", VICTIM),
        )

    def early(request_id: int, step: int) -> bool:
        return step == 1 and request_id in run.early

    def told(approver: int) -> Callable[[int, int], bool]:
        # An approver acts on what they were told of. (A step held by a restarted replica's
        # rebuild and decided before its hand-off is consumed is never announced: the
        # hand-off is then stale.)
        return lambda r, s: ("approval_assigned", r, s) in clients[approver].shown()

    await asyncio.gather(
        creators(),
        faults(),
        *(
            work_inbox(http, mongo, topology, run, a, early, told(a), created, answered, deadline)
            for a in run.approvers
        ),
    )
    # A decision whose answer was lost to a killed replica is applied all the same.
    assert all(n == 1 for n in answered.values()), answered


async def inboxes_equal(
    http: httpx.AsyncClient, topology: Topology, run: Run, waiting: dict[int, list]
) -> None:
    """Until every approver's inbox, read through the gateway, holds their waiting steps
    (as sets: arrival order across the faults is not the request service's order)."""
    mismatch: dict[int, Any] = {}

    async def agree() -> bool:
        mismatch.clear()
        for approver in run.approvers:
            response = await http.get(
                f"{topology.gateway('approval_processing')}/process/{approver}",
                headers=as_user(approver),
            )
            seen = (
                sorted((i["requestId"], i["step"]) for i in response.json())
                if response.status_code == 200
                else response.status_code
            )
            if seen != sorted(waiting.get(approver, [])):
                mismatch[approver] = seen
        return not mismatch

    await until(agree, timeout=30, what=lambda: f"inboxes differ: {mismatch}")
