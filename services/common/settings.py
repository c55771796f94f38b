"""Typed settings shared by every service; each service subclasses with its own env prefix."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings every service has. Subclasses set ``env_prefix`` (``EMPLOYEE_`` ...)."""

    model_config = SettingsConfigDict(extra="ignore", env_file=None)

    environment: Literal["development", "test", "production"] = "development"
    log_level: str = "INFO"
    # Enables provider-state hooks used by contract verification. Never in production.
    test_mode: bool = False
    # Seconds an outgoing HTTP call to another service may take in total.
    http_timeout_seconds: float = 5.0
    # Largest request body accepted, in bytes (413 above it).
    max_body_bytes: int = 64 * 1024
    # Collections of the middle generation between two full ones (CPython's own 10). A full
    # collection stops the process for as long as it walks every long-lived object;
    # notification-service, holding thousands of sockets, waits longer between them.
    gc_full_collection_every: int = Field(default=10, ge=1, le=10_000)
    # Net new container objects between two young collections (CPython's own 2,000). The
    # default lets a traced service's span batches (~8,000 objects waiting for export)
    # come and go without young collections walking and promoting them (docs D17).
    gc_young_collection_threshold: int = Field(default=20_000, ge=100, le=1_000_000)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> ServiceSettings:
        if self.environment == "production" and self.test_mode:
            raise ValueError("test_mode must not be enabled in production")
        return self
