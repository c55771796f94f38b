"""Bearer-token authentication shared by every service (resource servers only).

Clients send ``Authorization: Bearer <JWT>``; ``sub`` is the employee id, ``roles`` holds
``employee`` and/or ``admin``. Services calling each other's internal endpoints present a
token for a separate audience (``ERP_AUTH_SERVICE_AUDIENCE``), so a client token is never
accepted there. Tokens are HS256 with a shared secret (local stack) or RS256 verified with
a public key or a JWKS URL (a real identity provider). Tokens are minted here only for
development, tests and service-to-service calls in HS256 mode; never in production."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from cachetools import TTLCache
from fastapi import Depends, HTTPException, Request
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger(__name__)

DEV_SECRET = "dev-only-secret-change-me-please-32b"  # noqa: S105 - refused in production
ADMIN = "admin"
EMPLOYEE = "employee"
SERVICE = "service"


# SHA-256 of every HS256 secret committed to this repository: the development default and
# the local Kubernetes overlay's. Anyone with the repository can sign admin tokens with
# them, so a production service refuses them. The image does not carry the repository, so
# the fingerprints travel instead (the values are public, the list need not be secret);
# tests/auth/test_auth_configuration.py scans the repository (manifests, generators,
# compose files, secret files, scripts, docs) and fails on any committed secret that
# production would accept, until its fingerprint is added here.
COMMITTED_SECRET_FINGERPRINTS = frozenset(
    {
        "98362a7ab0b38d5c2d34122b1740cf9ec5fa298e96023974bb5e1d392ba0d27b",  # DEV_SECRET
        "6d66f5ee131c917755c20c65ef0ce21d304cac71c916562c7ed2d919c2d61e3b",  # k8s/overlays/local
    }
)


def is_committed_secret(secret: SecretStr) -> bool:
    """True for a secret that appears in the repository (a development value)."""
    fingerprint = hashlib.sha256(secret.get_secret_value().encode()).hexdigest()
    return fingerprint in COMMITTED_SECRET_FINGERPRINTS


class AuthSettings(BaseSettings):
    """One configuration for all four services (``ERP_AUTH_*``)."""

    model_config = SettingsConfigDict(env_prefix="ERP_AUTH_", extra="ignore")

    algorithm: Literal["HS256", "RS256"] = "HS256"
    secret: SecretStr = SecretStr(DEV_SECRET)
    public_key: str | None = None
    jwks_url: str | None = None
    issuer: str = "erp"
    client_audience: str = "erp-api"
    service_audience: str = "erp-internal"
    # A service credential issued by the identity provider (RS256 deployments); in HS256
    # mode the services mint short-lived ones with the shared secret instead.
    service_token: SecretStr | None = None
    leeway_seconds: int = 30

    def refuse_unsafe(self, environment: str) -> None:
        if environment != "production":
            return
        if self.algorithm == "HS256" and is_committed_secret(self.secret):
            raise ValueError(
                "ERP_AUTH_SECRET is a development value committed to the repository: set a "
                "secret of your own in production (deploy/k8s/make-secrets.sh makes one)"
            )
        if self.algorithm == "HS256" and len(self.secret.get_secret_value()) < 32:
            raise ValueError("ERP_AUTH_SECRET must be at least 32 characters")
        if self.algorithm == "RS256" and not (self.public_key or self.jwks_url):
            raise ValueError("RS256 needs ERP_AUTH_PUBLIC_KEY or ERP_AUTH_JWKS_URL")


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    service: bool

    @property
    def employee_id(self) -> int | None:
        return int(self.subject) if self.subject.isdigit() and not self.service else None

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.roles and not self.service


# Verified tokens are remembered briefly: services present the same token on every call, and
# checking its signature each time was 4-8 % of a service's CPU under load. An entry lives
# at most VERIFIED_TTL_SECONDS and never past the token's own expiry.
VERIFIED_CACHE_SIZE = 10_000
VERIFIED_TTL_SECONDS = 60


class TokenVerifier:
    def __init__(self, settings: AuthSettings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url) if settings.jwks_url else None
        self._verified: TTLCache[str, tuple[Principal, float]] = TTLCache(
            maxsize=VERIFIED_CACHE_SIZE, ttl=VERIFIED_TTL_SECONDS
        )

    async def _key(self, token: str) -> Any:
        if self.settings.algorithm == "HS256":
            return self.settings.secret.get_secret_value()
        if self._jwks is not None:
            # PyJWKClient caches keys but fetches synchronously: keep it off the event loop.
            signing_key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            return signing_key.key
        return self.settings.public_key

    async def verify(self, token: str) -> Principal:
        remembered = self._verified.get(token)
        if remembered is not None:
            principal, expires = remembered
            if time.time() < expires + self.settings.leeway_seconds:
                return principal
            self._verified.pop(token, None)
        principal, expires = await self._verify(token)
        self._verified[token] = (principal, expires)
        return principal

    async def _verify(self, token: str) -> tuple[Principal, float]:
        s = self.settings
        try:
            claims = jwt.decode(
                token,
                await self._key(token),
                algorithms=[s.algorithm],
                audience=[s.client_audience, s.service_audience],
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": ["sub", "exp", "aud"]},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            # The reason stays here, with the request's trace id: the caller learns nothing
            # about how tokens are checked.
            logger.info("token refused: %s: %s", type(exc).__name__, exc)
            raise HTTPException(
                401, "Invalid token", headers={"WWW-Authenticate": "Bearer"}
            ) from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        roles = claims.get("roles", [])
        principal = Principal(
            subject=str(claims["sub"]),
            roles=frozenset(roles if isinstance(roles, list) else [roles]),
            service=s.service_audience in audiences,
        )
        return principal, float(claims["exp"])


def issue_token(
    settings: AuthSettings,
    subject: str | int,
    *,
    roles: list[str] | None = None,
    service: bool = False,
    ttl_seconds: int = 3600,
) -> str:
    """A signed token for development, tests and HS256 service calls (never production)."""
    if settings.algorithm != "HS256":
        raise ValueError("tokens are minted here only in HS256 mode")
    now = int(time.time())
    claims = {
        "sub": str(subject),
        "iss": settings.issuer,
        "iat": now,
        "exp": now + ttl_seconds,
        "aud": settings.service_audience if service else settings.client_audience,
        "roles": roles or ([SERVICE] if service else [EMPLOYEE]),
    }
    return jwt.encode(claims, settings.secret.get_secret_value(), algorithm="HS256")


class ServiceCredentials:
    """The Authorization header this service presents to the others, renewed before expiry.
    Built at start-up by the services that call others: they mint their own tokens in HS256
    mode only, so with RS256 and no ``ERP_AUTH_SERVICE_TOKEN`` the service refuses to start
    rather than fail every internal call."""

    def __init__(self, settings: AuthSettings, service_name: str) -> None:
        if settings.algorithm != "HS256" and settings.service_token is None:
            raise ValueError(
                f"{service_name} calls other services and cannot mint service tokens with "
                f"ERP_AUTH_ALGORITHM={settings.algorithm}: set ERP_AUTH_SERVICE_TOKEN to a "
                f"token your identity provider issues for the audience "
                f"{settings.service_audience}"
            )
        self.settings = settings
        self.service_name = service_name
        self._token = ""
        self._renew_at = 0.0

    def header(self) -> str:
        if self.settings.service_token is not None:
            return f"Bearer {self.settings.service_token.get_secret_value()}"
        if time.monotonic() >= self._renew_at:
            self._token = issue_token(self.settings, self.service_name, service=True)
            self._renew_at = time.monotonic() + 1800
        return f"Bearer {self._token}"


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _principal(request: Request) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise HTTPException(401, "Missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    verifier: TokenVerifier = request.app.state.token_verifier
    return await verifier.verify(token)


async def _service(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    if not principal.service:
        raise HTTPException(403, "This endpoint accepts only service credentials")
    return principal


async def _client(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    return principal


# Any valid token (a client's, or a service's where a service reads public data).
CurrentPrincipal = Annotated[Principal, Depends(_client)]
# Internal endpoints: 401 without credentials, 403 with a client token.
ServiceCaller = Annotated[Principal, Depends(_service)]


def require_self_or_admin(principal: Principal, employee_id: int) -> None:
    if not (principal.is_admin or principal.employee_id == employee_id):
        raise HTTPException(403, "You may only act for yourself")


def require_admin(principal: Principal, *, or_service: bool = False) -> None:
    if not (principal.is_admin or (or_service and principal.service)):
        raise HTTPException(403, "Administrator role required")
