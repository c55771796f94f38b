"""Request-scoped dependencies: one session and one transaction per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.employee.settings import EmployeeSettings


async def _session(request: Request) -> AsyncIterator[AsyncSession]:
    """Commits when the endpoint returns, before the response is sent; rolls back on error."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session, session.begin():
        yield session


async def _locking_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A unit of work at READ COMMITTED, for changes made under a row lock (leave
    reservations): each read after taking the lock sees what the previous holder
    committed, where REPEATABLE READ would answer from a snapshot taken earlier."""
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.locking_sessionmaker
    async with sessionmaker() as session, session.begin():
        yield session


async def _settings(request: Request) -> EmployeeSettings:
    settings: EmployeeSettings = request.app.state.settings
    return settings


SessionDep = Annotated[AsyncSession, Depends(_session, scope="function")]
LockingSessionDep = Annotated[AsyncSession, Depends(_locking_session, scope="function")]
SettingsDep = Annotated[EmployeeSettings, Depends(_settings)]
