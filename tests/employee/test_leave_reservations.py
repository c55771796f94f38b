"""Leave reservations through the running service: reserve (type, working days, balance and
overlap checked under the employee's lock), hold, confirm, release; each idempotent on the
approval request id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.employee.leave_calls import (
    RESERVATIONS,
    balance,
    entitle,
    next_request_id,
    reservation,
)
from tests.support import factories
from tests.support.auth import as_user

# Mon 3 to Fri 7 March 2031: no holiday is ever put in 2031 by the tests.
MONDAY, FRIDAY = "2031-03-03", "2031-03-07"


async def _employee(client: httpx.AsyncClient, base: str) -> int:
    return int((await factories.employee(client, base))["id"])


async def test_a_reservation_counts_the_working_days_and_is_tentative_until_it_expires(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = await _employee(client, employee_url)
    body = reservation(eid, MONDAY, "2031-03-10")
    before = datetime.now(UTC)

    response = await client.post(f"{employee_url}{RESERVATIONS}", json=body)

    assert response.status_code == 201, response.text
    answer = response.json()
    expires = datetime.fromisoformat(answer.pop("expiresAt"))
    assert answer == {
        "requestId": body["requestId"],
        "employeeId": eid,
        "leaveType": "ANNUAL",
        "startDate": MONDAY,
        "endDate": "2031-03-10",
        "halfDay": None,
        "days": 6,
        "status": "tentative",
    }
    assert before + timedelta(minutes=9) < expires < before + timedelta(minutes=11)
    assert await balance(client, employee_url, eid, 2031) == {
        "leave_type": "ANNUAL",
        "year": 2031,
        "entitled": 15,
        "used": 0,
        "reserved": 6,
        "remaining": 9,
    }


async def test_the_same_reservation_again_answers_200_with_the_same_body(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = await _employee(client, employee_url)
    body = reservation(eid, MONDAY, FRIDAY, days=5, leaveType="annual")
    first = await client.post(f"{employee_url}{RESERVATIONS}", json=body)
    second = await client.post(f"{employee_url}{RESERVATIONS}", json=body)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert (await balance(client, employee_url, eid, 2031))["reserved"] == 5


async def test_the_same_request_id_with_other_fields_is_a_409(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = await _employee(client, employee_url)
    body = reservation(eid, MONDAY, FRIDAY)
    assert (await client.post(f"{employee_url}{RESERVATIONS}", json=body)).status_code == 201
    response = await client.post(
        f"{employee_url}{RESERVATIONS}", json={**body, "endDate": "2031-03-06"}
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Request {body['requestId']} already has a different reservation"
    }


@pytest.mark.parametrize(
    ("fields", "status", "detail"),
    [
        ({"leaveType": "vacation"}, 400, "Unknown leave type VACATION"),
        (
            {"startDate": "2031-03-08", "endDate": "2031-03-09"},
            400,
            "Leave covers no working days",
        ),
        ({"days": 4}, 400, "days does not match the dates (5 working days)"),
        (
            {"halfDay": "am"},
            400,
            "halfDay is only allowed when startDate equals endDate",
        ),
        ({"startDate": FRIDAY, "endDate": MONDAY}, 400, "endDate must not be before startDate"),
        ({"employeeId": 99_999_999}, 404, "Employee not found"),
    ],
)
async def test_a_reservation_the_rules_refuse_answers_why_and_reserves_nothing(
    client: httpx.AsyncClient,
    employee_url: str,
    fields: dict[str, object],
    status: int,
    detail: str,
) -> None:
    eid = await _employee(client, employee_url)
    body = {**reservation(eid, MONDAY, FRIDAY), **fields}
    response = await client.post(f"{employee_url}{RESERVATIONS}", json=body)
    assert (response.status_code, response.json()) == (status, {"detail": detail})
    assert (await balance(client, employee_url, eid, 2031))["reserved"] == 0


async def test_half_days_count_one_half_and_the_balance_answers_what_is_left(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = await _employee(client, employee_url)
    await entitle(client, employee_url, eid, 2031, 1.5)
    url = f"{employee_url}{RESERVATIONS}"

    whole = await client.post(url, json=reservation(eid, MONDAY, MONDAY))
    two_more = await client.post(url, json=reservation(eid, "2031-03-04", "2031-03-05"))
    half = await client.post(
        url, json=reservation(eid, "2031-03-04", "2031-03-04", halfDay="pm", days=0.5)
    )
    nothing_left = await client.post(
        url, json=reservation(eid, "2031-03-05", "2031-03-05", halfDay="am")
    )

    assert whole.status_code == 201
    assert two_more.status_code == 400
    assert two_more.json() == {"detail": "Insufficient leave balance for ANNUAL: 0.5 days left"}
    assert (half.status_code, half.json()["days"]) == (201, 0.5)
    assert nothing_left.json() == {"detail": "Insufficient leave balance for ANNUAL: 0 days left"}
    assert await balance(client, employee_url, eid, 2031) == {
        "leave_type": "ANNUAL",
        "year": 2031,
        "entitled": 1.5,
        "used": 0,
        "reserved": 1.5,
        "remaining": 0,
    }


async def test_overlapping_leave_is_refused_naming_the_request_it_overlaps(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = await _employee(client, employee_url)
    url = f"{employee_url}{RESERVATIONS}"
    first = reservation(eid, MONDAY, "2031-03-05")
    assert (await client.post(url, json=first)).status_code == 201

    overlapping = await client.post(url, json=reservation(eid, "2031-03-05", FRIDAY))
    other_type = await client.post(
        url, json=reservation(eid, "2031-03-04", "2031-03-04", leaveType="SICK")
    )
    next_to_it = await client.post(url, json=reservation(eid, "2031-03-06", FRIDAY))

    assert overlapping.status_code == 409
    assert overlapping.json() == {"detail": f"Leave overlaps request {first['requestId']}"}
    assert other_type.status_code == 409
    assert next_to_it.status_code == 201


async def test_the_morning_and_the_afternoon_of_one_day_are_two_leaves_that_fit(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = await _employee(client, employee_url)
    url = f"{employee_url}{RESERVATIONS}"
    morning = reservation(eid, MONDAY, MONDAY, halfDay="am")
    assert (await client.post(url, json=morning)).status_code == 201
    again = await client.post(url, json=reservation(eid, MONDAY, MONDAY, halfDay="am"))
    afternoon = await client.post(url, json=reservation(eid, MONDAY, MONDAY, halfDay="pm"))
    assert again.status_code == 409
    assert afternoon.status_code == 201
    assert (await balance(client, employee_url, eid, 2031))["reserved"] == 1


async def test_a_held_reservation_counts_until_it_is_released_and_is_kept(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = await _employee(client, employee_url)
    body = reservation(eid, MONDAY, FRIDAY)
    request_id = body["requestId"]
    url = f"{employee_url}{RESERVATIONS}"
    await client.post(url, json=body)

    held = await client.post(f"{url}/{request_id}/hold")
    held_again = await client.post(f"{url}/{request_id}/hold")
    assert held.status_code == held_again.status_code == 200
    assert held.json() == held_again.json()
    assert (held.json()["status"], held.json()["expiresAt"]) == ("held", None)
    assert (await balance(client, employee_url, eid, 2031))["reserved"] == 5

    released = await client.post(f"{url}/{request_id}/release")
    released_again = await client.post(f"{url}/{request_id}/release")
    assert released.status_code == released_again.status_code == 200
    assert released.json() == released_again.json()
    assert released.json()["status"] == "released"
    assert (await balance(client, employee_url, eid, 2031))["reserved"] == 0
    assert (await client.get(f"{url}/{request_id}")).json()["status"] == "released"

    assert (await client.post(f"{url}/{request_id}/hold")).status_code == 409
    assert (await client.post(url, json=body)).status_code == 409
    # Its days are free for another request.
    assert (await client.post(url, json=reservation(eid, MONDAY, FRIDAY))).status_code == 201


async def test_the_confirmation_approves_the_reservation_with_the_servers_count_once(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = await _employee(client, employee_url)
    body = reservation(eid, MONDAY, MONDAY, halfDay="am")
    request_id = body["requestId"]
    url = f"{employee_url}{RESERVATIONS}"
    await client.post(url, json=body)
    await client.post(f"{url}/{request_id}/hold")
    confirmation = {
        "employeeId": eid,
        "startDate": MONDAY,
        "endDate": MONDAY,
        "days": 1,
        "leaveType": "ANNUAL",
        "reason": "병원",
        "requestId": request_id,
    }

    first = await client.post(f"{employee_url}/leaves/internal/approved", json=confirmation)
    second = await client.post(f"{employee_url}/leaves/internal/approved", json=confirmation)

    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert (first.json()["status"], first.json()["days"], first.json()["reason"]) == (
        "approved",
        0.5,
        "병원",
    )
    listed = await client.get(f"{employee_url}/leaves/me", params={"employeeId": eid})
    assert listed.json() == [first.json()]
    assert await balance(client, employee_url, eid, 2031) == {
        "leave_type": "ANNUAL",
        "year": 2031,
        "entitled": 15,
        "used": 0.5,
        "reserved": 0,
        "remaining": 14.5,
    }
    released = await client.post(f"{url}/{request_id}/release")
    assert released.status_code == 409
    assert released.json() == {"detail": f"Leave of request {request_id} is already approved"}


async def test_a_confirmation_never_reserved_is_recorded_and_counted_as_used(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = await _employee(client, employee_url)
    confirmation = {
        "employeeId": eid,
        "startDate": MONDAY,
        "endDate": "2031-03-05",
        "days": 3,
        "leaveType": "ANNUAL",
        "reason": "",
        "requestId": next_request_id(),
    }
    response = await client.post(f"{employee_url}/leaves/internal/approved", json=confirmation)
    assert response.status_code == 200
    assert (await balance(client, employee_url, eid, 2031))["used"] == 3
    overlapping = await client.post(
        f"{employee_url}{RESERVATIONS}", json=reservation(eid, "2031-03-05", FRIDAY)
    )
    assert overlapping.json() == {"detail": f"Leave overlaps request {confirmation['requestId']}"}


async def test_unlimited_leave_has_no_entitlement_and_nothing_remaining_to_run_out_of(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = await _employee(client, employee_url)
    body = reservation(eid, "2031-01-06", "2031-04-30", leaveType="unpaid")
    response = await client.post(f"{employee_url}{RESERVATIONS}", json=body)
    assert (response.status_code, response.json()["leaveType"]) == (201, "UNPAID")
    assert await balance(client, employee_url, eid, 2031, "UNPAID") == {
        "leave_type": "UNPAID",
        "year": 2031,
        "entitled": None,
        "used": 0,
        "reserved": response.json()["days"],
        "remaining": None,
    }


async def test_a_leave_over_the_new_year_counts_each_part_against_its_years_balance(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    # Mon 29 to Wed 31 December 2031, Thu 1 and Fri 2 January 2032.
    eid = await _employee(client, employee_url)
    await entitle(client, employee_url, eid, 2032, 1)
    url = f"{employee_url}{RESERVATIONS}"

    refused = await client.post(url, json=reservation(eid, "2031-12-29", "2032-01-02"))
    accepted = await client.post(url, json=reservation(eid, "2031-12-29", "2032-01-01"))

    assert refused.json() == {"detail": "Insufficient leave balance for ANNUAL: 1 days left"}
    assert (accepted.status_code, accepted.json()["days"]) == (201, 4)
    assert (await balance(client, employee_url, eid, 2031))["reserved"] == 3
    assert (await balance(client, employee_url, eid, 2032))["reserved"] == 1


async def test_reservation_calls_take_service_credentials_only(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    eid = await _employee(client, employee_url)
    url = f"{employee_url}{RESERVATIONS}"
    response = await client.post(url, json=reservation(eid, MONDAY, FRIDAY), headers=as_user(eid))
    assert response.status_code == 403
    assert (await client.post(f"{url}/1/hold", headers=as_user(eid))).status_code == 403


async def test_hold_or_release_of_an_unknown_reservation_is_a_404(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    url = f"{employee_url}{RESERVATIONS}/{next_request_id()}"
    for action in ("hold", "release"):
        response = await client.post(f"{url}/{action}")
        assert (response.status_code, response.json()) == (404, {"detail": "Reservation not found"})


def _sample(metrics: str, name: str, label: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(f"{name}{{") and f'"{label}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_reservations_and_refusals_are_counted_in_the_metrics(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    async def sample(name: str, label: str) -> float:
        return _sample((await client.get(f"{employee_url}/metrics")).text, name, label)

    eid = await _employee(client, employee_url)
    url = f"{employee_url}{RESERVATIONS}"
    counted = "erp_leave_reservations_total"
    refused = "erp_leave_reservations_refused_total"
    before = [
        await sample(counted, "reserved"),
        await sample(counted, "held"),
        await sample(counted, "released"),
        await sample(refused, "overlap"),
    ]
    body = reservation(eid, MONDAY, FRIDAY)
    await client.post(url, json=body)
    await client.post(url, json=body)
    await client.post(f"{url}/{body['requestId']}/hold")
    await client.post(url, json=reservation(eid, MONDAY, MONDAY))
    await client.post(f"{url}/{body['requestId']}/release")
    after = [
        await sample(counted, "reserved"),
        await sample(counted, "held"),
        await sample(counted, "released"),
        await sample(refused, "overlap"),
    ]
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 1, 1, 1]
