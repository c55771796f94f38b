"""Calls to approval-request-service (results, rebuild) and notification-service."""

from __future__ import annotations

from typing import Any

import aiohttp

from services.common import request_json

REQUESTS = "approval-request-service"
NOTIFICATIONS = "notification-service"


async def submit_decision(
    session: aiohttp.ClientSession,
    base_url: str,
    *,
    request_id: int,
    step: int,
    approver_id: int,
    status: str,
    comment: str | None = None,
) -> tuple[int, Any]:
    """The result callback; returns the status (204 applied, 404, 400, 409) and body. The
    approver's comment goes only when given."""
    body: dict[str, Any] = {
        "requestId": request_id,
        "step": step,
        "approverId": approver_id,
        "status": status,
    }
    if comment is not None:
        body["comment"] = comment
    return await request_json(
        session,
        "POST",
        f"{base_url}/approvals/internal/result",
        target=REQUESTS,
        operation="submit_result",
        json=body,
    )


async def waiting_steps(
    session: aiohttp.ClientSession, base_url: str, *, after_request_id: int, limit: int
) -> list[dict[str, Any]]:
    status, body = await request_json(
        session,
        "GET",
        f"{base_url}/approvals/internal/waiting",
        target=REQUESTS,
        operation="waiting_steps",
        params={"afterRequestId": str(after_request_id), "limit": str(limit)},
    )
    if status != 200 or not isinstance(body, list):
        raise RuntimeError(f"unexpected answer {status} listing waiting steps")
    return body


async def notify_assigned(
    session: aiohttp.ClientSession, base_url: str, notification: dict[str, Any]
) -> bool:
    status, body = await request_json(
        session,
        "POST",
        f"{base_url}/notify",
        target=NOTIFICATIONS,
        operation="notify",
        json=notification,
    )
    if status != 202:
        raise RuntimeError(f"notification-service refused ({status}): {body}")
    return bool(body.get("delivered"))
