"""The console's production sign-in (OIDC authorization code with PKCE) in Chromium, against a
stand-in provider on 127.0.0.1 (tests/support/oidc_provider.py) whose tokens the session's
real services accept; and the end of a session whose token expired or is refused, in both
sign-in modes: a message, and a WebSocket that stops trying."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from playwright.async_api import Browser, Page, expect

from services.common.auth import AuthSettings
from tests.support import factories
from tests.support.browser import DESKTOP, DIST, new_page, sign_in
from tests.support.console import serving
from tests.support.layouts import Layout
from tests.support.oidc_provider import AUDIENCE, CLIENT_ID, Provider, running, s256

# Longer than the WebSocket's longest wait between attempts (5 s, notifications.ts): a
# console still retrying makes at least one more attempt within it.
LONGER_THAN_A_RETRY_S = 7


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running() as started:
        yield started


@pytest.fixture(scope="module")
def oidc_console(
    layout: Layout, provider: Provider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    assert (DIST / "index.html").exists(), "build the console first: make console"
    deployed = {
        "signIn": "oidc",
        "oidc": {
            "issuer": provider.issuer,
            "clientId": CLIENT_ID,
            "scope": "openid",
            "audience": AUDIENCE,
        },
    }
    work = tmp_path_factory.mktemp("oidc-console")
    with serving(layout, DIST, work, config=deployed) as base:
        provider.console_origin = base
        yield base


@pytest.fixture
def provider_defaults(provider: Provider) -> Iterator[Provider]:
    """The provider as a test leaves it: tokens valid for an hour again."""
    yield provider
    provider.token_seconds = 3600


class Seen:
    """Every URL the page requested, opened a socket to, or showed in its address bar."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        self.sockets = 0
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("framenavigated", lambda frame: self.urls.append(frame.url))
        page.on("websocket", self._socket)

    def _socket(self, socket: object) -> None:
        self.sockets += 1
        self.urls.append(getattr(socket, "url", ""))


async def _sign_in_through_provider(page: Page, base: str) -> None:
    await page.goto(base)
    await page.get_by_role("button", name="로그인").click()
    await expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "open")


async def test_oidc_sign_in_goes_through_the_provider_with_pkce_and_keeps_the_token_out_of_urls(
    browser: Browser,
    client: httpx.AsyncClient,
    employee_url: str,
    oidc_console: str,
    provider: Provider,
) -> None:
    employee = await factories.employee(client, employee_url, name="오아이디 씨")
    provider.subject = employee["id"]
    page = await new_page(browser, DESKTOP)
    seen = Seen(page)
    await page.goto(oidc_console)
    await expect(page.get_by_role("button", name="로그인")).to_be_visible()
    # In oidc mode the development sign-in is never offered.
    await expect(page.get_by_label("직원")).to_have_count(0)
    await expect(page.get_by_label("관리자 권한")).to_have_count(0)

    await page.get_by_role("button", name="로그인").click()
    await expect(page.get_by_test_id("who")).to_contain_text("오아이디 씨")
    await expect(page.locator("[data-connection]")).to_have_attribute("data-connection", "open")

    asked = provider.authorizations[-1]
    assert asked["code_challenge_method"] == "S256"
    assert asked["redirect_uri"] == f"{oidc_console}/"
    assert asked["state"]
    assert asked["nonce"]
    exchange = provider.exchanges[-1]
    assert exchange["verifier_matched"]
    verifier = exchange["form"]["code_verifier"]
    assert 43 <= len(verifier) <= 128
    assert s256(verifier) == asked["code_challenge"]
    assert "client_secret" not in exchange["form"]

    token = provider.issued[-1]
    assert seen.urls, "no request was recorded"
    assert not [url for url in seen.urls if token in url]
    assert token not in page.url
    assert not {"code", "state"} & set(parse_qs(urlsplit(page.url).query))
    # The token is kept for the tab only.
    stored = await page.evaluate("JSON.stringify(localStorage)")
    assert token not in stored
    # The console works against the real services with it (the socket is open above).
    await page.get_by_role("link", name="근태").click()
    await page.get_by_role("button", name="출근").click()
    await expect(page.get_by_role("status").filter(has_text="출근 기록됨")).to_be_visible()
    assert not [url for url in seen.urls if token in url]


