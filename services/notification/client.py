"""Client side of the notification stream, for real clients and ``erp watch EMPLOYEE_ID``."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator
from datetime import datetime
from urllib.parse import urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

logger = logging.getLogger(__name__)


class Notification(BaseModel):
    """One pushed message. ``type`` stays a plain string and unknown fields are kept, so
    an older client keeps working when the service adds types or fields."""

    model_config = ConfigDict(alias_generator=to_camel, extra="allow")

    id: int
    employee_id: int
    type: str
    created_at: datetime
    request_id: int | None = None
    step: int | None = None
    approver_id: int | None = None
    final_status: str | None = None
    step_status: str | None = None
    title: str | None = None
    comment: str | None = None
    reason: str | None = None
    traceparent: str | None = None


def parse_notification(text: str | bytes) -> Notification:
    return Notification.model_validate_json(text)


def socket_url(base_url: str, employee_id: int, after: int | None = None) -> str:
    """``http://host:8004`` (or ``ws://...``) to the employee's ``/ws/{id}?after=`` URL."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = f"{parts.path.rstrip('/')}/ws/{employee_id}"
    query = urlencode({"after": after}) if after is not None else ""
    return urlunsplit((scheme, parts.netloc, path, query, ""))


async def watch(
    base_url: str,
    employee_id: int,
    after: int | None = None,
    *,
    token: str | None = None,
    initial_backoff: float = 0.5,
    max_backoff: float = 10.0,
) -> AsyncGenerator[Notification, None]:
    """Yield the employee's notifications for as long as the caller iterates.

    When the connection drops it reconnects with ``?after=<last id seen>`` (waiting
    ``initial_backoff`` doubling up to ``max_backoff``), so nothing the service still
    holds in its backlog is missed and nothing is yielded twice. Until a first
    notification arrives, a reconnect can only ask for ``after`` as given.
    A 4xx answer to the handshake (e.g. an invalid employee id or token) is raised.
    ``token`` (the employee's bearer token) travels as the ``bearer`` subprotocol, which
    keeps it out of URLs and access logs.
    """
    if employee_id <= 0:
        raise ValueError("employee_id must be a positive integer")
    last_id = after
    backoff = initial_backoff
    while True:
        connected_at = time.monotonic()
        try:
            protocols = [Subprotocol("bearer"), Subprotocol(token)] if token else None
            async with connect(
                socket_url(base_url, employee_id, last_id), subprotocols=protocols
            ) as websocket:
                connected_at = time.monotonic()
                async for text in websocket:
                    notification = parse_notification(text)
                    backoff = initial_backoff
                    if last_id is not None and notification.id <= last_id:
                        continue
                    last_id = notification.id
                    yield notification
            reason = "closed by the server"
        except InvalidStatus as exc:
            if exc.response.status_code < 500:
                raise
            reason = f"handshake answered {exc.response.status_code}"
        except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
            reason = repr(exc)
        if time.monotonic() - connected_at > max_backoff:
            backoff = initial_backoff
        delay = backoff * random.uniform(0.8, 1.2)
        logger.info(
            "notification stream for employee %s lost (%s); reconnecting in %.1fs",
            employee_id,
            reason,
            delay,
        )
        await asyncio.sleep(delay)
        backoff = min(backoff * 2, max_backoff)
