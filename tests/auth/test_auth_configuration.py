"""Verification modes (HS256, RS256 with a key or a JWKS URL) and production safety."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import HTTPException

from services.common.auth import AuthSettings, TokenVerifier

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PUBLIC_PEM = (
    KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def rs256(claims: dict[str, object], kid: str = "k1") -> str:
    base = {"iss": "erp", "aud": "erp-api", "exp": int(time.time()) + 60}
    return jwt.encode({**base, **claims}, KEY, algorithm="RS256", headers={"kid": kid})


async def test_rs256_tokens_verify_with_a_public_key() -> None:
    verifier = TokenVerifier(AuthSettings(algorithm="RS256", public_key=PUBLIC_PEM))
    principal = await verifier.verify(rs256({"sub": "42", "roles": ["admin"]}))
    assert (principal.employee_id, principal.is_admin) == (42, True)


async def test_hs256_tokens_are_refused_in_rs256_mode() -> None:
    verifier = TokenVerifier(AuthSettings(algorithm="RS256", public_key=PUBLIC_PEM))

    # The classic key-confusion forgery: HMAC-signed with the public key as the secret.
    def part(value: dict[str, object]) -> bytes:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")

    claims = {"sub": "1", "aud": "erp-api", "iss": "erp", "exp": int(time.time()) + 60}
    signing_input = part({"alg": "HS256", "typ": "JWT"}) + b"." + part(claims)
    mac = hmac.new(PUBLIC_PEM.encode(), signing_input, hashlib.sha256).digest()
    forged = (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()
    with pytest.raises(HTTPException) as refused:
        await verifier.verify(forged)
    assert refused.value.status_code == 401


@pytest.fixture
def jwks_url() -> Iterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()


async def test_rs256_tokens_verify_through_a_jwks_url(jwks_url: str) -> None:
    verifier = TokenVerifier(AuthSettings(algorithm="RS256", jwks_url=jwks_url))
    principal = await verifier.verify(rs256({"sub": "9"}))
    assert principal.employee_id == 9
    with pytest.raises(HTTPException):
        await verifier.verify(rs256({"sub": "9"}, kid="unknown"))


@pytest.mark.parametrize(
    "package", ["employee", "approval_request", "approval_processing", "notification"]
)
def test_production_refuses_to_start_with_the_default_secret(package: str) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        f"{package.upper()}_ENVIRONMENT": "production",
        "OTEL_SDK_DISABLED": "true",
    }
    result = subprocess.run(
        [sys.executable, "-c", f"from services.{package}.app import create_app; create_app()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "ERP_AUTH_SECRET" in result.stderr
    env["ERP_AUTH_SECRET"] = "a-real-secret-that-is-long-enough-123456"
    started = subprocess.run(
        [sys.executable, "-c", f"from services.{package}.app import create_app; create_app()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 0, started.stderr


async def test_a_verified_token_is_remembered_until_it_expires(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = TokenVerifier(
        AuthSettings(algorithm="RS256", public_key=PUBLIC_PEM, leeway_seconds=0)
    )
    token = rs256({"sub": "7", "exp": int(time.time()) + 2})
    checks = 0
    verify_signature = verifier._verify

    async def counting(token: str) -> object:
        nonlocal checks
        checks += 1
        return await verify_signature(token)

    monkeypatch.setattr(verifier, "_verify", counting)

    for _ in range(3):
        assert (await verifier.verify(token)).employee_id == 7
    assert checks == 1

    time.sleep(2.1)
    with pytest.raises(HTTPException) as refused:
        await verifier.verify(token)
    assert refused.value.status_code == 401
    assert "expired" in str(refused.value.detail)


async def test_a_refused_token_is_not_remembered() -> None:
    verifier = TokenVerifier(AuthSettings(algorithm="RS256", public_key=PUBLIC_PEM))
    forged = rs256({"sub": "7"})[:-4] + "AAAA"
    for _ in range(2):
        with pytest.raises(HTTPException):
            await verifier.verify(forged)
