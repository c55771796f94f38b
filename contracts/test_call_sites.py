"""No call between services without a contract: every place in ``services/`` that sends
something to another service (an HTTP call through ``request_json``, or a raw
``session.request`` such as a forward between replicas, an AMQP ``publish``, a WebSocket
``send_text``) must be listed below with the pact interactions that cover it,
and every interaction listed must exist in a committed pact."""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

from contracts.support import PACTS

REPO = Path(__file__).resolve().parent.parent
SENDS = {"request_json", "request", "publish", "send_text"}

AR_EMPLOYEE = "approval-request-service-employee-service.json"
AR_NOTIFICATION = "approval-request-service-notification-service.json"
AP_REQUEST = "approval-processing-service-approval-request-service.json"
AP_NOTIFICATION = "approval-processing-service-notification-service.json"
CLIENT_NOTIFICATION = "notification-client-notification-service.json"
AP_AP = "approval-processing-service-approval-processing-service.json"
NS_NS = "notification-service-notification-service.json"

HANDOFFS = (
    "an approval.work hand-off of a new request",
    "an approval.work hand-off of the next step after an approval",
    "an approval.work hand-off of a reassigned step to its new approver",
)
STREAM_ENTRIES = (
    "a notification-stream entry for approval_assigned",
    "a notification-stream entry for approval_result",
    "a notification-stream entry for leave_confirmed",
    "a notification-stream entry for approval_withdrawn",
    "a notification-stream entry for leave_cancelled",
)
PUSHES = (
    "a pushed approval_assigned notification",
    "a pushed approval_result notification",
    "a pushed leave_confirmed notification",
    "a pushed approval_withdrawn notification",
    "a pushed leave_cancelled notification",
)
WITHDRAWALS = ("an approval.work withdrawal of the step awaiting a decision",)
REASSIGNMENTS = ("an approval.work reassignment of the step awaiting a decision",)

