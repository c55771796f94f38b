"""What the console's browser tests share: Debian's Chromium, the viewports, signing in through
the development sign-in, the 360 px check, and the documentation's screenshots."""

from __future__ import annotations

import os
import shutil
from datetime import date, timedelta
from pathlib import Path

from playwright.async_api import Browser, Page, ViewportSize, expect

REPO = Path(__file__).resolve().parents[2]
DIST = REPO / "console" / "dist"
SCREENSHOTS = REPO / "docs" / "console"
# The screenshots under docs/console/ are rewritten only when asked (`make browser-test`):
# a CI run of the browser tests leaves the clone as it found it.
WRITE_SCREENSHOTS = os.environ.get("ERP_CONSOLE_SCREENSHOTS") == "1"
PHONE: ViewportSize = {"width": 360, "height": 780}
DESKTOP: ViewportSize = {"width": 1100, "height": 800}


def chromium() -> str:
    found = os.environ.get("ERP_CHROMIUM") or shutil.which("chromium")
    assert found, (
        "the browser tests drive Debian's Chromium, which is not installed: "
        "`.venv/bin/erp install --with-console` (make infra) installs it"
    )
    return found


def leave_dates() -> tuple[str, str]:
    """Tuesday to Thursday, at least two weeks ahead."""
    first = date.today() + timedelta(days=14)
    tuesday = first + timedelta(days=(1 - first.weekday()) % 7)
    return tuesday.isoformat(), (tuesday + timedelta(days=2)).isoformat()


async def sign_in(page: Page, base: str, employee_id: int, *, admin: bool = False) -> None:
    await page.goto(base)
    await page.get_by_label("직원").select_option(str(employee_id))
    if admin:
        await page.get_by_label("관리자 권한").check()
    await page.get_by_role("button", name="로그인").click()
    await expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "open")


async def fits_the_width(page: Page) -> bool:
    return bool(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


async def new_page(browser: Browser, viewport: ViewportSize = PHONE) -> Page:
    return await (await browser.new_context(viewport=viewport, locale="ko-KR")).new_page()


async def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    """docs/console/<name>.png, with ERP_CONSOLE_SCREENSHOTS=1 only."""
    if not WRITE_SCREENSHOTS:
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=full_page)
