"""How many working days a leave takes, per calendar year: weekdays from start to end
inclusive, minus holidays; a half day ("am"/"pm", one date only) counts 0.5. Pure, so the
rules are unit-tested without a database."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date
from decimal import Decimal
from typing import Literal

HalfDay = Literal["am", "pm"]
# One calendar year at most, so a leave touches two calendar years at most.
MAX_SPAN_DAYS = 366
SATURDAY = 5
FULL = Decimal(1)
HALF = Decimal("0.5")


class InvalidDates(ValueError):
    pass


def check_dates(start: date, end: date, half_day: HalfDay | None) -> None:
    if end < start:
        raise InvalidDates("endDate must not be before startDate")
    if (end - start).days + 1 > MAX_SPAN_DAYS:
        raise InvalidDates(f"A leave may span at most {MAX_SPAN_DAYS} days")
    if half_day is not None and start != end:
        raise InvalidDates("halfDay is only allowed when startDate equals endDate")


def working_days_by_year(
    start: date, end: date, holidays: Collection[date], half_day: HalfDay | None = None
) -> dict[int, Decimal]:
    """Days counted in each calendar year the leave touches; a year with none is left out."""
    check_dates(start, end, half_day)
    each = HALF if half_day is not None else FULL
    counts: dict[int, Decimal] = {}
    # Ordinals rather than adding a day: the day after date.max does not exist.
    for ordinal in range(start.toordinal(), end.toordinal() + 1):
        day = date.fromordinal(ordinal)
        if day.weekday() < SATURDAY and day not in holidays:
            counts[day.year] = counts.get(day.year, Decimal(0)) + each
    return counts


def plain(days: Decimal) -> str:
    """A day count as people write it: ``1``, ``0.5``, ``10`` (never ``1.0`` or ``1E+1``)."""
    return format(days.normalize(), "f")
