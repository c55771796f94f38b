"""Approval pipeline. Requesters file GENERAL and LEAVE requests of one to three steps and
wait for the outcome; approvers, told by a WebSocket push, work their inboxes (list, then
approve, or in a set share reject). Each finished request is one `FLOW` entry in Locust's
statistics, timed from its creation until the requester has seen its final status.

Concurrent flows = requesters (each has one request open at a time, closed loop unless
`--flow-rate` paces them). Employees are created at start-up, fresh for every run."""

from __future__ import annotations

import itertools
import random
import time
from dataclasses import dataclass, field
from typing import Any

from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner

from loadtests.auth import headers
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

__all__ = ["ApproverUser", "RequesterUser"]

FINAL = ("approved", "rejected")
# Without a push an approver still looks at the inbox this often (a missed push shows as
# slow flows, never as stuck ones).
INBOX_CHECK_SECONDS = 5.0
REMEMBERED_DECISIONS = 1000


@dataclass
class Cast:
    """Who plays which part, and the knobs of this run (set once at start-up)."""

    urls: Urls | None = None
    requesters: list[int] = field(default_factory=list)
    approvers: list[int] = field(default_factory=list)
    steps: tuple[int, int] = (1, 3)
    leave_share: float = 0.3
    reject_share: float = 0.1
    flow_timeout: float = 30.0
    _next_requester: itertools.count[int] = field(default_factory=itertools.count)
    _next_approver: itertools.count[int] = field(default_factory=itertools.count)

    def requester(self) -> int:
        return self.requesters[next(self._next_requester) % len(self.requesters)]

    def approver(self) -> int:
        return self.approvers[next(self._next_approver) % len(self.approvers)]


CAST = Cast()


def parse_steps(text: str) -> tuple[int, int]:
    """`"2"` or `"1-3"`: the number of approval steps, fixed or drawn per request."""
    low, _, high = text.partition("-")
    bounds = (int(low), int(high or low))
    if not 1 <= bounds[0] <= bounds[1]:
        raise ValueError(f"--steps {text!r}: expected N or LOW-HIGH with 1 <= LOW <= HIGH")
    return bounds


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    add_service_arguments(parser)
    parser.add_argument("--flows", type=int, default=32, help="requesters = concurrent flows")
    parser.add_argument(
        "--approvers", type=int, default=0, help="approver users (0: as many as --flows)"
    )
    parser.add_argument("--steps", default="1-3", help="steps per request: N or LOW-HIGH")
    parser.add_argument("--leave-share", type=float, default=0.3, help="share of LEAVE requests")
    parser.add_argument(
        "--reject-share", type=float, default=0.1, help="share of decisions that reject"
    )
    parser.add_argument(
        "--flow-rate",
        type=float,
        default=0.0,
        help="new requests per second over all requesters (0: each starts the next at once)",
    )
    parser.add_argument(
        "--flow-timeout", type=float, default=30.0, help="seconds before a flow counts as failed"
    )


@events.init.add_listener
def _prepare(environment: Environment, **_: Any) -> None:
    options: Any = environment.parsed_options
    assert options is not None, "the scenarios run under Locust's command line"
    approvers = options.approvers or options.flows
    RequesterUser.fixed_count = options.flows
    ApproverUser.fixed_count = approvers
    if isinstance(environment.runner, MasterRunner):
        return  # each worker seeds the employees its own users play
    CAST.urls = Urls.from_options(options)
    CAST.steps = parse_steps(options.steps)
    if CAST.steps[1] > approvers:
        raise ValueError(f"--steps {options.steps} needs at least {CAST.steps[1]} approvers")
    CAST.leave_share = options.leave_share
    CAST.reject_share = options.reject_share
    CAST.flow_timeout = options.flow_timeout
    RequesterUser.host = ApproverUser.host = CAST.urls.approvals
    if options.flow_rate > 0:
        RequesterUser.wait_time = paced(options.flow_rate / options.flows)
    seeder = Seeder(CAST.urls)
    CAST.requesters = seeder.employees(options.flows, label="요청자")
    CAST.approvers = seeder.employees(approvers, label="결재자")


@events.test_start.add_listener
def _start_watchers(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, MasterRunner):
        watch_generator_lag(environment)


