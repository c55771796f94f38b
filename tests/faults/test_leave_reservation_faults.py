"""employee-service down while a LEAVE request is decided: the release (rejected) or the
confirmation (approved) waits in the outbox and, once employee-service is back, changes the
reservation exactly once; the balance is right afterwards. approval-request-service killed
between reserving a LEAVE request's days and storing it: the reservation expires and the
days are free again (docs/decisions.md D24). 2037 is these tests' year."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.apps import get_service, start_app, stop_process, wait_ready
from tests.employee.leave_calls import RESERVATIONS, balance
from tests.support import factories
from tests.support.layouts import Layout
from tests.support.pipeline import eventually, final_status, item_arrives
from tests.support.settled import effect_attempted, outbox_drained
from tests.support.stack import MONGO_URL, Stack, free_port
from tests.support.tcp_proxy import TcpProxy

ENTITLED = 15


async def _reservation_is(
    client: httpx.AsyncClient, employee_url: str, request_id: int, status: str
) -> None:
    async def probe() -> bool:
        found = await client.get(f"{employee_url}{RESERVATIONS}/{request_id}")
        return found.status_code == 200 and found.json()["status"] == status

    await eventually(probe, timeout=30, what=f"request {request_id}'s reservation to be {status}")


async def _changes(client: httpx.AsyncClient, layout: Layout, outcome: str) -> float:
    """How many reservations the employee-service processes changed to ``outcome`` since
    they started."""
    pattern = re.compile(rf'^erp_leave_reservations_total{{outcome="{outcome}"}} (\S+)$', re.M)
    total = 0.0
    for url in layout.process_urls("employee"):
        found = pattern.search((await client.get(f"{url}/metrics")).text)
        assert found, f"no {outcome} count at {url}"
        total += float(found[1])
    return total


async def _decided_while_employee_service_is_down(
    layout: Layout,
    client: httpx.AsyncClient,
    urls: dict[str, str],
    action: str,
    effect: str,
) -> tuple[int, int]:
    """A held LEAVE request of three days, decided with employee-service stopped, which is
    started again once the relay failed to deliver ``effect``; the requester and request."""
    requester, approver = await factories.employees(client, urls["employee"], 2)
    body: dict[str, Any] = factories.leave_body(
        requester, [approver], startDate="2037-03-02", endDate="2037-03-04"
    )
    request_id = await factories.approval(client, urls["approvals"], body)
    await _reservation_is(client, urls["employee"], request_id, "held")
    await item_arrives(client, urls["processing"], approver, request_id)
    layout.stop("employee")
    try:
        decided = await client.post(
            f"{urls['processing']}/process/{approver}/{request_id}", json={"action": action}
        )
        assert decided.status_code == 200, decided.text
        await effect_attempted(request_id, effect, db=layout.db)
    finally:
        layout.start("employee")
    return requester, request_id


async def test_a_leave_rejected_while_employee_service_is_down_is_released_once_it_is_back(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    urls = {"employee": employee_url, "approvals": approvals_url, "processing": processing_url}
    requester, request_id = await _decided_while_employee_service_is_down(
        layout, client, urls, "reject", "leave_release"
    )

    await _reservation_is(client, employee_url, request_id, "released")
    await outbox_drained(request_id, db=layout.db)  # no retry of the release is on its way
    assert await _changes(client, layout, "released") == 1
    back = await balance(client, employee_url, requester, 2037)
    assert (back["reserved"], back["used"], back["remaining"]) == (0, 0, ENTITLED)
    await final_status(client, approvals_url, request_id, "rejected")


async def test_a_leave_approved_while_employee_service_is_down_is_confirmed_once_it_is_back(
    layout: Layout,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
    processing_url: str,
) -> None:
    urls = {"employee": employee_url, "approvals": approvals_url, "processing": processing_url}
    requester, request_id = await _decided_while_employee_service_is_down(
        layout, client, urls, "approve", "leave"
    )

    await _reservation_is(client, employee_url, request_id, "approved")
    await outbox_drained(request_id, db=layout.db)
    assert await _changes(client, layout, "confirmed") == 1
    used = await balance(client, employee_url, requester, 2037)
    assert (used["reserved"], used["used"], used["remaining"]) == (0, 3, ENTITLED - 3)
    leaves = await client.get(f"{employee_url}/leaves/me", params={"employeeId": requester})
    assert len(leaves.json()) == 1


# Short enough for a fast test, long enough to see the reservation tentative first on a
# busy machine.
RESERVATION_TTL_SECONDS = 3


@pytest.fixture
def short_expiry_employee(stack: Stack, tmp_path: Path) -> Iterator[str]:
    """An employee-service process on the session's database whose tentative reservations
    expire after a few seconds and are swept twice a second."""
    env = stack.env_for("employee") | {
        "EMPLOYEE_RESERVATION_TTL_SECONDS": str(RESERVATION_TTL_SECONDS),
        "EMPLOYEE_RESERVATION_SWEEP_SECONDS": "0.5",
    }
    port = free_port()
    proc = start_app(get_service("employee"), port=port, extra_env=env, log_dir=tmp_path)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=60, proc=proc)
        yield url
    finally:
        stop_process(proc)


@pytest.fixture
async def mongo_proxy(infra: None) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(upstream_port=int(MONGO_URL.rsplit(":", 1)[1]), listen_port=free_port())
    await proxy.start()
    yield proxy
    await proxy.cut()


@contextlib.asynccontextmanager
async def _requester(
    stack: Stack, employee_url: str, mongo_url: str, log_dir: Path
) -> AsyncIterator[tuple[str, subprocess.Popen[bytes]]]:
    """An approval-request-service process of its own on the session's databases, calling
    ``employee_url`` and reaching MongoDB at ``mongo_url``; its URL and process. Stopped
    when the block ends unless the test killed it."""
    env = stack.env_for("approval_request") | {
        "APPROVAL_REQUEST_MONGO_URL": mongo_url,
        "APPROVAL_REQUEST_EMPLOYEE_SERVICE_URL": employee_url,
    }
    port = free_port()
    proc = start_app(
        get_service("approval_request"),
        port=port,
        extra_env=env,
        log_dir=log_dir,
        log_name=f"approval-request-{port}",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Off the event loop: the proxy it reaches MongoDB through runs on it.
        await asyncio.to_thread(wait_ready, url, 60, proc)
        yield url, proc
    finally:
        stop_process(proc)


async def _reservation_status(client: httpx.AsyncClient, employee_url: str, request_id: int) -> str:
    found = await client.get(f"{employee_url}{RESERVATIONS}/{request_id}")
    return str(found.json()["status"]) if found.status_code == 200 else ""


async def test_a_requester_killed_between_reserving_and_storing_leaves_no_reservation_held(
    client: httpx.AsyncClient,
    stack: Stack,
    short_expiry_employee: str,
    mongo_proxy: TcpProxy,
    tmp_path: Path,
) -> None:
    employee_url = short_expiry_employee
    requester, approver = await factories.employees(client, employee_url, 2)
    body = factories.leave_body(requester, [approver], startDate="2037-06-01", endDate="2037-06-03")
    behind_proxy = f"mongodb://127.0.0.1:{mongo_proxy.port}"
    async with _requester(stack, employee_url, behind_proxy, tmp_path) as (doomed_url, doomed):
        # Its id block is taken now, so the LEAVE request below needs MongoDB only to be
        # stored, after employee-service reserved its days, and gets the next id.
        first = await factories.approval(
            client, doomed_url, factories.approval_body(requester, [approver])
        )
        orphan = first + 1
        mongo_proxy.hold()
        sent = asyncio.create_task(client.post(f"{doomed_url}/approvals", json=body))

        async def reserved() -> bool:
            return await _reservation_status(client, employee_url, orphan) == "tentative"

        await eventually(reserved, timeout=10, what=f"request {orphan}'s days to be reserved")
        assert (await balance(client, employee_url, requester, 2037))["reserved"] == 3
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.wait()
        with pytest.raises(httpx.TransportError):
            await sent

    async def expired() -> bool:
        return await _reservation_status(client, employee_url, orphan) == "expired"

    await eventually(expired, timeout=20, what=f"request {orphan}'s reservation to expire")
    freed = await balance(client, employee_url, requester, 2037)
    assert (freed["reserved"], freed["used"]) == (0, 0)
    async with _requester(stack, employee_url, MONGO_URL, tmp_path) as (restarted_url, _):
        assert (await client.get(f"{restarted_url}/approvals/{orphan}")).status_code == 404
        again = await client.post(f"{restarted_url}/approvals", json=body)
        assert again.status_code == 201, again.text
        assert again.json()["requestId"] != orphan
        assert (await balance(client, employee_url, requester, 2037))["reserved"] == 3
