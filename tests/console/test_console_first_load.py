"""Issue 22's first-load budget, measured in the browser: every script the console's first
page loads, as served, and gzip-compressed (what a gzip-serving gateway sends)."""

from __future__ import annotations

import gzip

from playwright.async_api import Browser, Response

from tests.support.browser import new_page

BUDGET_GZIP_BYTES = 200 * 1024


async def test_the_first_load_stays_under_200_kb_of_javascript_gzip(
    browser: Browser, console_url: str
) -> None:
    page = await new_page(browser)
    scripts: list[Response] = []
    page.on(
        "response", lambda r: scripts.append(r) if r.request.resource_type == "script" else None
    )

    await page.goto(console_url)
    await page.wait_for_load_state("networkidle")

    bodies = [await r.body() for r in scripts]
    raw = sum(len(b) for b in bodies)
    gzipped = sum(len(gzip.compress(b, compresslevel=6)) for b in bodies)
    print(f"first load: {len(bodies)} scripts, {raw / 1024:.1f} KB, {gzipped / 1024:.1f} KB gzip")
    assert bodies, "the console loaded no script"
    assert gzipped < BUDGET_GZIP_BYTES
