"""Which replica holds which approver's inbox, and the forwarding of a call to the one that
does: each replica owns fixed partitions (approverId % PARTITIONS, docs/decisions.md D22)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp
from fastapi import Request
from fastapi.responses import Response

from services.approval_processing.metrics import FORWARDED, PARTITION_OWNED
from services.common import DependencyUnavailable, track_dependency
from services.common.messaging import PARTITIONS, partition_of

logger = logging.getLogger(__name__)

# Marks a call one replica passed to another, so it is never passed on a second time.
FORWARDED_BY = "X-Erp-Forwarded-By"
PEERS = "approval-processing-service"
RELAYED_HEADERS = ("content-type", "retry-after")


@dataclass(frozen=True, slots=True)
class Ownership:
    index: int
    replicas: int
    peers: tuple[str, ...]

    @property
    def partitions(self) -> list[int]:
        return [p for p in range(PARTITIONS) if p % self.replicas == self.index]

    def owner_of(self, approver_id: int) -> int:
        return partition_of(approver_id) % self.replicas

    def owns(self, approver_id: int) -> bool:
        return self.owner_of(approver_id) == self.index

    def publish_metrics(self) -> None:
        owned = set(self.partitions)
        for partition in range(PARTITIONS):
            PARTITION_OWNED.labels(f"{partition:02d}").set(1 if partition in owned else 0)


async def forward(request: Request, ownership: Ownership, approver_id: int) -> Response | None:
    """The owner's answer to this call, or None when this replica owns ``approver_id``.

    Raises ``DependencyUnavailable`` (503, Retry-After) when the owner cannot be reached,
    and when a call another replica forwarded lands on a non-owner (the replicas disagree
    on the count, as during a change of it): passing it on again could loop."""
    owner = ownership.owner_of(approver_id)
    if owner == ownership.index:
        return None
    method = request.method
    if FORWARDED_BY in request.headers:
        FORWARDED.labels(method, "misrouted").inc()
        logger.warning(
            "call for approver %d forwarded by replica %s to replica %d, owned by %d",
            approver_id,
            request.headers[FORWARDED_BY],
            ownership.index,
            owner,
        )
        raise DependencyUnavailable(
            PEERS, detail=f"Replicas disagree on who holds approver {approver_id}; try again"
        )
    headers = {FORWARDED_BY: str(ownership.index)}
    for name in ("authorization", "content-type"):
        if name in request.headers:
            headers[name] = request.headers[name]
    session: aiohttp.ClientSession = request.app.state.peer_http
    query = f"?{request.url.query}" if request.url.query else ""
    url = f"{ownership.peers[owner]}{request.url.path}{query}"
    try:
        async with (
            track_dependency(PEERS, "forward"),
            session.request(method, url, data=await request.body(), headers=headers) as answer,
        ):
            body = await answer.read()
            relayed = {k: v for k in RELAYED_HEADERS if (v := answer.headers.get(k))}
            status = answer.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        FORWARDED.labels(method, "owner_unavailable").inc()
        logger.warning("replica %d (approver %d) unreachable: %r", owner, approver_id, exc)
        raise DependencyUnavailable(
            PEERS, detail=f"The replica holding approver {approver_id}'s inbox is unavailable"
        ) from None
    FORWARDED.labels(method, "answered").inc()
    return Response(body, status_code=status, headers=relayed)
