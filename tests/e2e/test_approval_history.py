"""Every request's history end to end: what happened to it, by whom, in order, written by
the same write as each change and shown by the request and in lists (in both layouts)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import factories, layouts
from tests.support.pipeline import decide, final_status, item_arrives

pytestmark = layouts.BOTH


def events(doc: dict[str, Any]) -> list[tuple[str, int, int | None]]:
    return [(e["event"], e["actor"], e.get("step")) for e in doc["history"]]


async def test_a_two_step_approval_records_each_creation_assignment_and_decision(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [first, second])
    )
    assert (await decide(client, processing_url, first, request_id)).status_code == 200
    await item_arrives(client, processing_url, second, request_id)
    approved = await client.post(
        f"{processing_url}/process/{second}/{request_id}",
        json={"action": "approve", "comment": "확인"},
    )
    assert approved.status_code == 200, approved.text

    doc = await final_status(client, approvals_url, request_id, "approved")
    assert events(doc) == [
        ("created", requester, None),
        ("assigned", requester, 1),
        ("approved", first, 1),
        ("assigned", first, 2),
        ("approved", second, 2),
    ]
    assert doc["history"][-1]["comment"] == "확인"
    assert all("comment" not in e for e in doc["history"][:-1])
    at = [e["at"] for e in doc["history"]]
    assert at == sorted(at)
    assert at[0] == doc["createdAt"]
    listed = await client.get(f"{approvals_url}/approvals", params={"requesterId": requester})
    assert listed.status_code == 200
    assert [d["history"] for d in listed.json()] == [doc["history"]]


async def test_a_rejection_is_the_last_entry_and_keeps_its_comment(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [first, second])
    )
    await decide(client, processing_url, first, request_id, "reject")

    doc = await final_status(client, approvals_url, request_id, "rejected")
    assert events(doc) == [
        ("created", requester, None),
        ("assigned", requester, 1),
        ("rejected", first, 1),
    ]
    assert all("comment" not in e and "reason" not in e for e in doc["history"])
