"""Bearer tokens for tests, minted with the local stack's HS256 secret."""

from __future__ import annotations

from services.common.auth import ADMIN, EMPLOYEE, AuthSettings, issue_token

_settings = AuthSettings()


def token_for(employee_id: int, *, admin: bool = False) -> str:
    roles = [EMPLOYEE, ADMIN] if admin else [EMPLOYEE]
    return issue_token(_settings, employee_id, roles=roles)


def as_user(employee_id: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(employee_id)}"}


def as_admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(999_999_999, admin=True)}"}


def as_service(name: str = "test-suite") -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(_settings, name, service=True)}"}