async def test_a_sign_in_answer_with_a_state_this_tab_did_not_send_is_refused(
    browser: Browser, oidc_console: str, provider: Provider
) -> None:
    exchanges = len(provider.exchanges)
    page = await new_page(browser, DESKTOP)
    await page.goto(f"{oidc_console}/?code=stolen-code&state=forged-state")
    await expect(page.get_by_role("alert")).to_contain_text("요청과 맞지 않아 거부했습니다")
    assert not {"code", "state"} & set(parse_qs(urlsplit(page.url).query))
    await expect(page.get_by_test_id("who")).to_have_count(0)
    assert len(provider.exchanges) == exchanges, "the code was exchanged all the same"


async def test_the_provider_refuses_a_code_whose_verifier_does_not_match_its_challenge(
    oidc_console: str, provider: Provider
) -> None:
    """What the console's successful sign-in rests on: the stand-in checks PKCE as a real
    provider configured for the console does (docs/oidc.md)."""
    challenge = s256("a" * 43)
    async with httpx.AsyncClient(timeout=5) as http:
        authorized = await http.get(
            f"{provider.issuer}/authorize",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": f"{oidc_console}/",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
                "state": "s",
            },
        )
        assert authorized.status_code == 302
        code = parse_qs(urlsplit(authorized.headers["location"]).query)["code"][0]
        refused = await http.post(
            f"{provider.issuer}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": f"{oidc_console}/",
                "client_id": CLIENT_ID,
                "code_verifier": "b" * 43,
            },
        )
        assert refused.status_code == 400
        assert refused.json() == {"error": "invalid_grant"}
        plain = await http.get(
            f"{provider.issuer}/authorize",
            params={
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": f"{oidc_console}/",
                "code_challenge": "a" * 43,
                "code_challenge_method": "plain",
                "state": "s",
            },
        )
        assert plain.status_code == 400


async def _no_more_sockets(page: Page, seen: Seen) -> None:
    """No new WebSocket for longer than the console waits between attempts."""
    attempts = seen.sockets
    await page.wait_for_timeout(LONGER_THAN_A_RETRY_S * 1000)
    assert seen.sockets == attempts, "the console kept retrying with a dead token"
    await expect(page.locator("[data-connection]")).to_have_count(0)


async def test_an_expired_oidc_token_says_so_and_the_socket_stops_retrying(
    browser: Browser,
    client: httpx.AsyncClient,
    employee_url: str,
    oidc_console: str,
    provider_defaults: Provider,
) -> None:
    provider = provider_defaults
    provider.subject = (await factories.employee(client, employee_url))["id"]
    provider.token_seconds = 4
    page = await new_page(browser, DESKTOP)
    seen = Seen(page)
    await _sign_in_through_provider(page, oidc_console)
    await expect(page.get_by_test_id("session-expired")).to_have_text(
        "세션이 만료되었습니다. 다시 로그인하세요.", timeout=15_000
    )
    await expect(page.get_by_role("button", name="로그인")).to_be_visible()
    await _no_more_sockets(page, seen)


async def test_a_token_the_services_refuse_ends_the_development_session_and_its_retries(
    browser: Browser, client: httpx.AsyncClient, employee_url: str, console_url: str
) -> None:
    """A token the browser thinks valid (its exp ahead) but the services refuse (401): the
    socket's handshake fails without a status a browser can read, so only the console's
    check with a service tells it from a service away."""
    employee = (await factories.employee(client, employee_url))["id"]
    page = await new_page(browser, DESKTOP)
    await sign_in(page, console_url, employee)
    forged = jwt.encode(
        {
            "sub": str(employee),
            "iss": AuthSettings().issuer,
            "aud": AUDIENCE,
            "exp": int(time.time()) + 3600,
            "roles": ["employee"],
        },
        "not-the-services-secret-not-the-services-secret",
        algorithm="HS256",
    )
    await page.evaluate(
        """forged => {
            const kept = JSON.parse(sessionStorage.getItem("erp-console-session"));
            const changed = JSON.stringify({ ...kept, token: forged });
            sessionStorage.setItem("erp-console-session", changed);
        }""",
        forged,
    )
    seen = Seen(page)
    await page.reload()
    await expect(page.get_by_test_id("session-expired")).to_be_visible(timeout=15_000)
    assert seen.sockets >= 1
    await _no_more_sockets(page, seen)
    assert (
        json.loads(await page.evaluate("JSON.stringify(sessionStorage)")).get("erp-console-session")
        is None
    )
