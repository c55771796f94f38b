"""employee-service's provider states. Most are set by its own test-mode hook
(``services/employee/testing.py``); leave reserved, held or approved for a request is
made here through its real reservation calls, the way approval-request-service makes it
(the same rows, no second way of writing them)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from contracts.support import Provider

RESERVATIONS = "/leaves/internal/reservations"
RESERVED = re.compile(
    r"employee (?P<employee>\d+) has leave from (?P<start>\S+) to (?P<end>\S+)"
    r" (?P<status>reserved|held|approved) for approval request (?P<request>\d+)"
)


def employee_states(provider: Provider, authorization: str) -> Callable[..., None]:
    """The verifier's state handler for ``provider`` (employee-service); ``authorization``
    is a service token, which the reservation calls require."""

    def hook(client: httpx.Client, state: str) -> None:
        answer = client.post(provider.states_url, json={"state": state, "action": "setup"})
        if answer.status_code != 200:
            raise RuntimeError(f"state {state!r}: {answer.status_code} {answer.text}")

    def reserved(client: httpx.Client, found: re.Match[str]) -> None:
        request_id = int(found["request"])
        hook(client, f"employee {found['employee']} exists")
        hook(client, f"no leave is recorded for approval request {request_id}")
        body = {
            "requestId": request_id,
            "employeeId": int(found["employee"]),
            "leaveType": "ANNUAL",
            "startDate": found["start"],
            "endDate": found["end"],
        }
        answer = client.post(f"{provider.url}{RESERVATIONS}", json=body)
        if answer.status_code != 201:
            raise RuntimeError(f"reservation: {answer.status_code} {answer.text}")
        if found["status"] in ("held", "approved"):
            answer = client.post(f"{provider.url}{RESERVATIONS}/{request_id}/hold")
            if answer.status_code != 200:
                raise RuntimeError(f"hold: {answer.status_code} {answer.text}")
        if found["status"] == "approved":
            confirmation = {**body, "days": answer.json()["days"]}
            answer = client.post(f"{provider.url}/leaves/internal/approved", json=confirmation)
            if answer.status_code != 200:
                raise RuntimeError(f"approval: {answer.status_code} {answer.text}")

    def handle(state: str, action: str, parameters: dict[str, Any] | None) -> None:
        if action == "teardown" or not state:
            return
        with httpx.Client(headers={"Authorization": authorization}, timeout=10) as client:
            found = RESERVED.fullmatch(state)
            if found is None:
                hook(client, state)
            else:
                reserved(client, found)

    return handle
