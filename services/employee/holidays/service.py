"""Public holidays. Functions flush but never commit: the request's unit of work does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import delete, select
from sqlalchemy.dialects.mysql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.employee.holidays.models import Holiday


async def in_year(*, session: AsyncSession, year: int) -> Sequence[Holiday]:
    return await between(session=session, start=date(year, 1, 1), end=date(year, 12, 31))


async def between(*, session: AsyncSession, start: date, end: date) -> Sequence[Holiday]:
    query = select(Holiday).where(Holiday.holiday_date.between(start, end))
    return (await session.scalars(query.order_by(Holiday.holiday_date))).all()


async def put(*, session: AsyncSession, day: date, name: str) -> Holiday:
    # An upsert: two administrators naming the same day at once both succeed, last one wins.
    upsert = insert(Holiday).values(holiday_date=day, name=name)
    await session.execute(upsert.on_duplicate_key_update(name=upsert.inserted.name))
    return Holiday(holiday_date=day, name=name)


async def remove(*, session: AsyncSession, day: date) -> bool:
    result = await session.execute(delete(Holiday).where(Holiday.holiday_date == day))
    return bool(getattr(result, "rowcount", 0))
