"""approval-processing-service configuration, read from ``APPROVAL_PROCESSING_*`` variables."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from services.common import ServiceSettings


class ApprovalProcessingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="APPROVAL_PROCESSING_")

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    approval_request_service_url: str = "http://127.0.0.1:8002"
    notification_service_url: str = "http://127.0.0.1:8004"
    # Unacked messages in flight to this consumer; each is acked once its item is held.
    prefetch: int = 64
    # Waiting steps per rebuild page (the request service allows up to 5000). Each page
    # reads whole id buckets of 1000, one more than it returns at most, so larger pages
    # decode fewer documents twice: 100,000 open requests in 20 pages read ~120,000.
    rebuild_page_size: int = 5000
    # How many decided (request, step) pairs are remembered so a late duplicate message
    # cannot put a decided item back into an inbox.
    remembered_decisions: int = 100_000
