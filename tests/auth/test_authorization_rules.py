"""Who may do what, proven against the running services (issue: security)."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from services.common.auth import DEV_SECRET, AuthSettings, issue_token
from tests.support import factories
from tests.support.auth import as_admin, as_service, as_user, token_for
from tests.support.logs import logged
from tests.support.pipeline import item_arrives
from tests.support.stack import Stack
from tests.support.traces import new_traceparent


@pytest.fixture
async def trio(client: httpx.AsyncClient, employee_url: str) -> list[int]:
    return await factories.employees(client, employee_url, 3)


@pytest.mark.parametrize(
    ("package", "method", "path"),
    [
        ("employee", "GET", "/employees"),
        ("employee", "GET", "/employees/1"),
        ("employee", "POST", "/attendance/check-in"),
        ("employee", "GET", "/leaves/me?employeeId=1"),
        ("approval_request", "GET", "/approvals"),
        ("approval_request", "POST", "/approvals"),
        ("approval_processing", "GET", "/process/1"),
    ],
)
async def test_client_endpoints_need_a_token(
    anonymous: httpx.AsyncClient, stack, package: str, method: str, path: str
) -> None:
    response = await anonymous.request(method, stack.url(package) + path, json={})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


# The tokens are made when the module is imported, before the stack starts: the ones that
# must not be refused for expiry live a day, so a slow start cannot expire them.
@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("not-a-jwt", "Not enough segments"),
        (
            jwt.encode(
                {"sub": "1", "aud": "erp-api", "iss": "erp", "exp": int(time.time()) + 86_400},
                "another-secret-of-at-least-32-bytes!",
                algorithm="HS256",
            ),
            "Signature verification failed",
        ),
        (
            jwt.encode(
                {"sub": "1", "aud": "erp-api", "iss": "erp", "exp": int(time.time()) - 600},
                DEV_SECRET,
                algorithm="HS256",
            ),
            "Signature has expired",
        ),
        (
            jwt.encode(
                {
                    "sub": "1",
                    "aud": "somebody-else",
                    "iss": "erp",
                    "exp": int(time.time()) + 86_400,
                },
                DEV_SECRET,
                algorithm="HS256",
            ),
            "Audience doesn't match",
        ),
        (
            jwt.encode(
                {"sub": "1", "aud": "erp-api", "iss": "erp", "exp": int(time.time()) + 86_400},
                "",
                algorithm="none",
            ),
            "alg value is not allowed",
        ),
    ],
    ids=["garbage", "wrong-key", "expired", "wrong-audience", "unsigned"],
)
async def test_invalid_tokens_are_a_401_that_keeps_the_reason_in_the_log(
    anonymous: httpx.AsyncClient, stack: Stack, employee_url: str, token: str, reason: str
) -> None:
    trace_id, traceparent = new_traceparent()
    response = await anonymous.get(
        f"{employee_url}/employees/1",
        headers={"Authorization": f"Bearer {token}", **traceparent},
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token"}
    log = stack.log_dir / "employee-service.log"
    line = await logged(log, f'"trace_id":"{trace_id}"', "token refused")
    assert reason in line


async def test_employee_crud_is_for_admins_and_reading_oneself(
    anonymous: httpx.AsyncClient,
    employee_url: str,
    trio: list[int],
) -> None:
    me, other, _ = trio
    body = {"name": "신입", "department": "개발", "position": "사원"}
    assert (
        await anonymous.post(f"{employee_url}/employees", json=body, headers=as_user(me))
    ).status_code == 403
    assert (
        await anonymous.post(f"{employee_url}/employees", json=body, headers=as_admin())
    ).status_code == 201
    assert (
        await anonymous.get(f"{employee_url}/employees/{me}", headers=as_user(me))
    ).status_code == 200
    assert (
        await anonymous.get(f"{employee_url}/employees/{other}", headers=as_user(me))
    ).status_code == 403
    assert (
        await anonymous.get(f"{employee_url}/employees", headers=as_user(me))
    ).status_code == 403
    for method in ("PATCH", "DELETE"):
        response = await anonymous.request(
            method, f"{employee_url}/employees/{me}", json={"position": "사장"}, headers=as_user(me)
        )
        assert response.status_code == 403


async def test_attendance_and_leave_are_for_oneself_unless_admin(
    anonymous: httpx.AsyncClient,
    employee_url: str,
    trio: list[int],
) -> None:
    me, other, _ = trio
    url = f"{employee_url}/attendance/check-in"
    assert (
        await anonymous.post(url, json={"employee_id": other}, headers=as_user(me))
    ).status_code == 403
    assert (
        await anonymous.post(url, json={"employee_id": me}, headers=as_user(me))
    ).status_code == 200
    assert (
        await anonymous.post(url, json={"employee_id": other}, headers=as_admin())
    ).status_code == 200
    for path in ("/attendance/me", "/leaves/me"):
        assert (
            await anonymous.get(
                f"{employee_url}{path}", params={"employeeId": other}, headers=as_user(me)
            )
        ).status_code == 403
        assert (
            await anonymous.get(
                f"{employee_url}{path}", params={"employeeId": me}, headers=as_user(me)
            )
        ).status_code == 200


async def test_an_approval_is_visible_to_its_requester_approvers_and_admins(
    anonymous: httpx.AsyncClient,
    approvals_url: str,
    trio: list[int],
) -> None:
    requester, approver, outsider = trio
    created = await anonymous.post(
        f"{approvals_url}/approvals",
        json=factories.approval_body(requester, [approver]),
        headers=as_user(requester),
    )
    assert created.status_code == 201
    url = f"{approvals_url}/approvals/{created.json()['requestId']}"
    for who, status in (
        (as_user(requester), 200),
        (as_user(approver), 200),
        (as_admin(), 200),
        (as_user(outsider), 403),
    ):
        assert (await anonymous.get(url, headers=who)).status_code == status
    listed = await anonymous.get(f"{approvals_url}/approvals", headers=as_user(outsider))
    assert created.json()["requestId"] not in [d["requestId"] for d in listed.json()]
    mine = await anonymous.get(f"{approvals_url}/approvals", headers=as_user(approver))
    assert created.json()["requestId"] in [d["requestId"] for d in mine.json()]


async def test_nobody_requests_on_someone_elses_behalf(
    anonymous: httpx.AsyncClient,
    approvals_url: str,
    trio: list[int],
) -> None:
    requester, approver, impostor = trio
    response = await anonymous.post(
        f"{approvals_url}/approvals",
        json=factories.approval_body(requester, [approver]),
        headers=as_user(impostor),
    )
    assert response.status_code == 403


async def test_an_inbox_is_only_for_its_approver(
    client: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    approvals_url: str,
    processing_url: str,
    trio: list[int],
) -> None:
    requester, approver, other = trio
    request_id = await factories.approval(
        client, approvals_url, factories.approval_body(requester, [approver])
    )
    await item_arrives(client, processing_url, approver, request_id)
    for headers in (as_user(other), as_admin(), as_service()):
        assert (
            await anonymous.get(f"{processing_url}/process/{approver}", headers=headers)
        ).status_code == 403
        decided = await anonymous.post(
            f"{processing_url}/process/{approver}/{request_id}",
            json={"action": "approve"},
            headers=headers,
        )
        assert decided.status_code == 403
    assert (
        await anonymous.get(f"{processing_url}/process/{approver}", headers=as_user(approver))
    ).status_code == 200


@pytest.mark.parametrize(
    ("package", "path", "body"),
    [
        (
            "employee",
            "/leaves/internal/approved",
            {
                "employeeId": 1,
                "startDate": "2027-01-01",
                "endDate": "2027-01-01",
                "days": 1,
                "leaveType": "ANNUAL",
                "reason": "",
                "requestId": 123456789,
            },
        ),
        (
            "approval_request",
            "/approvals/internal/result",
            {"requestId": 99999999, "step": 1, "approverId": 1, "status": "approved"},
        ),
        ("notification", "/notify", {"employeeId": 1, "type": "approval_result"}),
    ],
)
async def test_internal_endpoints_take_only_service_credentials(
    anonymous: httpx.AsyncClient,
    stack,
    package: str,
    path: str,
    body: dict[str, object],
) -> None:
    url = stack.url(package) + path
    assert (await anonymous.post(url, json=body)).status_code == 401
    assert (await anonymous.post(url, json=body, headers=as_user(1))).status_code == 403
    assert (await anonymous.post(url, json=body, headers=as_admin())).status_code == 403
    assert (await anonymous.post(url, json=body, headers=as_service())).status_code in (
        200,
        202,
        404,
    )


async def test_waiting_steps_listing_is_internal(
    anonymous: httpx.AsyncClient, approvals_url: str
) -> None:
    url = f"{approvals_url}/approvals/internal/waiting"
    assert (await anonymous.get(url, headers=as_admin())).status_code == 403
    assert (await anonymous.get(url, headers=as_service())).status_code == 200


async def test_websocket_needs_that_employees_token(notification_url: str) -> None:
    base = notification_url.replace("http://", "ws://")
    for url in (f"{base}/ws/5", f"{base}/ws/5?token={token_for(6)}", f"{base}/ws/5?token=garbage"):
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        assert refused.value.response.status_code == 403
    async with connect(f"{base}/ws/5?token={token_for(5)}") as socket:
        await socket.ping()
    async with connect(f"{base}/ws/5", subprotocols=["bearer", token_for(5)]) as socket:
        assert socket.subprotocol == "bearer"


def test_tokens_are_signed_with_the_configured_secret() -> None:
    settings = AuthSettings(secret="x" * 40)
    claims = jwt.decode(
        issue_token(settings, 7), "x" * 40, algorithms=["HS256"], audience="erp-api"
    )
    assert (claims["sub"], claims["roles"]) == ("7", ["employee"])
