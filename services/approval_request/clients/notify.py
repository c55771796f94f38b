"""Calls to notification-service."""

from __future__ import annotations

from typing import Any

import aiohttp

from services.common import request_json

TARGET = "notification-service"


class NotificationRefused(Exception):
    """notification-service answered 4xx: the notification itself is wrong."""


async def send_notification(
    session: aiohttp.ClientSession, base_url: str, notification: dict[str, Any]
) -> bool:
    """True once notification-service has stored it for every replica to push and replay
    (docs/decisions.md D20); any failure raises, so the outbox retries."""
    status, body = await request_json(
        session,
        "POST",
        f"{base_url}/notify",
        target=TARGET,
        operation="notify",
        json=notification,
    )
    if status != 202:
        raise NotificationRefused(f"notification-service refused ({status}): {body}")
    return bool(body.get("delivered"))
