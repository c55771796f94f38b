"""What every scenario shares: the service URLs, the headers each call carries, a
gevent-friendly notification WebSocket that reports to Locust, and seeding through the
public APIs (the scenarios assume no data of their own)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import gevent.pool
import requests
import websocket
from locust.env import Environment

from loadtests.auth import ADMIN, CREDENTIALS, Caller, headers

log = logging.getLogger(__name__)

DEFAULT_URLS = {
    "employee": "http://127.0.0.1:8001",
    "approvals": "http://127.0.0.1:8002",
    "processing": "http://127.0.0.1:8003",
    "notification": "http://127.0.0.1:8004",
}
SEED_CONCURRENCY = 16
SEED_TIMEOUT_SECONDS = 30.0
CATCH_UP_SECONDS = 5.0


def add_service_arguments(parser: Any) -> None:
    """`--<service>-url` options (also `LOADTEST_<SERVICE>_URL`), defaulting to `make up`'s."""
    for service, url in DEFAULT_URLS.items():
        parser.add_argument(
            f"--{service}-url",
            env_var=f"LOADTEST_{service.upper()}_URL",
            default=url,
            help=f"base URL of the {service} service (default {url})",
        )


@dataclass(frozen=True)
class Urls:
    employee: str
    approvals: str
    processing: str
    notification: str

    @classmethod
    def from_options(cls, options: Any) -> Urls:
        return cls(**{name: getattr(options, f"{name}_url").rstrip("/") for name in DEFAULT_URLS})

    def websocket(self, employee_id: int, after: int | None = None) -> str:
        parts = urlsplit(self.notification)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = f"after={after}" if after is not None else ""
        return urlunsplit((scheme, parts.netloc, f"{parts.path}/ws/{employee_id}", query, ""))


