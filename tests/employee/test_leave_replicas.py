"""employee-service as two real processes on one database: the leave confirmation stays
idempotent when its deliveries race on both (the unique key on the approval request, not
anything held in a process, keeps one record)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import factories
from tests.support.stack import Stack

_next_request = iter(range(800_000, 900_000))


def confirmation(employee_id: int) -> dict[str, object]:
    return {
        "employeeId": employee_id,
        "startDate": "2026-11-02",
        "endDate": "2026-11-03",
        "days": 2,
        "leaveType": "ANNUAL",
        "reason": "이사",
        "requestId": next(_next_request),
    }


@pytest.fixture(scope="module")
def second_replica(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another employee-service process, on the session stack's database."""
    with stack.another_replica("employee", Path(tmp_path_factory.mktemp("replica"))) as url:
        yield url


async def test_duplicate_confirmations_racing_on_two_replicas_keep_one_record(
    client: httpx.AsyncClient, employee_url: str, second_replica: str
) -> None:
    replicas = [employee_url, second_replica]
    eid = (await factories.employee(client, employee_url))["id"]
    for _ in range(3):
        body = confirmation(eid)
        responses = await asyncio.gather(
            *(
                client.post(f"{replicas[n % 2]}/leaves/internal/approved", json=body)
                for n in range(16)
            )
        )
        assert {r.status_code for r in responses} == {200}
        assert len({r.json()["id"] for r in responses}) == 1
    for replica in replicas:
        listed = await client.get(f"{replica}/leaves/me", params={"employeeId": eid})
        assert len(listed.json()) == 3


async def test_different_confirmations_racing_on_two_replicas_are_all_recorded(
    client: httpx.AsyncClient, employee_url: str, second_replica: str
) -> None:
    replicas = [employee_url, second_replica]
    eid = (await factories.employee(client, employee_url))["id"]
    bodies = [confirmation(eid) for _ in range(16)]

    responses = await asyncio.gather(
        *(
            client.post(f"{replicas[n % 2]}/leaves/internal/approved", json=body)
            for n, body in enumerate(bodies)
        )
    )

    assert [r.status_code for r in responses] == [200] * len(bodies)
    listed = await client.get(f"{second_replica}/leaves/me", params={"employeeId": eid})
    assert len(listed.json()) == len(bodies)
