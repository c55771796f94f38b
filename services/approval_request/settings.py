"""approval-request-service configuration, read from ``APPROVAL_REQUEST_*`` variables."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from pydantic import field_validator
from pydantic_settings import SettingsConfigDict

from services.common import ServiceSettings


class ApprovalRequestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="APPROVAL_REQUEST_")

    mongo_url: str = "mongodb://127.0.0.1:27017"
    mongo_db: str = "erp"
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    employee_service_url: str = "http://127.0.0.1:8001"
    notification_service_url: str = "http://127.0.0.1:8004"
    # The outbox relay: how often it looks for due side effects, how long one relay
    # holds a document while delivering, and the retry backoff's ceiling.
    outbox_poll_seconds: float = 1.0
    outbox_lease_seconds: float = 30.0
    outbox_max_backoff_seconds: float = 60.0
    outbox_batch: int = 100
    # "Today", for whether an approved leave has started (cancellation): the date in this
    # zone. The same zone as employee-service's EMPLOYEE_BUSINESS_TIMEZONE.
    business_timezone: str = "UTC"

    @field_validator("business_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        ZoneInfo(value)
        return value
