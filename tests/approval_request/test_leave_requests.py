"""A LEAVE request reserves its days at employee-service before it is stored: the server's
count is what is stored, its refusals are the answer and store nothing, and a reservation
whose request is never stored does not keep the days (docs/decisions.md D24). On the
session's real services; 2035 is these tests' year (no test puts a holiday in it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.apps import get_service, start_app, stop_process, wait_ready
from services.approval_request import service
from services.approval_request.clients.employee import LeaveReservations
from services.approval_request.repository import ApprovalRepository
from services.approval_request.schemas import ApprovalCreate
from services.common import create_http_session
from services.common.auth import AuthSettings, ServiceCredentials
from tests.employee.leave_calls import RESERVATIONS, balance, reservation
from tests.support import factories
from tests.support.mongo import counted_database
from tests.support.pipeline import eventually
from tests.support.stack import Stack, free_port

# Friday 2 to Tuesday 6 March 2035: three working days over a weekend.
FRIDAY, TUESDAY = "2035-03-02", "2035-03-06"
# Request ids of a private database, far from every other test's (the session's
# employee-service database is fresh for each session).
PRIVATE_IDS = 9_000_001


@pytest.fixture
async def people(client: httpx.AsyncClient, employee_url: str) -> list[int]:
    return await factories.employees(client, employee_url, 2)


async def _mine(client: httpx.AsyncClient, approvals_url: str, requester: int) -> list[Any]:
    listed = await client.get(f"{approvals_url}/approvals", params={"requesterId": requester})
    assert listed.status_code == 200, listed.text
    return list(listed.json())


async def test_a_leave_request_without_days_is_stored_with_the_servers_count(
    client: httpx.AsyncClient, approvals_url: str, employee_url: str, people: list[int]
) -> None:
    requester, approver = people
    body = factories.leave_body(requester, [approver], startDate=FRIDAY, endDate=TUESDAY)
    del body["leaveInfo"]["days"]
    half = factories.leave_body(
        requester, [approver], startDate="2035-03-07", endDate="2035-03-07", halfDay="pm"
    )
    del half["leaveInfo"]["days"]
    half["leaveInfo"]["leaveType"] = "annual"

    ids = [await factories.approval(client, approvals_url, b) for b in (body, half)]

    stored = [await client.get(f"{approvals_url}/approvals/{i}") for i in ids]
    infos = [s.json()["leaveInfo"] for s in stored]
    assert [(i["days"], i.get("halfDay"), i["leaveType"]) for i in infos] == [
        (3, None, "ANNUAL"),
        (0.5, "pm", "ANNUAL"),
    ]
    assert (await balance(client, employee_url, requester, 2035))["reserved"] == 3.5


@pytest.mark.parametrize(
    ("leave", "status", "detail"),
    [
        ({"days": 5}, 400, "days does not match the dates (3 working days)"),
        ({"leaveType": "vacation"}, 400, "Unknown leave type VACATION"),
        ({"endDate": "2035-03-26"}, 400, "Insufficient leave balance for ANNUAL: 15 days left"),
        (
            {"startDate": "2035-03-03", "endDate": "2035-03-04"},
            400,
            "Leave covers no working days",
        ),
    ],
    ids=["wrong-days", "unknown-type", "beyond-balance", "weekend"],
)
async def test_a_refused_leave_answers_employee_services_text_and_stores_nothing(
    client: httpx.AsyncClient,
    approvals_url: str,
    employee_url: str,
    people: list[int],
    leave: dict[str, Any],
    status: int,
    detail: str,
) -> None:
    requester, approver = people
    body = factories.leave_body(requester, [approver], startDate=FRIDAY, endDate=TUESDAY)
    body["leaveInfo"].pop("days")
    body["leaveInfo"] |= leave

    response = await client.post(f"{approvals_url}/approvals", json=body)

    assert (response.status_code, response.json()) == (status, {"detail": detail})
    assert await _mine(client, approvals_url, requester) == []
    assert (await balance(client, employee_url, requester, 2035))["reserved"] == 0


async def test_a_leave_overlapping_a_pending_one_is_a_409_naming_it(
    client: httpx.AsyncClient, approvals_url: str, people: list[int]
) -> None:
    requester, approver = people
    first = await factories.approval(
        client,
        approvals_url,
        factories.leave_body(requester, [approver], startDate=FRIDAY, endDate=TUESDAY),
    )
    overlapping = factories.leave_body(
        requester, [approver], startDate=TUESDAY, endDate="2035-03-07", days=2
    )

    response = await client.post(f"{approvals_url}/approvals", json=overlapping)

    assert (response.status_code, response.json()) == (
        409,
        {"detail": f"Leave overlaps request {first}"},
    )
    assert [d["requestId"] for d in await _mine(client, approvals_url, requester)] == [first]


@pytest.fixture
async def reservations(employee_url: str) -> AsyncIterator[LeaveReservations]:
    """employee-service's reservations, called as approval-request-service calls them."""
    credentials = ServiceCredentials(AuthSettings(), "approval-request-service")
    http = create_http_session(timeout_seconds=10, authorization=credentials.header)
    try:
        yield LeaveReservations(http, employee_url)
    finally:
        await http.close()


