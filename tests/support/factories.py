"""Small factories that build test data through the public APIs."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

_counter = itertools.count(1)


async def employee(client: httpx.AsyncClient, base: str, **fields: Any) -> dict[str, Any]:
    n = next(_counter)
    body = {"name": f"직원 {n}", "department": "개발팀", "position": "사원", **fields}
    response = await client.post(f"{base}/employees", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def employees(client: httpx.AsyncClient, base: str, count: int) -> list[int]:
    return [(await employee(client, base))["id"] for _ in range(count)]


def approval_body(requester: int, approvers: list[int], **fields: Any) -> dict[str, Any]:
    return {
        "requesterId": requester,
        "title": "결재 요청",
        "content": "내용",
        "steps": [{"step": i, "approverId": a} for i, a in enumerate(approvers, start=1)],
        "requestType": "GENERAL",
        **fields,
    }


def leave_body(requester: int, approvers: list[int], **leave: Any) -> dict[str, Any]:
    info = {
        "startDate": "2026-12-01",
        "endDate": "2026-12-03",
        "days": 3,
        "leaveType": "ANNUAL",
        "reason": "가족 여행",
        **leave,
    }
    return approval_body(
        requester, approvers, requestType="LEAVE", title="연차 신청", leaveInfo=info
    )


async def approval(client: httpx.AsyncClient, approvals_url: str, body: dict[str, Any]) -> int:
    """Create an approval request through the API; its requestId."""
    response = await client.post(f"{approvals_url}/approvals", json=body)
    assert response.status_code == 201, response.text
    return int(response.json()["requestId"])
