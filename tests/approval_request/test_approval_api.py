"""approval-request-service's public and internal HTTP contract (spec section 2)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from tests.support import factories
from tests.support.settled import outbox_drained
from tests.support.stack import MONGO_URL, TEST_DB, Stack


@pytest.fixture
async def people(client: httpx.AsyncClient, employee_url: str) -> list[int]:
    return await factories.employees(client, employee_url, 3)


async def _refused(
    client: httpx.AsyncClient, approvals_url: str, body: dict[str, Any], status: int
) -> httpx.Response:
    response = await client.post(f"{approvals_url}/approvals", json=body)
    assert response.status_code == status, response.text
    stored = await client.get(
        f"{approvals_url}/approvals", params={"requesterId": body["requesterId"]}
    )
    assert stored.json() == [], "a refused request must store nothing"
    return response


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"requestType": "LEAVE"}, "leaveInfo is required when requestType is LEAVE"),
        (
            {"steps": [{"step": 2, "approverId": 0}]},
            "steps must start at 1 and be consecutive in ascending order",
        ),
        (
            {"steps": [{"step": 1, "approverId": 0}, {"step": 3, "approverId": 0}]},
            "steps must start at 1 and be consecutive in ascending order",
        ),
        (
            {"steps": [{"step": 2, "approverId": 0}, {"step": 1, "approverId": 0}]},
            "steps must start at 1 and be consecutive in ascending order",
        ),
    ],
    ids=["leave-without-info", "starts-at-2", "gap", "descending"],
)
async def test_business_rule_violations_are_400_with_the_spec_text(
    client: httpx.AsyncClient,
    approvals_url: str,
    people: list[int],
    change: dict[str, Any],
    detail: str,
) -> None:
    requester, approver, _ = people
    body = {**factories.approval_body(requester, [approver]), **change}
    for step in body["steps"]:
        step["approverId"] = step["approverId"] or approver
    response = await _refused(client, approvals_url, body, 400)
    assert response.json() == {"detail": detail}


async def test_requester_cannot_approve_their_own_request(
    client: httpx.AsyncClient,
    approvals_url: str,
    people: list[int],
) -> None:
    requester, approver, _ = people
    body = factories.approval_body(requester, [approver, requester])
    response = await _refused(client, approvals_url, body, 400)
    assert response.json() == {"detail": "requester cannot approve their own request"}


async def test_unknown_employee_is_named_in_the_400(
    client: httpx.AsyncClient,
    approvals_url: str,
    people: list[int],
) -> None:
    requester, approver, _ = people
    body = factories.approval_body(requester, [approver, 99999991])
    response = await _refused(client, approvals_url, body, 400)
    assert response.json() == {"detail": "Employee 99999991 not found in Employee Service"}


async def test_leave_ending_before_it_starts_is_a_400(
    client: httpx.AsyncClient,
    approvals_url: str,
    people: list[int],
) -> None:
    requester, approver, _ = people
    body = factories.leave_body(requester, [approver], startDate="2027-02-03", endDate="2027-02-01")
    response = await _refused(client, approvals_url, body, 400)
    assert "endDate" in response.json()["detail"]


@pytest.mark.parametrize(
    "change",
    [
        {"title": ""},
        {"title": "가" * 201},
        {"content": "x" * 5001},
        {"steps": []},
        {"steps": [{"step": n, "approverId": 1} for n in range(1, 22)]},
        {"requestType": "VACATION"},
        {"requesterId": "me"},
        {
            "leaveInfo": {
                "startDate": "2027-01-01",
                "endDate": "2027-01-01",
                "days": 0,
                "leaveType": "ANNUAL",
            },
            "requestType": "LEAVE",
        },
    ],
    ids=[
        "blank-title",
        "long-title",
        "long-content",
        "no-steps",
        "21-steps",
        "bad-type",
        "bad-requester",
        "zero-days",
    ],
)
async def test_malformed_requests_are_422(
    client: httpx.AsyncClient, approvals_url: str, people: list[int], change: dict[str, Any]
) -> None:
    requester, approver, _ = people
    body = {**factories.approval_body(requester, [approver]), **change}
    if change.get("requesterId") == "me":
        response = await client.post(f"{approvals_url}/approvals", json=body)
        assert response.status_code == 422
        return
    await _refused(client, approvals_url, body, 422)


async def test_unknown_request_is_404_with_the_spec_text(
    client: httpx.AsyncClient, approvals_url: str
) -> None:
    response = await client.get(f"{approvals_url}/approvals/99999999")
    assert response.status_code == 404
    assert response.json() == {"detail": "Approval request not found"}


async def test_list_is_newest_first_with_filters_and_paging(
    client: httpx.AsyncClient,
    approvals_url: str,
    people: list[int],
) -> None:
    requester, first, second = people
    ids = []
    for approvers in ([first], [second], [first, second]):
        created = await client.post(
            f"{approvals_url}/approvals", json=factories.approval_body(requester, approvers)
        )
        ids.append(created.json()["requestId"])
    url = f"{approvals_url}/approvals"
    mine = (await client.get(url, params={"requesterId": requester})).json()
    assert [d["requestId"] for d in mine] == ids[::-1]
    assert set(mine[0]) == {
        "requestId",
        "requesterId",
        "title",
        "content",
        "steps",
        "finalStatus",
        "requestType",
        "leaveInfo",
        "createdAt",
        "updatedAt",
        "history",
    }
    for_second = (await client.get(url, params={"approverId": second})).json()
    assert [d["requestId"] for d in for_second] == [ids[2], ids[1]]
    page = (
        await client.get(url, params={"requesterId": requester, "limit": 1, "offset": 1})
    ).json()
    assert [d["requestId"] for d in page] == [ids[1]]
    pending = (
        await client.get(url, params={"requesterId": requester, "finalStatus": "pending"})
    ).json()
    assert {d["requestId"] for d in pending} == set(ids)
    assert (await client.get(url, params={"limit": 501})).status_code == 422
    assert (await client.get(url, params={"finalStatus": "done"})).status_code == 422


async def test_result_for_unknown_request_is_404(
    client: httpx.AsyncClient, approvals_url: str
) -> None:
    response = await client.post(
        f"{approvals_url}/approvals/internal/result",
        json={"requestId": 99999999, "step": 1, "approverId": 1, "status": "approved"},
    )
    assert response.status_code == 404
    assert response.json() == {"detail": "Approval request not found"}


async def test_result_for_a_step_that_does_not_match_is_400(
    client: httpx.AsyncClient,
    approvals_url: str,
    people: list[int],
) -> None:
    requester, approver, other = people
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    url = f"{approvals_url}/approvals/internal/result"
    for step, who in ((1, other), (2, approver)):
        response = await client.post(
            url,
            json={"requestId": request_id, "step": step, "approverId": who, "status": "approved"},
        )
        assert response.status_code == 400
        assert response.json() == {"detail": "Matching approval step not found"}


async def test_result_for_a_step_not_yet_awaiting_is_409(
    client: httpx.AsyncClient,
    approvals_url: str,
    people: list[int],
) -> None:
    requester, first, second = people
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [first, second])
    )
    response = await client.post(
        f"{approvals_url}/approvals/internal/result",
        json={"requestId": request_id, "step": 2, "approverId": second, "status": "approved"},
    )
    assert response.status_code == 409
    doc = (await client.get(f"{approvals_url}/approvals/{request_id}")).json()
    assert [s["status"] for s in doc["steps"]] == ["pending", "pending"]


@pytest.mark.parametrize("status", ["approve", "maybe", ""])
async def test_result_with_an_unknown_status_is_422(
    client: httpx.AsyncClient, approvals_url: str, status: str
) -> None:
    response = await client.post(
        f"{approvals_url}/approvals/internal/result",
        json={"requestId": 1, "step": 1, "approverId": 1, "status": status},
    )
    assert response.status_code == 422


async def test_a_request_stored_before_histories_existed_reads_with_an_empty_one(
    stack: Stack, client: httpx.AsyncClient, approvals_url: str, people: list[int]
) -> None:
    requester, approver, _ = people
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    # The relay's write of the delivered hand-off would put the history back (FerretDB
    # rewrites the whole document it read): unset it once nothing more is in flight.
    await outbox_drained(request_id)
    with MongoClient(MONGO_URL) as mongo:
        mongo[TEST_DB]["approvals"].update_one(
            {"requestId": request_id}, {"$unset": {"history": ""}}
        )

    read = await client.get(f"{approvals_url}/approvals/{request_id}")
    listed = await client.get(f"{approvals_url}/approvals", params={"requesterId": requester})

    assert read.status_code == 200
    assert read.json()["history"] == []
    assert [d["history"] for d in listed.json()] == [[]]


async def test_list_filters_by_request_type(
    client: httpx.AsyncClient, approvals_url: str, people: list[int]
) -> None:
    requester, approver, _ = people
    general = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    leave = await factories.approval(
        client, approvals_url, factories.leave_body(requester, [approver])
    )
    url = f"{approvals_url}/approvals"

    async def listed(request_type: str) -> list[int]:
        response = await client.get(
            url, params={"requesterId": requester, "requestType": request_type}
        )
        assert response.status_code == 200, response.text
        return [d["requestId"] for d in response.json()]

    assert await listed("GENERAL") == [general]
    assert await listed("LEAVE") == [leave]
    assert (await client.get(url, params={"requestType": "leave"})).status_code == 422


async def test_list_filters_by_a_creation_range_from_inclusive_to_exclusive(
    client: httpx.AsyncClient, approvals_url: str, people: list[int]
) -> None:
    requester, approver, _ = people
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    created_at = (await client.get(f"{approvals_url}/approvals/{request_id}")).json()["createdAt"]
    created = datetime.fromisoformat(created_at)
    day = created.date()
    url = f"{approvals_url}/approvals"

    async def listed(**window: str) -> list[int]:
        response = await client.get(url, params={"requesterId": requester, **window})
        assert response.status_code == 200, response.text
        return [d["requestId"] for d in response.json()]

    assert await listed(createdFrom=created_at) == [request_id]
    assert await listed(createdTo=created_at) == []
    assert await listed(createdFrom=str(day), createdTo=str(day + timedelta(days=1))) == [
        request_id
    ]
    assert await listed(createdFrom=str(day + timedelta(days=1))) == []
    assert await listed(createdTo=str(day)) == []
    # The same instant named in another zone, and a date-time without one (UTC).
    in_seoul = created.astimezone(timezone(timedelta(hours=9))).isoformat()
    assert await listed(createdFrom=in_seoul) == [request_id]
    naive = (created + timedelta(seconds=1)).replace(tzinfo=None).isoformat()
    assert await listed(createdTo=naive) == [request_id]


async def test_a_creation_range_ending_before_it_starts_is_400(
    client: httpx.AsyncClient, approvals_url: str
) -> None:
    url = f"{approvals_url}/approvals"
    reversed_range = await client.get(
        url, params={"createdFrom": "2026-12-02", "createdTo": "2026-12-01T23:59:59Z"}
    )
    assert reversed_range.status_code == 400
    assert reversed_range.json() == {"detail": "createdFrom must not be after createdTo"}
    empty = await client.get(url, params={"createdFrom": "2026-12-01", "createdTo": "2026-12-01"})
    assert (empty.status_code, empty.json()) == (200, [])
    assert (await client.get(url, params={"createdFrom": "yesterday"})).status_code == 422
    for far in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "1899-12-31"):
        refused = await client.get(url, params={"createdTo": far})
        assert refused.status_code == 400, refused.text
        assert refused.json() == {"detail": "createdTo must be in the years 1900-2999"}