# (module, function) -> (pact file, interactions covering what that call sends)
COVERED: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("services/approval_request/clients/employee.py", "missing_employees"): (
        AR_EMPLOYEE,
        (
            "a lookup of several employees by id who all exist",
            "a lookup of several employees by id when one does not exist",
        ),
    ),
    ("services/approval_request/clients/employee.py", "record_approved_leave"): (
        AR_EMPLOYEE,
        (
            "a confirmed leave recorded for the first time",
            "a confirmed leave delivered again for the same approval request",
            "a confirmed leave of an employee who does not exist",
        ),
    ),
    ("services/approval_request/clients/employee.py", "reserve_leave"): (
        AR_EMPLOYEE,
        (
            "a reservation of a new leave request",
            "a reservation overlapping another request's",
        ),
    ),
    ("services/approval_request/clients/employee.py", "hold_leave"): (
        AR_EMPLOYEE,
        ("the hold of a reservation",),
    ),
    ("services/approval_request/clients/employee.py", "release_leave"): (
        AR_EMPLOYEE,
        (
            "the release of a held reservation",
            "the release of a request that has no reservation",
        ),
    ),
    ("services/approval_request/clients/employee.py", "cancel_leave"): (
        AR_EMPLOYEE,
        (
            "the cancellation of an approved leave",
            "the cancellation of a request that has no leave record",
        ),
    ),
    ("services/approval_request/clients/notify.py", "send_notification"): (
        AR_NOTIFICATION,
        (
            "an approval_result notification",
            "an approval_result notification with the approver's comment",
            "a leave_confirmed notification",
            "an approval_withdrawn notification",
            "a leave_cancelled notification",
        ),
    ),
    ("services/approval_request/app.py", "_deliverers.handoff"): (AP_REQUEST, HANDOFFS),
    ("services/approval_request/app.py", "_deliverers.withdrawal"): (AP_REQUEST, WITHDRAWALS),
    ("services/approval_request/app.py", "_deliverers.reassignment"): (
        AP_REQUEST,
        REASSIGNMENTS,
    ),
    ("services/approval_request/publisher.py", "WorkPublisher.publish"): (
        AP_REQUEST,
        HANDOFFS + WITHDRAWALS + REASSIGNMENTS,
    ),
    ("services/approval_processing/clients.py", "submit_decision"): (
        AP_REQUEST,
        (
            "a decision on the step awaiting it",
            "a decision with a comment on the step awaiting it",
            "a decision on a request that does not exist",
            "a decision on a step that is not the one awaiting a decision",
        ),
    ),
    ("services/approval_processing/clients.py", "waiting_steps"): (
        AP_REQUEST,
        (
            "a first page of the steps awaiting a decision",
            "a page after the last step awaiting a decision",
        ),
    ),
    ("services/approval_processing/clients.py", "notify_assigned"): (
        AP_NOTIFICATION,
        ("an approval_assigned notification",),
    ),
    # Passes /process to the replica holding the approver (docs/decisions.md D22).
    ("services/approval_processing/replicas.py", "forward"): (
        AP_AP,
        (
            "a forwarded read of an approver's inbox with nothing waiting",
            "a forwarded decision on a request the approver does not hold",
        ),
    ),
    # Parks a received hand-off for a later retry: the same body comes back to its partition.
    ("services/approval_processing/consumer.py", "WorkConsumer._tell_approver"): (
        AP_REQUEST,
        HANDOFFS,
    ),
    # Moves a hand-off (or withdrawal, or reassignment) left in the unpartitioned
    # approval.work to its partition, unchanged.
    ("services/approval_processing/consumer.py", "WorkConsumer._move_to_partition"): (
        AP_REQUEST,
        HANDOFFS + WITHDRAWALS + REASSIGNMENTS,
    ),
    ("services/notification/router.py", "notify"): (CLIENT_NOTIFICATION, PUSHES),
    # Hands each entry read from the stream to the hub, which queues the pushes.
    ("services/notification/stream.py", "NotificationStream._deliver"): (
        CLIENT_NOTIFICATION,
        PUSHES,
    ),
    # Appends to the notification stream every replica reads (docs/decisions.md D20): the
    # entry of a /notify body, or an empty catch-up marker that readers skip (and that has
    # no body to pin).
    ("services/notification/stream.py", "NotificationStream._send"): (
        NS_NS,
        STREAM_ENTRIES,
    ),
    ("services/notification/hub.py", "Subscription._push"): (CLIENT_NOTIFICATION, PUSHES),
}


class _Sends(ast.NodeVisitor):
    def __init__(self) -> None:
        self.scope: list[str] = []
        self.found: set[str] = set()

    def _enter(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _enter

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in SENDS:
            self.found.add(".".join(self.scope) or "<module>")
        self.generic_visit(node)


def call_sites() -> Iterator[tuple[str, str]]:
    for path in sorted((REPO / "services").rglob("*.py")):
        module = path.relative_to(REPO).as_posix()
        if module == "services/common/http.py":
            continue  # where request_json itself lives
        visitor = _Sends()
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=module))
        for function in sorted(visitor.found):
            yield module, function


def test_every_call_to_another_service_is_covered_by_a_contract() -> None:
    found = set(call_sites())

    uncovered = sorted(found - COVERED.keys())
    stale = sorted(COVERED.keys() - found)

    assert not uncovered, f"calls to other services with no contract listed: {uncovered}"
    assert not stale, f"listed calls that no longer exist: {stale}"


def test_every_listed_interaction_is_in_a_committed_pact() -> None:
    missing = []
    for pact_file, descriptions in COVERED.values():
        path = PACTS / pact_file
        assert path.exists(), f"{pact_file} is not in {PACTS}"
        pact = json.loads(path.read_text(encoding="utf-8"))
        known = {interaction["description"] for interaction in pact["interactions"]}
        missing += [(pact_file, d) for d in descriptions if d not in known]

    assert not missing, f"interactions listed but not in the pacts: {missing}"
