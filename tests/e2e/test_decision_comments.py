"""An approver's comment on a decision, end to end: sent with the action, stored on the step
as sent, and told to the requester with the result (in both layouts, so a call forwarded
between approval-processing replicas carries it too)."""

from __future__ import annotations

import httpx

from tests.support import factories, layouts
from tests.support.pipeline import document, final_status, item_arrives, listening

pytestmark = layouts.BOTH

KOREAN = "예산 초과로 반려합니다 — 다음 분기에 다시 올려 주세요 🙏\n감사합니다."


async def test_a_korean_comment_reaches_the_step_and_the_requesters_notification(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
    notification_url: str,
) -> None:
    requester, first, second = await factories.employees(client, employee_url, 3)
    async with listening(notification_url, requester) as r_ws:
        request_id = await factories.approval(
            client, approvals_url, factories.approval_body(requester, [first, second])
        )
        await item_arrives(client, processing_url, first, request_id)
        approved = await client.post(
            f"{processing_url}/process/{first}/{request_id}", json={"action": "approve"}
        )
        assert approved.status_code == 200, approved.text
        await item_arrives(client, processing_url, second, request_id)
        rejected = await client.post(
            f"{processing_url}/process/{second}/{request_id}",
            json={"action": "reject", "comment": KOREAN},
        )
        assert rejected.status_code == 200, rejected.text

        doc = await final_status(client, approvals_url, request_id, "rejected")
        assert "comment" not in doc["steps"][0]
        assert doc["steps"][1]["comment"] == KOREAN
        told = await r_ws.wait_for(2, request_id)
        assert [(m["stepStatus"], m.get("comment")) for m in told] == [
            ("approved", None),
            ("rejected", KOREAN),
        ]


async def test_a_comment_of_1001_characters_is_422_and_nothing_is_decided(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    url = f"{processing_url}/process/{approver}/{request_id}"

    refused = await client.post(url, json={"action": "approve", "comment": "가" * 1001})

    assert refused.status_code == 422
    assert "at most 1000 characters" in refused.text
    assert (await document(client, approvals_url, request_id))["finalStatus"] == "pending"
    await item_arrives(client, processing_url, approver, request_id)
    # 1,000 characters are still a comment.
    accepted = await client.post(url, json={"action": "approve", "comment": "가" * 1000})
    assert accepted.status_code == 200, accepted.text
    doc = await final_status(client, approvals_url, request_id, "approved")
    assert doc["steps"][0]["comment"] == "가" * 1000


async def test_the_same_decision_again_with_another_comment_is_a_replay(
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    result = {"requestId": request_id, "step": 1, "approverId": approver, "status": "approved"}
    url = f"{approvals_url}/approvals/internal/result"

    first = await client.post(url, json={**result, "comment": "첫 번째"})
    again = await client.post(url, json={**result, "comment": "두 번째"})

    assert (first.status_code, again.status_code) == (204, 204)
    doc = await document(client, approvals_url, request_id)
    assert doc["steps"][0]["comment"] == "첫 번째"
