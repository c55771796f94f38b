"""`erp demo` asks for two working days of leave, which employee-service counts itself."""

from __future__ import annotations

from datetime import date

from devstack.demo import leave_dates


def test_the_demo_leave_is_two_working_days_even_when_it_starts_on_a_friday() -> None:
    # 20 November 2026 + 14 days is Friday 4 December.
    assert leave_dates(date(2026, 11, 20)) == (date(2026, 12, 4), date(2026, 12, 7))


def test_the_demo_leave_starts_on_a_weekday() -> None:
    # 21 November 2026 + 14 days is Saturday 5 December.
    assert leave_dates(date(2026, 11, 21)) == (date(2026, 12, 7), date(2026, 12, 8))