async def _nobody_missing(ids: object) -> list[int]:
    return []


async def test_a_reservation_whose_request_id_was_taken_meanwhile_is_released(
    client: httpx.AsyncClient,
    employee_url: str,
    people: list[int],
    reservations: LeaveReservations,
) -> None:
    """The id handed out was taken by another process (its block was handed out twice):
    the request is stored under another id, and the first id's reservation freed."""
    requester, approver = people
    taken = PRIVATE_IDS
    async with counted_database("leave_ids") as db:
        repository = ApprovalRepository(db.database)
        await repository.ensure_indexes()
        await db.database["counters"].insert_one({"_id": "approvals", "seq": taken - 1})
        await db.database["approvals"].insert_one({"requestId": taken, "idBucket": 0})
        body = factories.leave_body(requester, [approver], startDate=FRIDAY, endDate=TUESDAY)

        stored = await service.create(
            repository=repository,
            find_missing=_nobody_missing,
            body=ApprovalCreate.model_validate(body),
            leaves=reservations,
        )

    assert stored.request_id != taken
    lost = await client.get(f"{employee_url}{RESERVATIONS}/{taken}")
    assert lost.json()["status"] == "released"
    kept = await client.get(f"{employee_url}{RESERVATIONS}/{stored.request_id}")
    assert (kept.json()["status"], kept.json()["days"]) == ("tentative", 3)
    assert (await balance(client, employee_url, requester, 2035))["reserved"] == 3


@pytest.fixture(scope="module")
def short_expiry_employee(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An employee-service process whose tentative reservations expire after two seconds,
    on the session stack's database."""
    env = {**stack.env_for("employee"), "EMPLOYEE_RESERVATION_TTL_SECONDS": "2"}
    port = free_port()
    proc = start_app(
        get_service("employee"),
        port=port,
        extra_env=env,
        log_dir=Path(tmp_path_factory.mktemp("short-expiry")),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=60, proc=proc)
        yield url
    finally:
        stop_process(proc)


async def test_a_reservation_whose_request_was_never_stored_stops_blocking_when_it_expires(
    client: httpx.AsyncClient,
    approvals_url: str,
    employee_url: str,
    people: list[int],
    short_expiry_employee: str,
) -> None:
    """As if approval-request-service died between reserving and storing: the reservation
    is never held, so it expires, and a LEAVE request for those days is then accepted."""
    requester, approver = people
    orphan = reservation(requester, FRIDAY, TUESDAY)
    made = await client.post(f"{short_expiry_employee}{RESERVATIONS}", json=orphan)
    assert made.status_code == 201, made.text
    body = factories.leave_body(requester, [approver], startDate=FRIDAY, endDate=TUESDAY)
    blocked = await client.post(f"{approvals_url}/approvals", json=body)
    assert blocked.json() == {"detail": f"Leave overlaps request {orphan['requestId']}"}

    async def accepted() -> httpx.Response | None:
        answer = await client.post(f"{approvals_url}/approvals", json=body)
        return answer if answer.status_code == 201 else None

    created = await eventually(accepted, timeout=20, what="the orphan reservation to expire")

    request_id = created.json()["requestId"]
    assert (await balance(client, employee_url, requester, 2035))["reserved"] == 3
    assert [d["requestId"] for d in await _mine(client, approvals_url, requester)] == [request_id]
