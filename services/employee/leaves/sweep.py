"""Marks tentative reservations past their expiry as expired, every few seconds, in every
replica: the update is idempotent, so replicas sweeping at once expire each row once."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.employee.db import utcnow
from services.employee.leaves import reservations
from services.employee.leaves.metrics import RESERVATIONS

logger = logging.getLogger(__name__)


async def sweep_once(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    """``sessionmaker`` at READ COMMITTED: no gap locks, so the sweep never holds up a
    reservation being inserted."""
    async with sessionmaker() as session, session.begin():
        expired = await reservations.expire_overdue(session=session, now=utcnow())
    if expired:
        RESERVATIONS.labels("expired").inc(expired)
        logger.info("%d tentative leave reservations expired", expired)
    return expired


async def sweep_forever(sessionmaker: async_sessionmaker[AsyncSession], every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await sweep_once(sessionmaker)
        except Exception:
            # The database may be away for a while; the next round tries again.
            logger.warning("sweeping expired leave reservations failed", exc_info=True)
