"""Development sign-in: the console lists the employees and gets a token for the one picked,
without an identity provider. Anyone who can reach it can act as anyone, so it exists only
while tokens are signed with a development secret committed to the repository (which a
production service refuses to start with); ``mount_if_development`` decides."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from services.common.auth import ADMIN, EMPLOYEE, AuthSettings, is_committed_secret, issue_token
from services.common.limits import MAX_ID
from services.employee.deps import SessionDep
from services.employee.employees import service
from services.employee.employees.router import NOT_FOUND
from services.employee.employees.schemas import EmployeeRead

router = APIRouter(prefix="/dev/sign-in", tags=["development sign-in"])

# The whole directory in one answer: a development stack holds a handful of people.
DIRECTORY_SIZE = 500
TOKEN_TTL_SECONDS = 8 * 3600


async def _auth(request: Request) -> AuthSettings:
    auth: AuthSettings = request.app.state.token_verifier.settings
    return auth


AuthDep = Annotated[AuthSettings, Depends(_auth)]


class SignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employeeId: Annotated[int, Field(ge=1, le=MAX_ID)]
    admin: bool = False


class SignedIn(BaseModel):
    token: str
    tokenType: str = "bearer"
    expiresIn: int
    employee: EmployeeRead


@router.get("/employees", response_model=list[EmployeeRead])
async def directory(session: SessionDep) -> object:
    """Who can sign in (and be picked as an approver), ordered by id."""
    return await service.list_active(session=session, limit=DIRECTORY_SIZE, offset=0, ids=None)


@router.post("", response_model=SignedIn, responses={404: {}})
async def sign_in(body: SignIn, session: SessionDep, auth: AuthDep) -> SignedIn:
    employee = await service.get_active(session=session, employee_id=body.employeeId)
    if employee is None:
        raise HTTPException(404, NOT_FOUND)
    roles = [EMPLOYEE, ADMIN] if body.admin else [EMPLOYEE]
    token = issue_token(auth, employee.id, roles=roles, ttl_seconds=TOKEN_TTL_SECONDS)
    return SignedIn(
        token=token,
        expiresIn=TOKEN_TTL_SECONDS,
        employee=EmployeeRead.model_validate(employee),
    )


def is_development(auth: AuthSettings, environment: str) -> bool:
    return (
        environment != "production"
        and auth.algorithm == "HS256"
        and is_committed_secret(auth.secret)
    )


def mount_if_development(app: FastAPI) -> None:
    auth: AuthSettings = app.state.token_verifier.settings
    if is_development(auth, app.state.settings.environment):
        app.include_router(router)