class NotificationSocket:
    """One employee's notification WebSocket (websocket-client: blocking calls that gevent
    turns into cooperative ones). Connects are reported as `WS connect`; a dropped
    connection is reported as a failure and reopened with `?after=` so nothing is missed."""

    def __init__(self, environment: Environment, urls: Urls, employee_id: int) -> None:
        self.environment = environment
        self.urls = urls
        self.employee_id = employee_id
        self.last_id: int | None = None
        self._socket: websocket.WebSocket | None = None

    def connect(self) -> None:
        started = time.perf_counter()
        error: Exception | None = None
        try:
            self._socket = websocket.create_connection(
                self.urls.websocket(self.employee_id, self.last_id),
                timeout=SEED_TIMEOUT_SECONDS,
                # Browsers cannot set headers on a WebSocket: the token rides as subprotocol.
                subprotocols=["bearer", CREDENTIALS.token(self.employee_id)],
                enable_multithread=False,
            )
        except (OSError, websocket.WebSocketException) as exc:
            error = exc
            self._socket = None
        self._report("connect /ws/[employeeId]", started, error)
        if error is not None:
            raise error

    def receive(self, timeout: float) -> dict[str, Any] | None:
        """The next notification, or None when none came within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            if self._socket is None:
                if not self._reconnect(deadline):
                    return None
                continue
            self._socket.settimeout(remaining)
            try:
                text = self._socket.recv()
            except websocket.WebSocketTimeoutException:
                return None
            except (OSError, websocket.WebSocketException) as exc:
                self._report("closed /ws/[employeeId]", time.perf_counter(), exc)
                self.close()
                continue
            if not text:
                continue
            message: dict[str, Any] = json.loads(text)
            self.last_id = message.get("id", self.last_id)
            return message

    def _reconnect(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            try:
                self.connect()
                return True
            except (OSError, websocket.WebSocketException):
                gevent.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        return False

    def close(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                self._socket.close(timeout=1)
            self._socket = None

    def _report(self, name: str, started: float, error: Exception | None) -> None:
        fire(self.environment, "WS", name, (time.perf_counter() - started) * 1000, error)


class Seeder:
    """Creates the data a scenario needs through the public APIs, in parallel, unrecorded
    (seeding is not part of what is measured)."""

    def __init__(self, urls: Urls, *, concurrency: int = SEED_CONCURRENCY) -> None:
        self.urls = urls
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=concurrency)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.pool = gevent.pool.Pool(concurrency)

    def _post(self, url: str, body: dict[str, Any], expect: int, caller: Caller) -> dict[str, Any]:
        response = self.session.post(
            url, json=body, headers=headers(caller), timeout=SEED_TIMEOUT_SECONDS
        )
        if response.status_code != expect:
            raise RuntimeError(
                f"seeding: POST {url} answered {response.status_code}: {response.text}"
            )
        result: dict[str, Any] = response.json()
        return result

    def map(self, function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        return list(self.pool.imap(function, items))

    def employees(self, count: int, *, label: str, department: str = "부하시험팀") -> list[int]:
        stamp = time.strftime("%H%M%S")

        def create(n: int) -> int:
            body = {"name": f"{label} {stamp}-{n}", "department": department, "position": "사원"}
            return int(self._post(f"{self.urls.employee}/employees", body, 201, ADMIN)["id"])

        started = time.perf_counter()
        ids = self.map(create, range(count))
        log.info("seeded %d %s employees in %.1fs", count, label, time.perf_counter() - started)
        return ids

    def attendance(self, employee_ids: Sequence[int]) -> None:
        def check_in_and_out(employee_id: int) -> None:
            body = {"employee_id": employee_id}
            self._post(f"{self.urls.employee}/attendance/check-in", body, 200, employee_id)
            self._post(f"{self.urls.employee}/attendance/check-out", body, 200, employee_id)

        self.map(check_in_and_out, employee_ids)

    def approval(self, body: dict[str, Any]) -> int:
        created = self._post(f"{self.urls.approvals}/approvals", body, 201, body["requesterId"])
        return int(created["requestId"])


# A simulated employee's n-th LEAVE request takes one working day of month n % 12 of year
# 2030 + n // 12: never overlapping another of theirs, and twelve a year stay within the
# 15 ANNUAL days each employee is entitled to (employee-service refuses overlapping leave
# and leave beyond the balance).
FIRST_LEAVE_YEAR = 2030


def leave_day(n: int) -> str:
    first = date(FIRST_LEAVE_YEAR + n // 12, 1 + n % 12, 1)
    weekend = first.weekday() >= 5
    return (first + timedelta(days=7 - first.weekday() if weekend else 0)).isoformat()


def approval_body(
    requester: int, approvers: Sequence[int], *, leave: bool, title: str, leave_number: int = 0
) -> dict[str, Any]:
    """A GENERAL or LEAVE request, one step per approver in order; a LEAVE request takes
    the day ``leave_day(leave_number)``, counted by employee-service."""
    body: dict[str, Any] = {
        "requesterId": requester,
        "title": title,
        "content": "부하 시험으로 만든 결재 요청입니다.",
        "steps": [{"step": n, "approverId": a} for n, a in enumerate(approvers, start=1)],
        "requestType": "LEAVE" if leave else "GENERAL",
    }
    if leave:
        day = leave_day(leave_number)
        body["leaveInfo"] = {
            "startDate": day,
            "endDate": day,
            "leaveType": "ANNUAL",
            "reason": "부하 시험",
        }
    return body


def paced(per_second: float) -> Callable[[Any], float]:
    """A `wait_time` keeping a user to `per_second` task runs on an absolute schedule.

    Locust's `constant_throughput` loses every sleep's overshoot and runs a few per cent
    slow. Here arrivals delayed by a slow answer or a stall are sent as soon as the user is
    free again (an open workload keeps arriving), up to `CATCH_UP_SECONDS` of backlog."""
    period = 1.0 / per_second

    def wait_time(user: Any) -> float:
        now = time.perf_counter()
        previous = getattr(user, "_paced_due", now - period)
        due = max(previous + period, now - CATCH_UP_SECONDS)
        user._paced_due = due
        return max(0.0, due - now)

    return wait_time


def watch_generator_lag(environment: Environment, interval: float = 0.1) -> None:
    """Report how late this process's event loop wakes up (`LAG` entries): a busy load
    generator delays receipts and responses, and this tells that delay apart from the
    services'. Runs until the process ends."""

    def loop() -> None:
        while True:
            started = time.perf_counter()
            gevent.sleep(interval)
            late = time.perf_counter() - started - interval
            fire(environment, "LAG", "load generator event loop", max(0.0, late) * 1000)

    gevent.spawn(loop)


def fire(
    environment: Environment,
    request_type: str,
    name: str,
    milliseconds: float,
    error: Exception | None = None,
) -> None:
    """Report something that is not one HTTP call (a whole flow, a push) as a Locust entry."""
    environment.events.request.fire(
        request_type=request_type,
        name=name,
        response_time=milliseconds,
        response_length=0,
        exception=error,
        context={},
    )
