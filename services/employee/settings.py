"""employee-service configuration, read from ``EMPLOYEE_*`` variables."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.common import ServiceSettings


class EmployeeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMPLOYEE_")

    database_url: str = "mysql+asyncmy://erp:erp@127.0.0.1:3306/erp?charset=utf8mb4"
    pool_size: int = 10
    max_overflow: int = 20
    pool_timeout_seconds: float = 5.0
    # The working day a check-in belongs to is the date in this zone.
    business_timezone: str = "UTC"
    # A tentative leave reservation (its request not stored yet) stops counting after this.
    reservation_ttl_seconds: float = Field(default=600, gt=0)
    # How often each replica marks the ones past their expiry as expired.
    reservation_sweep_seconds: float = Field(default=30, gt=0)

    @field_validator("business_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value
