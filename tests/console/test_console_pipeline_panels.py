"""The admin page of live pipeline panels in a real browser: a Prometheus scraping the
session's services, the console's gateway passing its query API on the console's origin, real
approval flows run first."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support import factories, pipeline
from tests.support.browser import DIST, REPO, fits_the_width, new_page, screenshot, sign_in
from tests.support.console import serving
from tests.support.layouts import Layout
from tests.support.prometheus import running
from tests.support.stack import Stack, free_port

PANELS = json.loads((REPO / "console" / "src" / "pipeline-panels.json").read_text())
# The page refreshes every 15 s: two refreshes and some.
SHOWN_WITHIN_MS = 40_000


@pytest.fixture(scope="module")
def prometheus(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running(stack, tmp_path_factory.mktemp("prometheus")) as url:
        yield url


async def _total(client: httpx.AsyncClient, prometheus: str, expr: str) -> float:
    answer = await client.get(f"{prometheus}/api/v1/query", params={"query": expr})
    assert answer.status_code == 200, answer.text
    return sum(float(sample["value"][1]) for sample in answer.json()["data"]["result"])


async def _approved_flows(
    client: httpx.AsyncClient, layout: Layout, prometheus: str, rounds: int
) -> None:
    """Approved GENERAL requests, each seen by Prometheus before the next: a counter first
    scraped at its incremented value shows no increase to rate()."""
    requester, approver = await factories.employees(client, layout.url("employee"), 2)
    approvals = layout.url("approval_request")
    created = "sum(erp_approvals_created_total)"
    for _ in range(rounds):
        before = await _total(client, prometheus, created)
        body = factories.approval_body(requester, [approver])
        request_id = await factories.approval(client, approvals, body)
        decided = await pipeline.decide(
            client, layout.url("approval_processing"), approver, request_id
        )
        assert decided.status_code == 200, decided.text
        await pipeline.final_status(client, approvals, request_id, "approved")

        async def counted(before: float = before) -> bool:
            return await _total(client, prometheus, created) > before

        await pipeline.eventually(counted, timeout=30, what="Prometheus to count the flow")


def _panel(panel_id: str) -> tuple[str, str]:
    """The panel's selector and its value's."""
    section = f'[data-panel="{panel_id}"]'
    return section, f"{section} [data-testid=value]"


async def _expected(client: httpx.AsyncClient, prometheus: str, panel_id: str) -> str:
    """The value attribute the panel must show now, as Prometheus answers the panel's own
    query: empty for no data."""
    [panel] = [p for p in PANELS["panels"] if p["id"] == panel_id]
    expr = panel["expr"].replace("$__rate_interval", PANELS["rateInterval"])
    answer = await client.get(f"{prometheus}/api/v1/query", params={"query": expr})
    values = [float(s["value"][1]) for s in answer.json()["data"]["result"]]
    if not values:
        return ""
    total = sum(values)
    return "0" if total == 0 else str(total)


async def test_the_pipeline_page_shows_live_flows_and_a_drained_pipeline(
    browser: Browser,
    layout: Layout,
    prometheus: str,
    client: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    upstream = prometheus.removeprefix("http://")
    with serving(layout, DIST, tmp_path / "console", prometheus=upstream) as base:
        await _approved_flows(client, layout, prometheus, rounds=2)
        (admin,) = await factories.employees(client, layout.url("employee"), 1)
        page = await new_page(browser)
        await sign_in(page, base, admin, admin=True)
        await page.get_by_role("link", name="파이프라인").click()
        await expect(page.get_by_role("heading", name="파이프라인")).to_be_visible()
        for panel in PANELS["panels"]:
            heading = page.get_by_role("heading", name=panel["title"]["ko"])
            await expect(heading).to_be_visible()

        flows, flows_value = _panel("flows")
        await page.wait_for_function(
            f"Number(document.querySelector('{flows_value}')?.dataset.value) > 0",
            timeout=SHOWN_WITHIN_MS,
        )
        await expect(page.locator(flows_value)).to_contain_text("건/초")
        # The sparkline is drawn for the eye once two points of the last 15 minutes have a
        # rate (this Prometheus is new); its text alternative says the same in words.
        await expect(page.locator(f"{flows} svg")).to_have_attribute(
            "aria-hidden", "true", timeout=SHOWN_WITHIN_MS
        )
        await expect(page.locator(f"{flows} .sr-only")).to_contain_text("최근 15분: 최소")
        _, p95_value = _panel("p95")
        await page.wait_for_function(
            f"Number(document.querySelector('{p95_value}')?.dataset.value) > 0",
            timeout=SHOWN_WITHIN_MS,
        )

        # Nothing dead-lettered, nothing left in the outbox once it drained: the page says
        # what Prometheus says, a 0 or no data at all.
        for panel_id in ("dead-letters", "outbox"):
            _, value = _panel(panel_id)

            async def drained(panel_id: str = panel_id) -> list[str] | None:
                expected = await _expected(client, prometheus, panel_id)
                return [expected] if expected in {"", "0"} else None

            [expected] = await pipeline.eventually(drained, timeout=30, what=f"{panel_id} at 0")
            await expect(page.locator(value)).to_have_attribute(
                "data-value", expected, timeout=SHOWN_WITHIN_MS
            )
            shown = "0" if expected else "데이터 없음"
            await expect(page.locator(value)).to_contain_text(shown)
        assert await fits_the_width(page)
        await screenshot(page, "pipeline", full_page=True)


async def test_the_pipeline_page_says_when_prometheus_cannot_be_reached(
    browser: Browser, layout: Layout, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    nothing = f"127.0.0.1:{free_port()}"
    with serving(layout, DIST, tmp_path / "console", prometheus=nothing) as base:
        (admin,) = await factories.employees(client, layout.url("employee"), 1)
        page = await new_page(browser)
        await sign_in(page, base, admin, admin=True)
        await page.get_by_role("link", name="파이프라인").click()
        await expect(page.get_by_role("alert")).to_contain_text(
            "Prometheus에 연결할 수 없습니다: HTTP 502"
        )
        await expect(page.get_by_test_id("value")).to_have_count(0)
        assert await fits_the_width(page)
