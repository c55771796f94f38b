"""Leave reservations racing: one employee's reservations are checked one after the other
under the employee's row lock, on one process or two on the same database; and a tentative
reservation whose request was never stored stops counting when it expires."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.apps import get_service, start_app, stop_process, wait_ready
from tests.employee.leave_calls import RESERVATIONS, balance, reservation
from tests.support import factories
from tests.support.pipeline import eventually
from tests.support.stack import Stack, free_port

ENTITLED = 15


@pytest.fixture(scope="module")
def second_replica(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Another employee-service process, on the session stack's database."""
    with stack.another_replica("employee", Path(tmp_path_factory.mktemp("replica"))) as url:
        yield url


@pytest.fixture(scope="module")
def short_expiry_replica(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An employee-service process whose tentative reservations expire after two seconds
    and which sweeps them every 0.2 s, on the session stack's database."""
    env = {
        **stack.env_for("employee"),
        "EMPLOYEE_RESERVATION_TTL_SECONDS": "2",
        "EMPLOYEE_RESERVATION_SWEEP_SECONDS": "0.2",
    }
    port = free_port()
    proc = start_app(
        get_service("employee"),
        port=port,
        extra_env=env,
        log_dir=Path(tmp_path_factory.mktemp("short-expiry")),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=60, proc=proc)
        yield url
    finally:
        stop_process(proc)


def _weekdays(start: date, count: int) -> list[str]:
    days: list[str] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day.isoformat())
        day += timedelta(days=1)
    return days


async def _reserve_at_once(
    client: httpx.AsyncClient, urls: list[str], bodies: list[dict[str, Any]]
) -> list[httpx.Response]:
    return await asyncio.gather(
        *(
            client.post(f"{urls[n % len(urls)]}{RESERVATIONS}", json=body)
            for n, body in enumerate(bodies)
        )
    )


async def _two_overlapping_at_once(client: httpx.AsyncClient, urls: list[str]) -> None:
    eid = (await factories.employee(client, urls[0]))["id"]
    bodies = [
        reservation(eid, "2031-05-05", "2031-05-09"),
        reservation(eid, "2031-05-08", "2031-05-13"),
    ]
    responses = await _reserve_at_once(client, urls, bodies)
    assert sorted(r.status_code for r in responses) == [201, 409]
    winner = next(r.json() for r in responses if r.status_code == 201)
    loser = next(r.json() for r in responses if r.status_code == 409)
    assert loser == {"detail": f"Leave overlaps request {winner['requestId']}"}
    assert (await balance(client, urls[0], eid, 2031))["reserved"] == winner["days"]


async def _twenty_beyond_the_balance_at_once(client: httpx.AsyncClient, urls: list[str]) -> None:
    eid = (await factories.employee(client, urls[0]))["id"]
    bodies = [reservation(eid, day, day) for day in _weekdays(date(2031, 6, 2), 20)]
    responses = await _reserve_at_once(client, urls, bodies)
    accepted = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(accepted) == ENTITLED
    assert {r.status_code for r in refused} == {400}
    assert all(
        r.json()["detail"].startswith("Insufficient leave balance for ANNUAL") for r in refused
    )
    assert (await balance(client, urls[-1], eid, 2031))["reserved"] == ENTITLED


async def test_two_overlapping_reservations_sent_at_once_accept_exactly_one(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    for _ in range(3):
        await _two_overlapping_at_once(client, [employee_url])


async def test_twenty_reservations_at_once_never_exceed_the_balance(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    await _twenty_beyond_the_balance_at_once(client, [employee_url])


async def test_two_overlapping_reservations_on_two_replicas_accept_exactly_one(
    client: httpx.AsyncClient, employee_url: str, second_replica: str
) -> None:
    for _ in range(3):
        await _two_overlapping_at_once(client, [employee_url, second_replica])


async def test_twenty_reservations_on_two_replicas_never_exceed_the_balance(
    client: httpx.AsyncClient, employee_url: str, second_replica: str
) -> None:
    await _twenty_beyond_the_balance_at_once(client, [employee_url, second_replica])


async def test_a_reservation_never_held_stops_counting_when_it_expires(
    client: httpx.AsyncClient, employee_url: str, short_expiry_replica: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    orphan = reservation(eid, "2031-09-01", "2031-09-05")
    held = reservation(eid, "2031-09-08", "2031-09-08")
    url = f"{short_expiry_replica}{RESERVATIONS}"
    assert (await client.post(url, json=orphan)).status_code == 201
    assert (await client.post(url, json=held)).status_code == 201
    assert (await client.post(f"{url}/{held['requestId']}/hold")).status_code == 200
    assert (await balance(client, employee_url, eid, 2031))["reserved"] == 6

    async def marked_expired() -> bool:
        found = await client.get(f"{employee_url}{RESERVATIONS}/{orphan['requestId']}")
        return bool(found.json()["status"] == "expired")

    await eventually(marked_expired, timeout=20, what="the sweep to mark it expired")
    assert (await balance(client, employee_url, eid, 2031))["reserved"] == 1
    # Its dates are free for another request, whichever replica takes it.
    again = await client.post(
        f"{employee_url}{RESERVATIONS}", json=reservation(eid, "2031-09-01", "2031-09-05")
    )
    assert again.status_code == 201
    metrics = (await client.get(f"{short_expiry_replica}/metrics")).text
    assert 'erp_leave_reservations_total{outcome="expired"}' in metrics


async def test_an_expired_reservation_is_held_again_while_its_days_are_free(
    client: httpx.AsyncClient, employee_url: str, short_expiry_replica: str
) -> None:
    eid = (await factories.employee(client, employee_url))["id"]
    late = reservation(eid, "2031-10-06", "2031-10-07")
    taken = reservation(eid, "2031-10-13", "2031-10-13")
    url = f"{short_expiry_replica}{RESERVATIONS}"
    await client.post(url, json=late)
    await client.post(url, json=taken)

    async def both_expired() -> bool:
        return (await balance(client, employee_url, eid, 2031))["reserved"] == 0

    await eventually(both_expired, timeout=20, what="both reservations to expire")
    other = reservation(eid, "2031-10-13", "2031-10-14")
    assert (await client.post(f"{employee_url}{RESERVATIONS}", json=other)).status_code == 201

    revived = await client.post(f"{employee_url}{RESERVATIONS}/{late['requestId']}/hold")
    refused = await client.post(f"{employee_url}{RESERVATIONS}/{taken['requestId']}/hold")

    assert (revived.status_code, revived.json()["status"]) == (200, "held")
    assert refused.status_code == 409
    assert refused.json() == {"detail": f"Leave overlaps request {other['requestId']}"}
    assert (await balance(client, employee_url, eid, 2031))["reserved"] == 4
