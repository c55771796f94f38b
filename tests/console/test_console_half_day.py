"""The LEAVE form's half-day choice in a real browser against the session's services: offered
for a one-date leave only, counted 0.5 by the server before sending, reserved as 0.5 after."""

from __future__ import annotations

import httpx
from playwright.async_api import Browser, expect

from tests.support import factories, pipeline
from tests.support.browser import fits_the_width, leave_dates, new_page, sign_in


async def test_a_morning_half_day_is_counted_and_reserved_as_half_a_day(
    browser: Browser,
    console_url: str,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
) -> None:
    requester, approver = await factories.employees(client, employee_url, 2)
    day, thursday = leave_dates()
    await factories.entitle(client, employee_url, requester, year=int(day[:4]), days=2)
    page = await new_page(browser)
    await sign_in(page, console_url, requester)
    await page.get_by_role("link", name="내 요청").click()
    await page.get_by_label("휴가", exact=True).check()
    await page.get_by_label("제목").fill("오전 반차")
    await page.get_by_label("단계 1").select_option(str(approver))
    part = page.get_by_role("group", name="휴가 시간")
    count = page.get_by_test_id("working-days")

    # Two dates: no half day to choose.
    await page.get_by_label("시작일").fill(day)
    await page.get_by_label("종료일").fill(thursday)
    await expect(count).to_contain_text("근무일: 3일")
    await expect(part).to_have_count(0)

    # One date: full day by default, then the morning, counted by the server.
    await page.get_by_label("종료일").fill(day)
    await expect(part.get_by_label("종일")).to_be_checked()
    await expect(count).to_contain_text("근무일: 1일 · 보낸 뒤 남는 일수 1일")
    await part.get_by_label("오전 반차").check()
    await expect(count).to_contain_text("근무일: 0.5일 · 보낸 뒤 남는 일수 1.5일")
    assert await fits_the_width(page)

    await page.get_by_role("button", name="요청 보내기").click()
    await expect(page.get_by_role("status").filter(has_text="보냈습니다")).to_be_visible()
    balance = page.get_by_test_id("balance")
    await expect(balance).to_contain_text("남은 일수: 1.5일")
    await expect(balance).to_contain_text("결재 대기 0.5일")
    sent = page.locator("[data-testid=requests] > li")
    await expect(sent).to_contain_text(f"{day} ~ {day} 오전 반차 (0.5일)")
    request_id = int(await sent.get_attribute("data-request-id") or 0)
    doc = await pipeline.document(client, approvals_url, request_id)
    assert doc["leaveInfo"]["halfDay"] == "am"
    assert doc["leaveInfo"]["days"] == 0.5
    assert await fits_the_width(page)
