"""Request dependencies of approval-request-service, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import Depends, Request

from services.approval_request.clients.employee import LeaveReservations, missing_employees
from services.approval_request.outbox import OutboxRelay
from services.approval_request.repository import ApprovalRepository
from services.approval_request.service import FindMissing
from services.approval_request.service import LeaveReservations as Leaves


async def _repository(request: Request) -> ApprovalRepository:
    repository: ApprovalRepository = request.app.state.repository
    return repository


async def _relay(request: Request) -> OutboxRelay:
    relay: OutboxRelay = request.app.state.relay
    return relay


async def _find_missing(request: Request) -> FindMissing:
    state = request.app.state

    async def find(ids: Iterable[int]) -> list[int]:
        return await missing_employees(state.http, state.settings.employee_service_url, ids)

    return find


async def _leaves(request: Request) -> Leaves:
    state = request.app.state
    return LeaveReservations(state.http, state.settings.employee_service_url)


ApprovalsDep = Annotated[ApprovalRepository, Depends(_repository)]
RelayDep = Annotated[OutboxRelay, Depends(_relay)]
FindMissingDep = Annotated[FindMissing, Depends(_find_missing)]
LeavesDep = Annotated[Leaves, Depends(_leaves)]
