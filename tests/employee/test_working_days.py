"""The working-day count of a leave, as a pure function: weekends, holidays, half days and
the turn of the year."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from services.employee.leaves.working_days import (
    MAX_SPAN_DAYS,
    InvalidDates,
    plain,
    working_days_by_year,
)

MONDAY = date(2031, 3, 3)
FRIDAY = date(2031, 3, 7)


def test_a_week_from_monday_to_friday_is_five_days() -> None:
    assert working_days_by_year(MONDAY, FRIDAY, set()) == {2031: 5}


def test_weekends_inside_the_range_are_not_counted() -> None:
    assert working_days_by_year(FRIDAY, FRIDAY + timedelta(days=3), set()) == {2031: 2}
    assert working_days_by_year(MONDAY, MONDAY + timedelta(days=13), set()) == {2031: 10}


def test_a_weekend_alone_counts_nothing() -> None:
    saturday = FRIDAY + timedelta(days=1)
    assert working_days_by_year(saturday, saturday + timedelta(days=1), set()) == {}


def test_holidays_inside_the_range_are_not_counted() -> None:
    holiday = MONDAY + timedelta(days=2)
    assert working_days_by_year(MONDAY, FRIDAY, {holiday}) == {2031: 4}
    assert working_days_by_year(holiday, holiday, {holiday}) == {}


@pytest.mark.parametrize("half", ["am", "pm"])
def test_a_half_day_counts_one_half(half: str) -> None:
    assert working_days_by_year(MONDAY, MONDAY, set(), half) == {2031: Decimal("0.5")}  # type: ignore[arg-type]


def test_a_half_day_on_a_weekend_or_holiday_counts_nothing() -> None:
    saturday = FRIDAY + timedelta(days=1)
    assert working_days_by_year(saturday, saturday, set(), "am") == {}
    assert working_days_by_year(MONDAY, MONDAY, {MONDAY}, "pm") == {}


def test_a_half_day_is_refused_over_more_than_one_date() -> None:
    with pytest.raises(InvalidDates, match="halfDay is only allowed when startDate equals endDate"):
        working_days_by_year(MONDAY, FRIDAY, set(), "am")


def test_an_end_before_the_start_is_refused() -> None:
    with pytest.raises(InvalidDates, match="endDate must not be before startDate"):
        working_days_by_year(FRIDAY, MONDAY, set())


def test_a_leave_over_the_new_year_counts_each_day_in_its_own_year() -> None:
    # Wed 30 and Thu 31 December; Fri 1, Mon 4 and Tue 5 January.
    start, end = date(2026, 12, 30), date(2027, 1, 5)
    assert working_days_by_year(start, end, set()) == {2026: 2, 2027: 3}
    assert working_days_by_year(start, end, {date(2027, 1, 1)}) == {2026: 2, 2027: 2}


def test_a_year_end_with_no_working_day_leaves_that_year_out() -> None:
    # Fri 31 December 2032 is a holiday; Mon 3 January 2033 is the only day worked.
    start, end = date(2032, 12, 31), date(2033, 1, 3)
    assert working_days_by_year(start, end, {date(2032, 12, 31)}) == {2033: 1}


def test_a_leave_spans_one_year_at_most() -> None:
    start = date(2031, 1, 1)
    working_days_by_year(start, start + timedelta(days=MAX_SPAN_DAYS - 1), set())
    with pytest.raises(InvalidDates, match="A leave may span at most 366 days"):
        working_days_by_year(start, start + timedelta(days=MAX_SPAN_DAYS), set())


def test_the_last_representable_date_counts_without_overflow() -> None:
    assert working_days_by_year(date.max, date.max, set()) == {9999: 1}


@pytest.mark.parametrize(
    ("days", "text"),
    [(Decimal("1.0"), "1"), (Decimal("0.5"), "0.5"), (Decimal("10"), "10"), (Decimal(0), "0")],
)
def test_day_counts_are_written_without_a_trailing_zero(days: Decimal, text: str) -> None:
    assert plain(days) == text
