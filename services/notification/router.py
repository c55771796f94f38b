"""HTTP and WebSocket endpoints: ``POST /notify`` (internal) and ``GET /ws/{employeeId}``."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send

from services.common import current_traceparent
from services.common.auth import Principal, ServiceCaller, TokenVerifier
from services.common.limits import MAX_ID
from services.notification.hub import Closure, Hub, TooManyConnections
from services.notification.metrics import DROPPED_CONNECTIONS
from services.notification.settings import NotificationSettings
from services.notification.stream import NotificationStream

NotificationType = Literal[
    "approval_assigned",
    "approval_result",
    "leave_confirmed",
    "approval_withdrawn",
    "leave_cancelled",
]

MESSAGE_TOO_BIG = Closure(1009, "message too big", "message_too_big")
TOO_MANY_MESSAGES = Closure(1008, "too many messages", "rate_limited")
TOO_MANY_CONNECTIONS = Closure(1013, "too many connections", "too_many_connections")
CATCHING_UP = Closure(1013, "catching up, try again later", "catching_up")

router = APIRouter(tags=["notifications"])


async def get_hub(connection: HTTPConnection) -> Hub:
    hub: Hub = connection.app.state.hub
    return hub


HubDep = Annotated[Hub, Depends(get_hub)]


async def get_stream(connection: HTTPConnection) -> NotificationStream:
    stream: NotificationStream = connection.app.state.stream
    return stream


StreamDep = Annotated[NotificationStream, Depends(get_stream)]


class NotifyRequest(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel)

    employee_id: int = Field(gt=0, le=MAX_ID)
    type: NotificationType
    request_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    step: int | None = Field(default=None, gt=0, le=MAX_ID)
    approver_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    final_status: str | None = Field(default=None, max_length=32)
    step_status: str | None = Field(default=None, max_length=32)
    title: str | None = Field(default=None, max_length=200)
    # An approver's comment on the decision (``approval_result``).
    comment: str | None = Field(default=None, max_length=1000)
    # Why a request was withdrawn or a leave cancelled (``approval_withdrawn``,
    # ``leave_cancelled``).
    reason: str | None = Field(default=None, max_length=1000)
    # Used only when this request carries no trace context of its own.
    traceparent: str | None = Field(default=None, max_length=128)


class NotifyResult(BaseModel):
    # Never false since replicas share the stream: what cannot be stored is answered 503, and
    # no replica knows which sockets the others hold (docs/decisions.md D20).
    delivered: bool = Field(
        description="True once stored in the notification stream: every open connection of "
        "the employee, on any replica, receives it, and a reconnect with ?after= replays it."
    )


@router.post(
    "/notify",
    status_code=202,
    response_model=NotifyResult,
    responses={503: {"description": "Not stored (the broker is unavailable): try again."}},
)
async def notify(caller: ServiceCaller, body: NotifyRequest, stream: StreamDep) -> NotifyResult:
    """Store a notification for every open connection of the employee, on whichever replica
    (internal). Answered once the broker has confirmed it durably stored."""
    fields = body.model_dump(by_alias=True, exclude_none=True)
    traceparent = current_traceparent()
    if traceparent is not None:
        fields["traceparent"] = traceparent
    await stream.publish(fields)
    return NotifyResult(delivered=True)


SOCKET_PATH = re.compile(r"/ws/([^/]*)")
MAX_TOKEN_CHARS = 4096


class SocketsFirst:
    """notification-service's ASGI entry: a WebSocket to ``/ws/{employeeId}`` goes straight to
    ``notification_socket``, everything else to the FastAPI app.

    Why not a FastAPI route (as it was): a socket lives for hours, and as a route each one
    kept ~25 coroutine frames of middleware and routing alive. With 2,000 sockets that is
    ~470,000 objects for every full garbage collection to walk, 300-400 ms each, and those
    pauses were the push latency's p99. Nothing those layers do applies to an open socket
    (request metrics, body limits and server spans are for HTTP; pushes have their own
    span), and the validation FastAPI did is done here: the same bounds, the same refusal
    (close 1008 before the handshake completes, which the client sees as 403)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = SOCKET_PATH.fullmatch(scope["path"]) if scope["type"] == "websocket" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        websocket = WebSocket(scope, receive, send)
        employee_id = _bounded_int(found[1], minimum=1)
        raw_after = websocket.query_params.get("after")
        after = None if raw_after is None else _bounded_int(raw_after, minimum=0)
        token, subprotocol = offered_token(websocket)
        if (
            employee_id is None
            or (raw_after is not None and after is None)
            or (token is not None and len(token) > MAX_TOKEN_CHARS)
        ):
            DROPPED_CONNECTIONS.labels("invalid").inc()
            await websocket.close(1008, "employeeId and after must be ids, token a token")
            return
        await notification_socket(
            websocket, employee_id, after=after, token=token, subprotocol=subprotocol
        )


