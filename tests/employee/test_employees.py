"""Employee CRUD on real MariaDB through the running employee-service."""

from __future__ import annotations

import httpx
import pytest

from tests.support import factories


async def test_created_employee_round_trips_korean_text(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    body = {"name": "김철수", "department": "인사팀", "position": "과장"}
    created = await client.post(f"{employee_url}/employees", json=body)
    assert created.status_code == 201
    employee = created.json()
    assert {k: employee[k] for k in body} == body
    assert set(employee) == {"id", "name", "department", "position", "created_at"}
    fetched = await client.get(f"{employee_url}/employees/{employee['id']}")
    assert fetched.json() == employee


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "department": "개발", "position": "사원"},
        {"name": "   ", "department": "개발", "position": "사원"},
        {"name": "가" * 101, "department": "개발", "position": "사원"},
        {"name": "김", "department": "개발"},
        {"name": 3, "department": "개발", "position": "사원"},
        {"name": "김", "department": "개발", "position": "사원", "salary": 1},
    ],
    ids=["blank", "whitespace", "too-long", "missing-field", "wrong-type", "unknown-field"],
)
async def test_invalid_employee_is_refused_with_422(
    client: httpx.AsyncClient, employee_url: str, body: dict[str, object]
) -> None:
    before = await client.get(f"{employee_url}/employees", params={"limit": 500})
    response = await client.post(f"{employee_url}/employees", json=body)
    assert response.status_code == 422
    assert "detail" in response.json()
    after = await client.get(f"{employee_url}/employees", params={"limit": 500})
    assert len(after.json()) == len(before.json())


async def test_non_json_body_is_a_422_not_a_500(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    response = await client.post(
        f"{employee_url}/employees",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422


async def test_unknown_employee_is_404_with_the_spec_text(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"name": "x"}} if method == "PATCH" else {}
        response = await client.request(method, f"{employee_url}/employees/99999999", **kwargs)
        assert response.status_code == 404
        assert response.json() == {"detail": "Employee not found"}


async def test_list_is_ordered_by_id_and_pages(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    ids = await factories.employees(client, employee_url, 3)
    everyone = (await client.get(f"{employee_url}/employees", params={"limit": 500})).json()
    listed = [e["id"] for e in everyone]
    assert listed == sorted(listed)
    start = listed.index(ids[0])
    page = await client.get(f"{employee_url}/employees", params={"limit": 2, "offset": start})
    assert [e["id"] for e in page.json()] == ids[:2]


async def test_ids_fetches_several_at_once_and_skips_unknown(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    ids = await factories.employees(client, employee_url, 3)
    wanted = ",".join(map(str, [ids[2], ids[0], 99999999]))
    response = await client.get(f"{employee_url}/employees", params={"ids": wanted})
    assert [e["id"] for e in response.json()] == [ids[0], ids[2]]


@pytest.mark.parametrize("ids", ["a,b", "0", "", "1,-2"])
async def test_malformed_ids_are_a_400(
    client: httpx.AsyncClient, employee_url: str, ids: str
) -> None:
    response = await client.get(f"{employee_url}/employees", params={"ids": ids})
    assert response.status_code == 400
    assert "ids" in response.json()["detail"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"offset": -1}])
async def test_out_of_range_paging_is_a_422(
    client: httpx.AsyncClient, employee_url: str, params: dict[str, int]
) -> None:
    response = await client.get(f"{employee_url}/employees", params=params)
    assert response.status_code == 422


async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    employee = await factories.employee(client, employee_url)
    response = await client.patch(
        f"{employee_url}/employees/{employee['id']}", json={"position": "팀장"}
    )
    assert response.status_code == 200
    assert response.json() == {**employee, "position": "팀장"}


@pytest.mark.parametrize("body", [{"name": None}, {"name": ""}, {"grade": 3}])
async def test_invalid_patch_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, employee_url: str, body: dict[str, object]
) -> None:
    employee = await factories.employee(client, employee_url)
    url = f"{employee_url}/employees/{employee['id']}"
    assert (await client.patch(url, json=body)).status_code == 422
    assert (await client.get(url)).json() == employee


async def test_delete_deactivates_but_keeps_history(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    employee = await factories.employee(client, employee_url)
    eid = employee["id"]
    assert (
        await client.post(f"{employee_url}/attendance/check-in", json={"employee_id": eid})
    ).status_code == 200
    assert (await client.delete(f"{employee_url}/employees/{eid}")).status_code == 204

    assert (await client.get(f"{employee_url}/employees/{eid}")).status_code == 404
    assert (await client.delete(f"{employee_url}/employees/{eid}")).status_code == 404
    listed = await client.get(f"{employee_url}/employees", params={"ids": str(eid)})
    assert listed.json() == []
    history = await client.get(f"{employee_url}/attendance/me", params={"employeeId": eid})
    assert len(history.json()) == 1
    again = await client.post(f"{employee_url}/attendance/check-in", json={"employee_id": eid})
    assert again.json() == {"detail": "Employee not found"}
