"""Verification modes (HS256, RS256 with a key or a JWKS URL) and production safety."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import HTTPException

from devstack.apps import get_service, start_app, stop_process
from services.common.auth import DEV_SECRET, AuthSettings, TokenVerifier
from tests.support.stack import free_port

REPO = Path(__file__).resolve().parents[2]

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


PACKAGES = ["employee", "approval_request", "approval_processing", "notification"]
# The services that call the others' internal endpoints, presenting a service token.
CALLERS = {"approval_request", "approval_processing"}
LOCAL_OVERLAY = REPO / "k8s" / "overlays" / "local" / "kustomization.yaml"


def _create_app(package: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Build the service's app in a process of its own, as its server does at start-up."""
    return subprocess.run(
        [sys.executable, "-c", f"from services.{package}.app import create_app; create_app()"],
        env={"PATH": "/usr/bin:/bin", "OTEL_SDK_DISABLED": "true", **env},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _local_overlay_secret() -> str:
    overlay = yaml.safe_load(LOCAL_OVERLAY.read_text())
    (auth,) = [g for g in overlay["secretGenerator"] if g["name"] == "erp-auth"]
    (secret,) = [v for k, _, v in (x.partition("=") for x in auth["literals"]) if k == "secret"]
    return str(secret)


@pytest.mark.parametrize("committed", ["default", "local overlay"])
@pytest.mark.parametrize("package", PACKAGES)
def test_production_refuses_to_start_with_a_committed_secret(package: str, committed: str) -> None:
    env = {f"{package.upper()}_ENVIRONMENT": "production"}
    if committed == "local overlay":
        env["ERP_AUTH_SECRET"] = _local_overlay_secret()
    refused = _create_app(package, env)
    assert refused.returncode != 0
    assert "ERP_AUTH_SECRET" in refused.stderr
    env["ERP_AUTH_SECRET"] = secrets.token_urlsafe(32)
    started = _create_app(package, env)
    assert started.returncode == 0, started.stderr


# A secret written down in text: `"ERP_AUTH_SECRET": "..."`, `env["ERP_AUTH_SECRET"] = "..."`
# (a quoted value) or `ERP_AUTH_SECRET=...` (shell, env files, docs).
_ASSIGNED = re.compile(
    r"""ERP_AUTH_SECRET(?:["']?\]?[ \t]*[:=][ \t]*["']([^"'\n]+)["']|=([^\s"'`$]+))"""
)


def _yaml_secrets(node: Any, where: Path) -> Iterator[str]:
    """Values a YAML document (in directory `where`) gives ERP_AUTH_SECRET or the erp-auth
    Secret: a container's env entry, a compose environment, a Secret, a secretGenerator."""
    if isinstance(node, list):
        for item in node:
            yield from _yaml_secrets(item, where)
    if not isinstance(node, dict):
        return
    if node.get("name") == "ERP_AUTH_SECRET" and isinstance(node.get("value"), str):
        yield node["value"]  # a container's env entry
    if isinstance(node.get("ERP_AUTH_SECRET"), str):
        yield node["ERP_AUTH_SECRET"]  # a compose environment mapping
    if node.get("name") == "erp-auth":
        for key, value in {**node.get("data", {}), **node.get("stringData", {})}.items():
            yield base64.b64decode(value).decode() if key in node.get("data", {}) else value
        for literal in node.get("literals", []):
            yield literal.partition("=")[2]
        for source in node.get("files", []):
            yield (where / source.rpartition("=")[2]).read_text().strip()
    for value in node.values():
        yield from _yaml_secrets(value, where)


def committed_auth_secrets() -> set[str]:
    """Every HS256 secret the repository holds: in Kubernetes manifests and generators,
    compose files, secret files (deploy/secrets/erp_auth_secret), scripts and docs."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    found = {DEV_SECRET}
    for name in filter(None, tracked):
        path = REPO / name
        try:
            text = path.read_text()
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        if path.name == "erp_auth_secret":
            found.add(text.strip())
        found.update("".join(match) for match in _ASSIGNED.findall(text))
        if path.suffix in (".yml", ".yaml"):
            with contextlib.suppress(yaml.YAMLError):
                for document in yaml.safe_load_all(text):
                    found.update(_yaml_secrets(document, path.parent))
    return {secret for secret in found if not secret.startswith(("$", "<"))}


def test_every_auth_secret_in_the_repository_is_refused_in_production() -> None:
    """A secret anyone with the repository can read must not guard a production service;
    one shorter than 32 characters is refused for its length already."""
    committed = committed_auth_secrets()
    assert _local_overlay_secret() in committed  # the scan finds what is there
    for secret in committed:
        with pytest.raises(ValueError, match="ERP_AUTH_SECRET"):
            AuthSettings(secret=secret).refuse_unsafe("production")
    AuthSettings(secret=secrets.token_urlsafe(32)).refuse_unsafe("production")


@pytest.mark.parametrize("package", PACKAGES)
def test_rs256_without_a_service_token_is_refused_where_the_service_calls_others(
    package: str,
) -> None:
    """With RS256 the services cannot mint their own service tokens: one that calls the
    others needs ERP_AUTH_SERVICE_TOKEN, in every environment."""
    env = {"ERP_AUTH_ALGORITHM": "RS256", "ERP_AUTH_PUBLIC_KEY": PUBLIC_PEM}
    built = _create_app(package, env)
    if package in CALLERS:
        assert built.returncode != 0
        assert "set ERP_AUTH_SERVICE_TOKEN" in built.stderr
        service_token = rs256({"sub": package, "aud": "erp-internal"})
        built = _create_app(package, {**env, "ERP_AUTH_SERVICE_TOKEN": service_token})
    assert built.returncode == 0, built.stderr


def test_a_server_started_with_rs256_and_no_service_token_exits_saying_what_to_set(
    tmp_path: Path,
) -> None:
    proc = start_app(
        get_service("approval_request"),
        port=free_port(),
        log_dir=tmp_path,
        extra_env={"ERP_AUTH_ALGORITHM": "RS256", "ERP_AUTH_PUBLIC_KEY": PUBLIC_PEM},
    )
    try:
        returncode = proc.wait(timeout=60)
    finally:
        stop_process(proc)
    assert returncode != 0
    log = (tmp_path / "approval-request-service.log").read_text()
    assert "set ERP_AUTH_SERVICE_TOKEN" in log


async def test_a_verified_token_is_remembered_until_it_expires(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = TokenVerifier(
        AuthSettings(algorithm="RS256", public_key=PUBLIC_PEM, leeway_seconds=0)
    )
    caplog.set_level(logging.INFO, "services.common.auth")
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
    assert (refused.value.status_code, refused.value.detail) == (401, "Invalid token")
    assert "Signature has expired" in caplog.text


async def test_a_refused_token_is_not_remembered() -> None:
    verifier = TokenVerifier(AuthSettings(algorithm="RS256", public_key=PUBLIC_PEM))
    forged = rs256({"sub": "7"})[:-4] + "AAAA"
    for _ in range(2):
        with pytest.raises(HTTPException):
            await verifier.verify(forged)
