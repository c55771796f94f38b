"""The console's development sign-in: a token for a picked employee on a development stack,
and no such endpoint at all unless tokens are signed with a committed development secret."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from services.common.auth import DEV_SECRET
from tests.support import factories

REPO = Path(__file__).resolve().parents[2]


async def test_signed_in_employee_gets_a_token_for_themselves(
    client: httpx.AsyncClient, anonymous: httpx.AsyncClient, employee_url: str
) -> None:
    me = await factories.employee(client, employee_url, name="개발 로그인")
    listed = await anonymous.get(f"{employee_url}/dev/sign-in/employees")
    assert listed.status_code == 200
    assert {"id": me["id"], "name": "개발 로그인"}.items() <= next(
        e for e in listed.json() if e["id"] == me["id"]
    ).items()
    signed_in = await anonymous.post(f"{employee_url}/dev/sign-in", json={"employeeId": me["id"]})
    assert signed_in.status_code == 200
    body = signed_in.json()
    assert body["employee"] == me
    mine = {"Authorization": f"Bearer {body['token']}"}
    assert (await anonymous.get(f"{employee_url}/employees/{me['id']}", headers=mine)).json() == me
    # An employee's token, not an administrator's.
    assert (await anonymous.get(f"{employee_url}/employees", headers=mine)).status_code == 403


async def test_signing_in_as_an_unknown_employee_is_404(
    anonymous: httpx.AsyncClient, employee_url: str
) -> None:
    refused = await anonymous.post(f"{employee_url}/dev/sign-in", json={"employeeId": 999_999_000})
    assert refused.status_code == 404
    assert refused.json() == {"detail": "Employee not found"}


@pytest.mark.parametrize(
    "body", [{}, {"employeeId": 0}, {"employeeId": "x"}, {"employeeId": 1, "x": 1}]
)
async def test_a_malformed_sign_in_is_422(
    anonymous: httpx.AsyncClient, employee_url: str, body: dict[str, object]
) -> None:
    refused = await anonymous.post(f"{employee_url}/dev/sign-in", json=body)
    assert refused.status_code == 422


def _dev_paths(env: dict[str, str]) -> list[str]:
    """The /dev paths employee-service's app serves when built with ``env``, in a process of its own
    (as its server builds it at start-up)."""
    listing = (
        "from services.employee.app import create_app\n"
        "print(*[p for p in create_app().openapi()['paths'] if p.startswith('/dev')])"
    )
    built = subprocess.run(
        [sys.executable, "-c", listing],
        env={"PATH": "/usr/bin:/bin", "OTEL_SDK_DISABLED": "true", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    return built.stdout.split()


def test_production_has_no_development_sign_in() -> None:
    own = secrets.token_urlsafe(32)
    production = {"EMPLOYEE_ENVIRONMENT": "production", "ERP_AUTH_SECRET": own}
    assert _dev_paths(production) == []


def test_a_secret_of_ones_own_turns_the_development_sign_in_off() -> None:
    assert _dev_paths({"ERP_AUTH_SECRET": secrets.token_urlsafe(32)}) == []
    assert _dev_paths({"ERP_AUTH_ALGORITHM": "RS256", "ERP_AUTH_PUBLIC_KEY": "unused"}) == []
    assert _dev_paths({"ERP_AUTH_SECRET": DEV_SECRET}) == [
        "/dev/sign-in/employees",
        "/dev/sign-in",
    ]
