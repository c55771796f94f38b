"""The console as a deployment configures it (/config.json, served by the deployed gateway):
a `traceUi` sends the request list's trace link to the deployment's own tracing UI, Jaeger's,
in a new tab; without it the link opens the console's own waterfall."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import unquote

import httpx
import pytest
from playwright.async_api import Browser, expect

from tests.support import factories
from tests.support.browser import DIST, new_page, sign_in
from tests.support.console import serving
from tests.support.layouts import Layout

# The trace search deploy/gateway/console-config.json ships: requests by their erp.request_id.
TRACE_UI = (
    "/jaeger/search?service=approval-request-service"
    "&tags=%7B%22erp.request_id%22%3A%22{requestId}%22%7D&lookback=2d"
)


@pytest.fixture(scope="module")
def deployed_console_url(layout: Layout, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert (DIST / "index.html").exists(), "build the console first: make console"
    deployed = {"signIn": "development", "traceUi": TRACE_UI}
    with serving(layout, DIST, tmp_path_factory.mktemp("console"), config=deployed) as base:
        yield base


async def _filed_request(
    client: httpx.AsyncClient, employee_url: str, approvals_url: str
) -> tuple[int, int]:
    requester = await factories.employee(client, employee_url)
    approver = await factories.employee(client, employee_url)
    body = factories.approval_body(requester["id"], [approver["id"]])
    return requester["id"], await factories.approval(client, approvals_url, body)


async def test_a_deployed_trace_link_opens_jaeger_s_search_for_the_request(
    browser: Browser,
    deployed_console_url: str,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
) -> None:
    requester, request_id = await _filed_request(client, employee_url, approvals_url)
    page = await new_page(browser)
    await sign_in(page, deployed_console_url, requester)
    await page.get_by_role("link", name="내 요청").click()

    link = page.locator(f'[data-request-id="{request_id}"] [data-trace-link]')
    expected = TRACE_UI.replace("{requestId}", str(request_id))
    await expect(link).to_have_attribute("href", expected)
    await expect(link).to_have_attribute("target", "_blank")
    assert f'"erp.request_id":"{request_id}"' in unquote(expected)


async def test_without_a_deployed_config_the_trace_link_opens_the_console_s_waterfall(
    browser: Browser,
    console_url: str,
    client: httpx.AsyncClient,
    employee_url: str,
    approvals_url: str,
) -> None:
    requester, request_id = await _filed_request(client, employee_url, approvals_url)
    page = await new_page(browser)
    await sign_in(page, console_url, requester)
    await page.get_by_role("link", name="내 요청").click()

    link = page.locator(f'[data-request-id="{request_id}"] [data-trace-link]')
    await expect(link).to_have_attribute("href", f"#/trace/request/{request_id}")
    await expect(link).not_to_have_attribute("target", "_blank")
