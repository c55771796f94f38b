"""The employee directory (GET /employees/directory) on real MariaDB through the running
employee-service: how any signed-in person finds a colleague by name."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.support import factories
from tests.support.auth import as_user


def _tag() -> str:
    """A string no other test's names hold, so each test sees only its own people."""
    return "q" + uuid.uuid4().hex[:10]


async def test_directory_finds_names_by_substring_in_any_case_ordered_by_name_then_id(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    tag = _tag()
    second = await factories.employee(client, employee_url, name=f"Bora {tag}")
    first = await factories.employee(client, employee_url, name=f"ahn {tag.upper()}")
    twin = await factories.employee(client, employee_url, name=f"Bora {tag}")
    await factories.employee(client, employee_url, name=f"Bora {_tag()}")
    found = await client.get(f"{employee_url}/employees/directory", params={"q": tag})
    assert found.status_code == 200, found.text
    assert [e["id"] for e in found.json()] == [first["id"], second["id"], twin["id"]]


async def test_directory_shows_only_id_name_department_and_position(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    tag = _tag()
    created = await factories.employee(
        client, employee_url, name=f"김 {tag}", department="인사팀", position="과장"
    )
    found = await client.get(f"{employee_url}/employees/directory", params={"q": tag})
    assert found.json() == [
        {"id": created["id"], "name": f"김 {tag}", "department": "인사팀", "position": "과장"}
    ]


async def test_directory_leaves_deactivated_employees_out(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    tag = _tag()
    staying = await factories.employee(client, employee_url, name=f"stays {tag}")
    leaving = await factories.employee(client, employee_url, name=f"leaves {tag}")
    deleted = await client.delete(f"{employee_url}/employees/{leaving['id']}")
    assert deleted.status_code == 204
    found = await client.get(f"{employee_url}/employees/directory", params={"q": tag})
    assert [e["id"] for e in found.json()] == [staying["id"]]


async def test_directory_takes_percent_and_underscore_literally(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    tag = _tag()
    literal = await factories.employee(client, employee_url, name=f"{tag} 100%_done")
    await factories.employee(client, employee_url, name=f"{tag} 100 xdone")
    found = await client.get(f"{employee_url}/employees/directory", params={"q": f"{tag} 100%_"})
    assert [e["id"] for e in found.json()] == [literal["id"]]


async def test_directory_is_open_to_an_employee_without_the_admin_role(
    anonymous: httpx.AsyncClient, client: httpx.AsyncClient, employee_url: str
) -> None:
    tag = _tag()
    me = await factories.employee(client, employee_url, name=f"me {tag}")
    colleague = await factories.employee(client, employee_url, name=f"colleague {tag}")
    found = await anonymous.get(
        f"{employee_url}/employees/directory", params={"q": tag}, headers=as_user(me["id"])
    )
    assert found.status_code == 200, found.text
    assert [e["id"] for e in found.json()] == [colleague["id"], me["id"]]


async def test_directory_refuses_a_caller_without_a_token(
    anonymous: httpx.AsyncClient, employee_url: str
) -> None:
    response = await anonymous.get(f"{employee_url}/employees/directory")
    assert response.status_code == 401


async def test_directory_limit_defaults_to_50_and_caps_the_answer(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    await factories.employees(client, employee_url, 51)
    everyone = await client.get(f"{employee_url}/employees/directory")
    assert len(everyone.json()) == 50
    two = await client.get(f"{employee_url}/employees/directory", params={"limit": 2})
    assert len(two.json()) == 2
    most = await client.get(f"{employee_url}/employees/directory", params={"limit": 200})
    assert most.status_code == 200


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"limit": "many"}, {"q": "가" * 101}],
    ids=["limit-0", "limit-201", "limit-not-a-number", "q-too-long"],
)
async def test_directory_refuses_a_bad_query_with_a_422_saying_which(
    client: httpx.AsyncClient, employee_url: str, params: dict[str, object]
) -> None:
    response = await client.get(f"{employee_url}/employees/directory", params=params)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert error["loc"] == ["query", next(iter(params))]
