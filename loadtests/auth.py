"""How the load test authenticates: one bearer token per caller (an employee, an
administrator, or the load test acting as a service for internal endpoints), built in
one place so a different identity provider means changing only this module."""

from __future__ import annotations

from services.common.auth import ADMIN as ADMIN_ROLE
from services.common.auth import EMPLOYEE as EMPLOYEE_ROLE
from services.common.auth import AuthSettings, issue_token

TTL = 24 * 3600  # one token per caller for the whole run

ADMIN = "admin"
SERVICE = "service"
Caller = int | str  # an employee id, ADMIN or SERVICE


class Credentials:
    """Bearer tokens the load test presents, minted with the HS256 secret the services
    verify (`ERP_AUTH_*` variables, as the services read them; the development secret by
    default). Against an RS256 identity provider, replace `token` with one that fetches."""

    def __init__(self) -> None:
        self.settings = AuthSettings()
        self._tokens: dict[Caller, str] = {}

    def token(self, caller: Caller) -> str:
        token = self._tokens.get(caller)
        if token is None:
            if caller == SERVICE:
                token = issue_token(self.settings, "load-test", service=True, ttl_seconds=TTL)
            elif caller == ADMIN:
                roles = [EMPLOYEE_ROLE, ADMIN_ROLE]
                token = issue_token(self.settings, "load-test", roles=roles, ttl_seconds=TTL)
            else:
                token = issue_token(self.settings, caller, ttl_seconds=TTL)
            self._tokens[caller] = token
        return token


CREDENTIALS = Credentials()


def headers(caller: Caller) -> dict[str, str]:
    """The headers of every call made as `caller` (an employee id, ADMIN or SERVICE): the
    one place that decides how the load test authenticates."""
    return {"Accept": "application/json", "Authorization": f"Bearer {CREDENTIALS.token(caller)}"}
