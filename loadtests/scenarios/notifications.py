"""Notifications. Socket users each hold one employee's WebSocket; senders post `/notify`
for connected employees at a set rate and every push's latency, from just before the
`/notify` call to its receipt, is a `WS push` entry (a push not received within
`--push-timeout` is a `WS push lost` failure); readers walk the REST lists (employees,
attendance, approvals, inboxes) at a set rate.

Employees, attendance records and a few approval requests are created at start-up."""

from __future__ import annotations

import gc
import itertools
import logging
import math
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import gevent
import gevent.event
from locust import FastHttpUser, User, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner

from loadtests import MEASURING_MARK
from loadtests.auth import ADMIN, SERVICE, Caller, headers
from loadtests.common import (
    NotificationSocket,
    Seeder,
    Urls,
    add_service_arguments,
    approval_body,
    fire,
    paced,
    watch_generator_lag,
)

__all__ = ["ReaderUser", "SenderUser", "SocketUser"]

MARK = "loadtest-push"
SEEDED_ATTENDANCE = 50
SEEDED_APPROVALS = 20
RECEIVE_SLICE_SECONDS = 1.0
ALL_OPEN_TIMEOUT_SECONDS = 60.0
WARM_UP_SECONDS = 3.0
log = logging.getLogger(__name__)