class RequesterUser(FastHttpUser):
    """Files one request, waits for its final `approval_result` push, then opens it."""

    wait_time = constant(0)
    fixed_count = 0  # set from --flows / --approvers at start-up

    def on_start(self) -> None:
        assert CAST.urls is not None
        self.urls = CAST.urls
        self.me = CAST.requester()
        self.leaves = itertools.count()
        self.socket = NotificationSocket(self.environment, self.urls, self.me)
        self.socket.connect()

    def on_stop(self) -> None:
        self.socket.close()

    @task
    def file_and_follow(self) -> None:
        steps = random.randint(*CAST.steps)
        approvers = random.sample(CAST.approvers, steps)
        leave = random.random() < CAST.leave_share
        body = approval_body(
            self.me,
            approvers,
            leave=leave,
            title="부하 시험 결재",
            leave_number=next(self.leaves) if leave else 0,
        )
        started = time.perf_counter()
        with self.client.post(
            f"{self.urls.approvals}/approvals",
            json=body,
            headers=headers(self.me),
            name="/approvals",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text}")
                return
            request_id = int(response.json()["requestId"])
        pushed = self._await_outcome(request_id, started + CAST.flow_timeout)
        stored = self._final_status(request_id)
        elapsed = (time.perf_counter() - started) * 1000
        error: Exception | None = None
        if pushed is None:
            error = TimeoutError(f"no final approval_result within {CAST.flow_timeout:.0f}s")
        elif stored != pushed:
            error = AssertionError(f"pushed {pushed} but the document says {stored}")
        outcome = stored if stored in FINAL else "unfinished"
        fire(self.environment, "FLOW", f"approval {steps}-step {outcome}", elapsed, error)

    def _await_outcome(self, request_id: int, deadline: float) -> str | None:
        while (remaining := deadline - time.perf_counter()) > 0:
            message = self.socket.receive(remaining)
            if (
                message is not None
                and message.get("type") == "approval_result"
                and message.get("requestId") == request_id
                and message.get("finalStatus") in FINAL
            ):
                return str(message["finalStatus"])
        return None

    def _final_status(self, request_id: int) -> str | None:
        with self.client.get(
            f"{self.urls.approvals}/approvals/{request_id}",
            headers=headers(self.me),
            name="/approvals/[requestId]",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text}")
                return None
            return str(response.json()["finalStatus"])


class ApproverUser(FastHttpUser):
    """Waits for an `approval_assigned` push, lists the inbox and decides every item."""

    wait_time = constant(0)
    fixed_count = 0  # set from --flows / --approvers at start-up

    def on_start(self) -> None:
        assert CAST.urls is not None
        self.urls = CAST.urls
        self.me = CAST.approver()
        self.inbox_url = f"{self.urls.processing}/process/{self.me}"
        self.decided: dict[tuple[int, int], None] = {}
        self.socket = NotificationSocket(self.environment, self.urls, self.me)
        self.socket.connect()

    def on_stop(self) -> None:
        self.socket.close()

    @task
    def work_inbox(self) -> None:
        message = self.socket.receive(INBOX_CHECK_SECONDS)
        if message is not None and (
            message.get("type") != "approval_assigned"
            or (message.get("requestId"), message.get("step")) in self.decided
        ):
            return  # a result of our own decision, or work already done from an earlier list
        for item in self._inbox():
            self._decide(item)

    def _inbox(self) -> list[dict[str, Any]]:
        with self.client.get(
            self.inbox_url,
            headers=headers(self.me),
            name="/process/[approverId]",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text}")
                return []
            items: list[dict[str, Any]] = response.json()
            return items

    def _decide(self, item: dict[str, Any]) -> None:
        action = "reject" if random.random() < CAST.reject_share else "approve"
        with self.client.post(
            f"{self.inbox_url}/{item['requestId']}",
            json={"action": action},
            headers=headers(self.me),
            name="/process/[approverId]/[requestId]",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{action}: {response.status_code}: {response.text}")
        self.decided[(item["requestId"], item["step"])] = None
        if len(self.decided) > REMEMBERED_DECISIONS:
            del self.decided[next(iter(self.decided))]
