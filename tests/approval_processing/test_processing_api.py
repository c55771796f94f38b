"""approval-processing-service's HTTP contract (spec section 4)."""

from __future__ import annotations

import httpx
import pytest

from tests.support import factories
from tests.support.pipeline import item_arrives


async def test_empty_inbox_is_an_empty_list(client: httpx.AsyncClient, processing_url: str) -> None:
    response = await client.get(f"{processing_url}/process/99999998")
    assert response.status_code == 200
    assert response.json() == []


async def test_deciding_an_item_that_is_not_there_is_404(
    client: httpx.AsyncClient, processing_url: str
) -> None:
    response = await client.post(f"{processing_url}/process/99999998/1", json={"action": "approve"})
    assert response.status_code == 404
    assert response.json() == {"detail": "No pending approval found for this approver"}


@pytest.mark.parametrize("body", [{"action": "approved"}, {"action": "APPROVE"}, {}, {"x": 1}])
async def test_any_other_action_is_422_and_the_item_stays(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    body: dict[str, str],
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    response = await client.post(f"{processing_url}/process/{approver}/{request_id}", json=body)
    assert response.status_code == 422
    await item_arrives(client, processing_url, approver, request_id)


async def test_another_approver_cannot_decide_someone_elses_item(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver, other = await factories.employees(client, employee_url, 3)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    response = await client.post(
        f"{processing_url}/process/{other}/{request_id}", json={"action": "approve"}
    )
    assert response.status_code == 404


async def test_limit_and_offset_page_through_the_inbox_oldest_first(
    client: httpx.AsyncClient, employee_url: str, approvals_url: str, processing_url: str
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    created = [
        await factories.approval(
            client, approvals_url, factories.approval_body(requester, [approver])
        )
        for _ in range(3)
    ]
    for request_id in created:
        await item_arrives(client, processing_url, approver, request_id)
    url = f"{processing_url}/process/{approver}"

    async def page(**params: int) -> list[int]:
        response = await client.get(url, params=params)
        assert response.status_code == 200, response.text
        return [item["requestId"] for item in response.json()]

    assert await page() == created
    assert await page(limit=2) == created[:2]
    assert await page(limit=2, offset=2) == created[2:]
    assert await page(offset=3) == []
    for wrong in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        assert (await client.get(url, params=wrong)).status_code == 422