def _bounded_int(text: str, *, minimum: int) -> int | None:
    if not text.isascii() or not text.isdigit() or len(text) > len(str(MAX_ID)):
        return None
    value = int(text)
    return value if minimum <= value <= MAX_ID else None


def offered_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """The bearer token a client offers and the subprotocol to answer with.

    Browsers cannot set headers on a WebSocket, so besides ``Authorization: Bearer <token>``
    (what other clients send) the token may come as the subprotocol pair ``bearer, <token>``
    or, last and discouraged since URLs end up in logs, as ``?token=``. The header wins, then
    the subprotocol. A client that offered the pair is answered ``bearer`` whichever token
    is used, since a browser fails a handshake that selects none of its subprotocols."""
    # The ASGI scope's parsed list: every server fills it, not every one keeps the header.
    offered = [p.strip() for p in websocket.scope.get("subprotocols") or ()]
    pair = len(offered) == 2 and offered[0].lower() == "bearer"
    subprotocol = offered[0] if pair else None
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), subprotocol
    if pair:
        return offered[1], subprotocol
    return websocket.query_params.get("token"), None


async def notification_socket(
    websocket: WebSocket,
    employee_id: int,
    *,
    after: int | None,
    token: str | None,
    subprotocol: str | None = None,
) -> None:
    """Push the employee's notifications: those after ``after`` from the backlog, then live.
    Only that employee's own token (see ``offered_token``) is accepted."""
    state = websocket.app.state
    hub: Hub = state.hub
    stream: NotificationStream = state.stream
    settings: NotificationSettings = state.settings
    principal = await _authenticate(websocket, token)
    if principal is None or principal.employee_id != employee_id:
        DROPPED_CONNECTIONS.labels("unauthorized").inc()
        await websocket.close(1008, "a valid token for this employee is required")
        return
    if not stream.caught_up:
        # Until then the backlog is incomplete and old entries would be pushed as new.
        DROPPED_CONNECTIONS.labels(CATCHING_UP.label).inc()
        await websocket.accept()
        await websocket.close(CATCHING_UP.code, CATCHING_UP.reason)
        return
    try:
        subscription = hub.subscribe(employee_id, websocket, after=after)
    except TooManyConnections:
        DROPPED_CONNECTIONS.labels(TOO_MANY_CONNECTIONS.label).inc()
        await websocket.accept()
        await websocket.close(TOO_MANY_CONNECTIONS.code, TOO_MANY_CONNECTIONS.reason)
        return
    try:
        await websocket.accept(subprotocol=subprotocol)
        subscription.start()
        reader = asyncio.create_task(_read_client(websocket, settings))
        try:
            watched: set[asyncio.Future[Any]] = {reader, subscription.ended}
            await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            (outcome,) = await asyncio.gather(reader, return_exceptions=True)
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, Closure):
            await hub.drop(subscription, outcome)
    finally:
        await hub.release(subscription)


async def _authenticate(websocket: WebSocket, token: str | None) -> Principal | None:
    if not token:
        return None
    verifier: TokenVerifier = websocket.app.state.token_verifier
    try:
        return await verifier.verify(token)
    except HTTPException:
        return None


class _TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self._rate = rate
        self._capacity = burst
        self._tokens = burst
        self._stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self._capacity, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


async def _read_client(websocket: WebSocket, settings: NotificationSettings) -> Closure | None:
    """Discard what the client sends; a closure when it breaks a limit, None when it leaves."""
    rate = settings.ws_client_messages_per_second
    bucket = _TokenBucket(rate, burst=max(1.0, 2 * rate))
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        text: str | None = message.get("text")
        data: bytes | None = message.get("bytes")
        size = len(text.encode()) if text is not None else len(data or b"")
        if size > settings.ws_max_message_bytes:
            return MESSAGE_TOO_BIG
        if not bucket.take():
            return TOO_MANY_MESSAGES
