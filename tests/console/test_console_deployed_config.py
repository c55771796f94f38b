"""The console as a deployment configures it (/config.json, served by the deployed gateway):
a `traceUi` sends the request list's trace link to the deployment's own tracing UI, Jaeger's
on its own port of the console's host, in a new tab; without it the link opens the
console's own waterfall."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, expect

from devstack.process import REPO_ROOT
from tests.support import factories
from tests.support.browser import DIST, new_page, sign_in
from tests.support.console import serving
from tests.support.layouts import Layout

# The trace search Swarm's console config ships, Jaeger published on 16686 of the console's
# host: requests by their erp.request_id.
TRACE_UI = json.loads((REPO_ROOT / "deploy" / "gateway" / "console-config.json").read_text())[
    "traceUi"
]


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


async def test_a_deployed_trace_link_opens_jaeger_s_search_for_the_request_on_the_console_s_host(
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
    host = urlsplit(deployed_console_url).hostname
    assert host == "127.0.0.1"
    expected = TRACE_UI.replace("{hostname}", host).replace("{requestId}", str(request_id))
    await expect(link).to_have_attribute("href", expected)
    await expect(link).to_have_attribute("target", "_blank")
    assert expected.startswith("http://127.0.0.1:16686/jaeger/search?")
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
