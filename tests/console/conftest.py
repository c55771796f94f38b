"""The console's browser tests: the console's gateway in front of the session's services, and
Debian's Chromium driven by Playwright (never Playwright's own browser download)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from playwright.async_api import Browser, async_playwright

from tests.support.browser import DIST, chromium
from tests.support.console import serving
from tests.support.layouts import Layout


@pytest.fixture(scope="module")
def console_url(layout: Layout, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert (DIST / "index.html").exists(), "build the console first: make console"
    with serving(layout, DIST, tmp_path_factory.mktemp("console")) as base:
        yield base


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=chromium(), args=["--no-sandbox"]
        )
        try:
            yield launched
        finally:
            await launched.close()
