"""A stand-in OpenID Connect provider for the console's sign-in tests, on a free loopback port:
discovery, an authorization endpoint that signs in whoever the test says without asking, a
token endpoint that insists on PKCE S256 as a real provider configured for the console must
(docs/oidc.md), and RP-initiated logout. Its access tokens are the ones the session's real
services accept (HS256 with the local secret, audience erp-api, issuer erp), so a console
signed in here works against them. It records what it saw for the tests to assert on."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt

from services.common.auth import EMPLOYEE, AuthSettings
from tests.support.stack import free_port

CLIENT_ID = "erp-console"
AUDIENCE = "erp-api"


def s256(verifier: str) -> str:
    """RFC 7636's code_challenge for a verifier: base64url(SHA-256), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    method: str
    nonce: str | None
    subject: int


@dataclass
class Provider:
    """What the test sets (who signs in, for how long) and what the provider saw."""

    issuer: str
    # Set once the console is served (its port is chosen then).
    console_origin: str = ""
    subject: int = 0
    roles: list[str] = field(default_factory=lambda: [EMPLOYEE])
    token_seconds: int = 3600
    authorizations: list[dict[str, str]] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)
    exchanges: list[dict[str, Any]] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def discovery(self) -> dict[str, object]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "end_session_endpoint": f"{self.issuer}/logout",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        }

    def access_token(self, subject: int) -> str:
        settings = AuthSettings()
        now = int(time.time())
        claims = {
            "sub": str(subject),
            "iss": settings.issuer,
            "aud": settings.client_audience,
            "iat": now,
            "exp": now + self.token_seconds,
            "roles": self.roles,
        }
        return jwt.encode(claims, settings.secret.get_secret_value(), algorithm="HS256")

    def id_token(self, grant: Grant) -> str:
        now = int(time.time())
        claims = {
            "sub": str(grant.subject),
            "iss": self.issuer,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
        }
        return jwt.encode(claims, "stub-provider-id-token-key-32-bytes!", algorithm="HS256")

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], str]:
        """The redirect back to the console, or a refusal naming what is wrong."""
        with self.lock:
            self.authorizations.append(query)
        problems = [
            f"{name} must be {wanted}"
            for name, wanted in (
                ("response_type", "code"),
                ("client_id", CLIENT_ID),
                ("code_challenge_method", "S256"),
            )
            if query.get(name) != wanted
        ]
        redirect = query.get("redirect_uri", "")
        if (
            urlsplit(redirect)._replace(path="", query="", fragment="").geturl()
            != (self.console_origin)
            or urlsplit(redirect).path != "/"
        ):
            problems.append(f"redirect_uri must be {self.console_origin}/")
        if query.get("audience", AUDIENCE) != AUDIENCE:
            problems.append(f"audience must be {AUDIENCE}")
        if not query.get("code_challenge") or not query.get("state"):
            problems.append("code_challenge and state are required")
        if problems:
            return 400, {}, "; ".join(problems)
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.grants[code] = Grant(
                client_id=query["client_id"],
                redirect_uri=redirect,
                challenge=query["code_challenge"],
                method=query["code_challenge_method"],
                nonce=query.get("nonce"),
                subject=self.subject,
            )
        back = f"{redirect}?{urlencode({'code': code, 'state': query['state']})}"
        return 302, {"Location": back}, ""

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            grant = self.grants.pop(form.get("code", ""), None)
        verifier = form.get("code_verifier", "")
        matched = grant is not None and s256(verifier) == grant.challenge
        with self.lock:
            self.exchanges.append({"form": form, "verifier_matched": matched})
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or form.get("client_id") != grant.client_id
            or form.get("redirect_uri") != grant.redirect_uri
            or not 43 <= len(verifier) <= 128
            or not matched
        ):
            return 400, {"error": "invalid_grant"}
        token = self.access_token(grant.subject)
        with self.lock:
            self.issued.append(token)
        return 200, {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.token_seconds,
            "id_token": self.id_token(grant),
        }


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests assert on what the provider recorded instead."""

        def _send(self, status: int, headers: dict[str, str], body: bytes = b"") -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _cors(self) -> dict[str, str]:
            # The console's origin only, as docs/oidc.md asks of a real provider.
            if self.headers.get("Origin") == provider.console_origin:
                return {"Access-Control-Allow-Origin": provider.console_origin, "Vary": "Origin"}
            return {}

        def _json(self, status: int, body: object) -> None:
            headers = {"Content-Type": "application/json", "Cache-Control": "no-store"}
            self._send(status, {**headers, **self._cors()}, json.dumps(body).encode())

        def do_OPTIONS(self) -> None:
            allowed = {
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Content-Type, Accept",
            }
            self._send(204, {**allowed, **self._cors()})

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif url.path == "/authorize":
                status, headers, text = provider.authorize(query)
                self._send(status, {"Content-Type": "text/plain", **headers}, text.encode())
            elif url.path == "/logout":
                target = query.get("post_logout_redirect_uri", provider.console_origin + "/")
                self._send(302, {"Location": target})
            else:
                self._send(404, {})

        def do_POST(self) -> None:
            if urlsplit(self.path).path != "/token":
                self._send(404, {})
                return
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode()
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            status, body = provider.exchange(form)
            self._json(status, body)

    return Handler


@contextlib.contextmanager
def running() -> Iterator[Provider]:
    """The provider, answering on 127.0.0.1 until the block ends."""
    port = free_port()
    provider = Provider(issuer=f"http://127.0.0.1:{port}")
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(provider))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
