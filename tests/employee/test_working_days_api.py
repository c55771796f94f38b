"""The working-day count a LEAVE form shows before sending (GET /leaves/working-days),
through the running service: the same count and the same refusals as a reservation."""

from __future__ import annotations

import httpx
import pytest

from tests.employee.leave_calls import RESERVATIONS, reservation
from tests.support import factories
from tests.support.auth import as_user

COUNT = "/leaves/working-days"


@pytest.fixture
async def holidays(client: httpx.AsyncClient, employee_url: str) -> None:
    # 2041 and 2042 are these tests' years for holidays: Fri 3 May 2041, Wed 1 January 2042.
    for day in ("2041-05-03", "2042-01-01"):
        response = await client.put(f"{employee_url}/holidays/{day}", json={"name": "휴일"})
        assert response.status_code == 200, response.text


async def count(
    client: httpx.AsyncClient, base: str, start: str, end: str, **params: str
) -> httpx.Response:
    return await client.get(
        f"{base}{COUNT}",
        params={"startDate": start, "endDate": end, **params},
        headers=as_user(1),
    )


@pytest.mark.usefixtures("holidays")
async def test_the_weekend_and_holidays_are_not_counted_as_a_reservation_would_not(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    # Thursday 2 to Monday 6 May 2041, Friday a holiday: Thursday and Monday.
    counted = await count(client, employee_url, "2041-05-02", "2041-05-06")
    assert (counted.status_code, counted.json()) == (200, {"days": 2, "perYear": {"2041": 2}})
    eid = (await factories.employee(client, employee_url))["id"]
    reserved = await client.post(
        f"{employee_url}{RESERVATIONS}", json=reservation(eid, "2041-05-02", "2041-05-06")
    )
    assert reserved.json()["days"] == counted.json()["days"]


@pytest.mark.usefixtures("holidays")
async def test_a_half_day_counts_half_and_a_day_off_counts_nothing(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    half = await count(client, employee_url, "2041-05-02", "2041-05-02", halfDay="pm")
    on_the_holiday = await count(client, employee_url, "2041-05-03", "2041-05-03", halfDay="am")
    weekend = await count(client, employee_url, "2041-05-04", "2041-05-05")
    assert half.json() == {"days": 0.5, "perYear": {"2041": 0.5}}
    assert on_the_holiday.json() == {"days": 0, "perYear": {}}
    assert (weekend.status_code, weekend.json()) == (200, {"days": 0, "perYear": {}})


@pytest.mark.usefixtures("holidays")
async def test_a_leave_over_the_year_end_is_counted_in_each_calendar_year(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    # Monday 30 December 2041 to Thursday 2 January 2042, New Year's Day a holiday.
    counted = await count(client, employee_url, "2041-12-30", "2042-01-02")
    assert counted.json() == {"days": 3, "perYear": {"2041": 2, "2042": 1}}


@pytest.mark.parametrize(
    ("start", "end", "params", "detail"),
    [
        ("2041-05-06", "2041-05-02", {}, "endDate must not be before startDate"),
        (
            "2041-05-02",
            "2041-05-03",
            {"halfDay": "am"},
            "halfDay is only allowed when startDate equals endDate",
        ),
        ("2041-01-01", "2042-01-02", {}, "A leave may span at most 366 days"),
    ],
    ids=["end-before-start", "half-day-on-a-range", "span-too-long"],
)
async def test_impossible_dates_are_refused_in_the_reservations_words(
    client: httpx.AsyncClient,
    employee_url: str,
    start: str,
    end: str,
    params: dict[str, str],
    detail: str,
) -> None:
    counted = await count(client, employee_url, start, end, **params)
    eid = (await factories.employee(client, employee_url))["id"]
    reserved = await client.post(
        f"{employee_url}{RESERVATIONS}",
        json=reservation(eid, start, end, **{"halfDay": params.get("halfDay")}),
    )
    assert (counted.status_code, counted.json()) == (400, {"detail": detail})
    assert reserved.json() == counted.json()


async def test_unreadable_dates_are_a_client_error(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    unparsable = await count(client, employee_url, "2041-02-30", "2041-05-02")
    missing = await client.get(
        f"{employee_url}{COUNT}", params={"startDate": "2041-05-02"}, headers=as_user(1)
    )
    assert (unparsable.status_code, missing.status_code) == (422, 422)


async def test_the_count_needs_a_token(anonymous: httpx.AsyncClient, employee_url: str) -> None:
    response = await anonymous.get(
        f"{employee_url}{COUNT}", params={"startDate": "2041-05-02", "endDate": "2041-05-02"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
