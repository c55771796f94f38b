"""approval-processing-service -> approval-processing-service: a replica that does not hold an
approver's inbox passes ``GET /process/{approverId}`` and ``POST /process/{approverId}/
{requestId}`` once to the replica that does (docs/decisions.md D22), with the caller's own
token and ``X-Erp-Forwarded-By``, and relays the owner's answer. Driven through the real
router of a non-owner replica (in process), whose forward goes to the mock owner.

Both interactions need no provider state: an approver with nothing waiting (items would
need a state hook on approval-processing, which has none; the forward relays the owner's
body without reading it, so what it depends on is the path, the headers and that the owner
answers rather than forwarding again)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pact import Pact, match
from pact.match.matcher import AbstractMatcher

from contracts.support import BEARER
from services.approval_processing.app import create_app
from services.approval_processing.replicas import FORWARDED_BY, Ownership
from services.approval_processing.router import NO_ITEM
from services.approval_processing.settings import ApprovalProcessingSettings
from services.common import create_http_session
from services.common.auth import AuthSettings, issue_token
from services.common.messaging import partition_of

CONSUMER = "approval-processing-service"
PROVIDER = "approval-processing-service"

# Approver 7's partition is owned by replica 1 of 2; the call lands on replica 0.
APPROVER = 7
REPLICAS = 2
assert partition_of(APPROVER) % REPLICAS == 1
USER_TOKEN = f"Bearer {issue_token(AuthSettings(), APPROVER)}"


def _caller_token() -> AbstractMatcher[Any]:
    return match.regex("Bearer approver-token", regex=BEARER)


def _replica_number() -> AbstractMatcher[Any]:
    return match.regex("0", regex=r"^\d+$")


@pytest.fixture
async def non_owner() -> AsyncIterator[FastAPI]:
    """Replica 0 of 2 as the router sees it (its ownership, with the mock owner's URL, is set
    per call); no lifespan runs, so nothing consumes or rebuilds."""
    app = create_app(ApprovalProcessingSettings())
    app.state.peer_http = create_http_session(timeout_seconds=5)
    try:
        yield app
    finally:
        await app.state.peer_http.close()


async def _call(
    app: FastAPI, owner_url: str, method: str, path: str, json: object = None
) -> httpx.Response:
    app.state.ownership = Ownership(index=0, replicas=REPLICAS, peers=("http://unused", owner_url))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://replica-0") as client:
        return await client.request(
            method,
            path,
            headers={"Authorization": USER_TOKEN},
            json=json,
        )


async def test_a_read_of_an_inbox_held_by_another_replica_is_forwarded_to_it(
    pact: Pact, non_owner: FastAPI
) -> None:
    (
        pact.upon_receiving("a forwarded read of an approver's inbox with nothing waiting")
        .with_request("GET", f"/process/{APPROVER}")
        .with_header("Authorization", _caller_token())
        .with_header(FORWARDED_BY, _replica_number())
        .will_respond_with(200)
        .with_body([], "application/json")
    )

    with pact.serve() as server:
        response = await _call(
            non_owner, str(server.url).rstrip("/"), "GET", f"/process/{APPROVER}"
        )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == []


async def test_a_decision_on_an_inbox_held_by_another_replica_is_forwarded_to_it(
    pact: Pact, non_owner: FastAPI
) -> None:
    (
        pact.upon_receiving("a forwarded decision on a request the approver does not hold")
        .with_request("POST", f"/process/{APPROVER}/987654321")
        .with_header("Authorization", _caller_token())
        .with_header(FORWARDED_BY, _replica_number())
        .with_body(
            {"action": match.regex("approve", regex=r"^(approve|reject)$")}, "application/json"
        )
        .will_respond_with(404)
        .with_body({"detail": match.str(NO_ITEM)}, "application/json")
    )

    with pact.serve() as server:
        response = await _call(
            non_owner,
            str(server.url).rstrip("/"),
            "POST",
            f"/process/{APPROVER}/987654321",
            json={"action": "approve"},
        )

    assert response.status_code == 404
    assert response.json() == {"detail": NO_ITEM}