class Roster:
    """Employees with an open socket; O(1) add, remove and random pick."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._index: dict[int, int] = {}
        self._sockets: dict[int, int] = {}  # employee -> open sockets
        self.open = 0

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, employee_id: object) -> bool:
        return employee_id in self._index

    def add(self, employee_id: int) -> None:
        self.open += 1
        self._sockets[employee_id] = self._sockets.get(employee_id, 0) + 1
        if employee_id not in self._index:
            self._index[employee_id] = len(self._ids)
            self._ids.append(employee_id)

    def remove(self, employee_id: int) -> None:
        if employee_id not in self._sockets:
            return
        self.open -= 1
        self._sockets[employee_id] -= 1
        if self._sockets[employee_id]:
            return
        del self._sockets[employee_id]
        index = self._index.pop(employee_id)
        last = self._ids.pop()
        if last != employee_id:
            self._ids[index] = last
            self._index[last] = index

    def pick(self) -> int | None:
        return random.choice(self._ids) if self._ids else None


@dataclass
class Stage:
    """The employees and knobs of this run (set once at start-up)."""

    urls: Urls | None = None
    employees: list[int] = field(default_factory=list)
    approvers: list[int] = field(default_factory=list)
    connections_per_employee: int = 1
    push_timeout: float = 5.0
    connected: Roster = field(default_factory=Roster)
    expected_sockets: int = 0
    # Set once every socket is open: senders wait for it and the measurement starts there.
    all_open: gevent.event.Event = field(default_factory=gevent.event.Event)
    # token -> (sent at, employee); a receipt removes it, the sweeper reports what is left.
    in_flight: dict[str, tuple[float, int]] = field(default_factory=dict)
    _next_socket: itertools.count[int] = field(default_factory=itertools.count)

    def socket_employee(self) -> int:
        n = next(self._next_socket) // self.connections_per_employee
        return self.employees[n % len(self.employees)]


STAGE = Stage()


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    add_service_arguments(parser)
    parser.add_argument("--connections", type=int, default=2000, help="WebSockets held open")
    parser.add_argument(
        "--connections-per-employee", type=int, default=1, help="sockets per employee"
    )
    parser.add_argument("--push-rate", type=float, default=500.0, help="/notify calls per second")
    parser.add_argument("--senders", type=int, default=0, help="sender users (0: one per 10/s)")
    parser.add_argument("--readers", type=int, default=4, help="REST reader users")
    parser.add_argument("--read-rate", type=float, default=40.0, help="REST reads per second")
    parser.add_argument(
        "--push-timeout", type=float, default=5.0, help="seconds before a push counts as lost"
    )


def senders_for(options: Any) -> int:
    return int(options.senders or max(1, math.ceil(options.push_rate / 10)))


@events.init.add_listener
def _prepare(environment: Environment, **_: Any) -> None:
    options: Any = environment.parsed_options
    assert options is not None, "the scenarios run under Locust's command line"
    senders = senders_for(options)
    SocketUser.fixed_count = options.connections
    SenderUser.fixed_count = senders
    ReaderUser.fixed_count = options.readers
    if isinstance(environment.runner, MasterRunner):
        return
    STAGE.urls = urls = Urls.from_options(options)
    STAGE.connections_per_employee = max(1, options.connections_per_employee)
    STAGE.push_timeout = options.push_timeout
    STAGE.expected_sockets = options.connections
    SenderUser.host = ReaderUser.host = urls.notification
    SenderUser.wait_time = paced(options.push_rate / senders)
    if options.readers:
        ReaderUser.wait_time = paced(options.read_rate / options.readers)
    seeder = Seeder(urls)
    count = max(3, math.ceil(options.connections / STAGE.connections_per_employee))
    STAGE.employees = seeder.employees(count, label="알림수신자")
    seeder.attendance(STAGE.employees[:SEEDED_ATTENDANCE])
    STAGE.approvers = STAGE.employees[:2]
    requesters = STAGE.employees[2:][:SEEDED_APPROVALS]
    seeder.map(
        lambda requester: seeder.approval(
            approval_body(requester, STAGE.approvers, leave=False, title="읽기용 결재")
        ),
        requesters,
    )


@events.test_start.add_listener
def _start_watchers(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        gevent.spawn(_sweep_lost_pushes, environment)
        watch_generator_lag(environment)


def _sweep_lost_pushes(environment: Environment) -> None:
    """Report each push not received in time as lost, once a second, for the whole run."""
    while True:
        gevent.sleep(1.0)
        cutoff = time.time() - STAGE.push_timeout
        lost = [token for token, (sent, _) in STAGE.in_flight.items() if sent < cutoff]
        for token in lost:
            employee = STAGE.in_flight.pop(token)[1]
            error = TimeoutError(f"push to employee {employee} not received")
            fire(environment, "WS", "push lost", STAGE.push_timeout * 1000, error)


def _measure_from_here(environment: Environment) -> None:
    """The steady state: every socket open and the senders up to speed for a while."""
    assert environment.runner is not None
    # The generator's own pauses are not the service's latency: its 2,000 sockets live for
    # the whole run, so they leave the collector's sight and a full collection no longer
    # walks them (and stops the generator's clock) in the middle of the measurement.
    gc.collect()
    gc.freeze()
    environment.runner.stats.reset_all()
    log.info(MEASURING_MARK)


class SocketUser(User):
    """Holds one connection and times every load-test push it receives."""

    wait_time = constant(0)
    fixed_count = 0  # set from --connections at start-up

    def on_start(self) -> None:
        assert STAGE.urls is not None
        self.me = STAGE.socket_employee()
        self.socket = NotificationSocket(self.environment, STAGE.urls, self.me)
        self.socket.connect()
        STAGE.connected.add(self.me)
        if STAGE.connected.open >= STAGE.expected_sockets and not STAGE.all_open.is_set():
            STAGE.all_open.set()  # senders start now
            gevent.spawn_later(WARM_UP_SECONDS, _measure_from_here, self.environment)

    def on_stop(self) -> None:
        STAGE.connected.remove(self.me)
        self.socket.close()

    @task
    def receive(self) -> None:
        message = self.socket.receive(RECEIVE_SLICE_SECONDS)
        title = (message or {}).get("title") or ""
        if not title.startswith(MARK):
            return  # nothing this second, or a notification the load test did not send
        _, token, sent = title.split(" ")
        STAGE.in_flight.pop(token, None)
        fire(self.environment, "WS", "push", (time.time() - float(sent)) * 1000)


class SenderUser(FastHttpUser):
    """Posts `/notify` for a random connected employee; the title carries token and time."""

    wait_time = constant(1)  # paced from --push-rate at start-up
    fixed_count = 0

    def on_start(self) -> None:
        STAGE.all_open.wait(timeout=ALL_OPEN_TIMEOUT_SECONDS)

    @task
    def notify(self) -> None:
        employee = STAGE.connected.pick()
        if employee is None:
            gevent.sleep(0.1)
            return
        token = uuid.uuid4().hex[:12]
        sent = time.time()
        STAGE.in_flight[token] = (sent, employee)
        body = {
            "employeeId": employee,
            "type": "approval_assigned",
            "title": f"{MARK} {token} {sent:.6f}",
        }
        with self.client.post(
            "/notify", json=body, headers=headers(SERVICE), name="/notify", catch_response=True
        ) as response:
            if response.status_code != 202:
                response.failure(f"{response.status_code}: {response.text}")
            elif not response.json().get("delivered") and employee in STAGE.connected:
                response.failure("delivered false for a connected employee")


class ReaderUser(FastHttpUser):
    """People browsing, each call as whoever may make it: an administrator reads the people
    list; employees read their own record, attendance, requests and inbox."""

    wait_time = constant(1)  # paced from --read-rate at start-up
    fixed_count = 0

    def on_start(self) -> None:
        assert STAGE.urls is not None
        self.urls = STAGE.urls

    def _get(self, url: str, name: str, caller: Caller) -> None:
        with self.client.get(url, headers=headers(caller), name=name, catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"{r.status_code}: {r.text}")

    @task(3)
    def employees(self) -> None:
        offset = random.randrange(max(1, len(STAGE.employees) - 50))
        url = f"{self.urls.employee}/employees?limit=50&offset={offset}"
        self._get(url, "/employees", ADMIN)

    @task(2)
    def employee(self) -> None:
        me = random.choice(STAGE.employees)
        self._get(f"{self.urls.employee}/employees/{me}", "/employees/[id]", me)

    @task(3)
    def attendance(self) -> None:
        me = random.choice(STAGE.employees[:SEEDED_ATTENDANCE])
        today = date.today()
        url = f"{self.urls.employee}/attendance/me?employeeId={me}&from={today.replace(day=1)}"
        self._get(f"{url}&to={today}", "/attendance/me", me)

    @task(2)
    def my_requests(self) -> None:
        me = random.choice(STAGE.employees[2 : 2 + SEEDED_APPROVALS])
        url = f"{self.urls.approvals}/approvals?requesterId={me}"
        self._get(url, "/approvals?requesterId", me)

    @task(1)
    def to_approve(self) -> None:
        me = random.choice(STAGE.approvers)
        url = f"{self.urls.approvals}/approvals?approverId={me}&finalStatus=pending&limit=20"
        self._get(url, "/approvals?approverId&finalStatus", me)

    @task(1)
    def inbox(self) -> None:
        me = random.choice(STAGE.approvers)
        self._get(f"{self.urls.processing}/process/{me}", "/process/[approverId]", me)
