"""Every page of the console, signed in as an administrator at 360 px: reached from the nav by
the keyboard alone (Tab, then Enter), no horizontal scrolling, and no accessibility violation
axe-core rates serious or critical, with the Korean labels and with the English ones."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.support import factories
from tests.support.browser import DIST, REPO, fits_the_width, new_page, sign_in
from tests.support.console import serving
from tests.support.layouts import Layout
from tests.support.oidc_provider import AUDIENCE, CLIENT_ID

AXE = REPO / "console" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")
# Tab presses allowed to reach a link; the header and nav hold about a dozen stops.
MAX_TABS = 60
# A deployment's sign-in through an identity provider: the page asks the provider nothing
# before its button is pressed, so none has to answer here.
OIDC_CONFIG = {
    "signIn": "oidc",
    "oidc": {
        "issuer": "http://127.0.0.1:9/",
        "clientId": CLIENT_ID,
        "scope": "openid",
        "audience": AUDIENCE,
    },
}


@dataclass(frozen=True)
class ConsolePage:
    name: str
    # The nav tab's Korean label the keyboard goes to; None: a page shown signed out.
    tab: str | None
    # Shown once the page holds its content; {inbox} and {mine} are the seeded requests' ids.
    ready: str
    # A link on the tab's page that leads here (a page without a tab of its own).
    link: str | None = None
    # Jaeger shows spans seconds after they end: the page's refresh button until ready shows.
    refresh: bool = False
    # A choice (by its label) made on the page first, for a form that changes with it.
    choose: str | None = None
    # Served as a deployment with OIDC_CONFIG as its /config.json serves it.
    oidc: bool = False


PAGES = (
    ConsolePage("sign-in", None, "select"),
    ConsolePage("oidc-sign-in", None, "main section:not(:has(select)) button", oidc=True),
    ConsolePage("notifications", "알림", "[data-testid=notifications]"),
    ConsolePage("inbox", "결재함", '[data-testid=inbox] [data-request-id="{inbox}"]'),
    ConsolePage("requests", "내 요청", '[data-testid=requests] [data-request-id="{mine}"]'),
    ConsolePage("leave-form", "내 요청", "[data-testid=balance]", choose="휴가"),
    ConsolePage(
        "trace",
        "내 요청",
        "[data-testid=waterfall]",
        link='[data-request-id="{mine}"] [data-trace-link]',
        refresh=True,
    ),
    ConsolePage("attendance", "근태", "main h2"),
    ConsolePage("admin-employees", "직원 관리", "[data-testid=employees] li"),
    ConsolePage("admin-leave-types", "휴가 종류", '[data-testid=leave-types] [data-code="ANNUAL"]'),
    ConsolePage("admin-holidays", "공휴일", "main form"),
    ConsolePage("admin-report", "휴가 보고서", "main form"),
    ConsolePage("admin-pipeline", "파이프라인", "[data-panel]"),
)


@pytest.fixture(scope="module")
def oidc_console_url(layout: Layout, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert (DIST / "index.html").exists(), "build the console first: make console"
    work = tmp_path_factory.mktemp("oidc-console")
    with serving(layout, DIST, work, config=OIDC_CONFIG) as base:
        yield base


async def serious_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        assert AXE.exists(), f"{AXE} is missing: npm ci in console/ (erp build-console)"
        await page.add_script_tag(path=str(AXE))
    violations = await page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map((v) => ({id: v.id, impact: v.impact, help: v.help,
                          targets: v.nodes.map((n) => n.target.join(" "))}))"""
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']}; at {' | '.join(v['targets'])}"
        for v in violations
        if v["impact"] in BLOCKING
    ]


async def tab_to(page: Page, target: Locator) -> None:
    """Press Tab until `target` has the focus."""
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        if await target.evaluate("(e) => e === document.activeElement"):
            return
    raise AssertionError(f"{MAX_TABS} presses of Tab never reached {target}")


async def choose(page: Page, choice: Locator) -> None:
    """A radio button picked by the keyboard: Tab reaches its group's checked button, the
    arrow keys move the choice."""
    group = await choice.get_attribute("name")
    await tab_to(page, page.locator(f'input[type=radio][name="{group}"]:checked'))
    for _ in range(await page.locator(f'input[type=radio][name="{group}"]').count()):
        if await choice.is_checked():
            return
        await page.keyboard.press("ArrowDown")
    await expect(choice).to_be_checked()


async def reach(page: Page, shown: ConsolePage, ready: Locator, ids: dict[str, int]) -> None:
    """From the top of the page, Tab to the page's tab in the nav, Enter; then likewise to
    the link that leads to the page, if any."""
    await page.evaluate("document.activeElement?.blur()")
    assert shown.tab is not None
    tab = page.get_by_role("navigation").get_by_role("link", name=shown.tab, exact=True)
    await tab_to(page, tab)
    await page.keyboard.press("Enter")
    await expect(tab).to_have_attribute("aria-current", "page")
    if shown.link is not None:
        link = page.locator(shown.link.format(**ids)).first
        await expect(link).to_be_visible(timeout=15_000)
        await tab_to(page, link)
        await page.keyboard.press("Enter")
    if shown.choose is not None:
        await choose(page, page.get_by_label(shown.choose, exact=True))
    if shown.refresh:
        deadline = time.monotonic() + 60
        while not await ready.count():
            assert time.monotonic() < deadline, f"{shown.name}: {ready} never showed"
            await page.get_by_role("button", name="새로 고침").click()
            await page.wait_for_timeout(1000)
    await expect(ready.first).to_be_visible(timeout=15_000)


async def problems_in_both_languages(page: Page, shown: ConsolePage) -> list[str]:
    found = []
    for language, switch in (("ko", "Switch to English"), ("en", "한국어 화면으로 보기")):
        if not await fits_the_width(page):
            found.append(f"{shown.name} ({language}): scrolls horizontally at 360 px")
        found += [f"{shown.name} ({language}): {v}" for v in await serious_violations(page)]
        await page.get_by_role("button", name=switch).click()
    return found


@pytest.mark.parametrize("shown", PAGES, ids=[p.name for p in PAGES])
async def test_every_page_is_keyboard_reachable_fits_360_px_and_passes_axe(
    shown: ConsolePage,
    request: pytest.FixtureRequest,
    browser: Browser,
    console_url: str,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
) -> None:
    admin = await factories.employee(client, employee_url, name="최관리", position="부장")
    other = await factories.employee(client, employee_url, name="정하늘", position="대리")
    ids = {
        "inbox": await factories.approval(
            client, approvals_url, factories.approval_body(other["id"], [admin["id"]])
        ),
        "mine": await factories.approval(
            client, approvals_url, factories.leave_body(admin["id"], [other["id"]])
        ),
    }
    page = await new_page(browser)
    ready = page.locator(shown.ready.format(**ids))
    if shown.tab is None:
        await page.goto(request.getfixturevalue("oidc_console_url") if shown.oidc else console_url)
        await expect(ready.first).to_be_visible()
        await page.evaluate("document.activeElement?.blur()")
        await tab_to(page, ready.first)
    else:
        await sign_in(page, console_url, admin["id"], admin=True)
        await reach(page, shown, ready, ids)

    problems = await problems_in_both_languages(page, shown)

    assert not problems, "\n".join(problems)
