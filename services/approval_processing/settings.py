"""approval-processing-service configuration, read from ``APPROVAL_PROCESSING_*`` variables."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from services.common import ServiceSettings
from services.common.messaging import PARTITIONS


class ApprovalProcessingSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="APPROVAL_PROCESSING_")

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    approval_request_service_url: str = "http://127.0.0.1:8002"
    notification_service_url: str = "http://127.0.0.1:8004"
    # Unacked messages in flight to this consumer; each is acked once its item is held.
    prefetch: int = 64
    # On a stop (SIGTERM), how long the deliveries being handled may take to be settled
    # before the connection closes and the broker redelivers what is left.
    shutdown_drain_seconds: float = Field(default=10.0, gt=0)
    # Waiting steps per rebuild page (the request service allows up to 5000). Each page
    # reads whole id buckets of 1000, one more than it returns at most, so larger pages
    # decode fewer documents twice: 100,000 open requests in 20 pages read ~120,000.
    rebuild_page_size: int = 5000
    # How many decided (request, step) pairs are remembered so a late duplicate message
    # cannot put a decided item back into an inbox.
    remembered_decisions: int = 100_000
    # This process is replica `replica_index` of `replicas`: it holds the inboxes of the
    # partitions p with p % replicas == replica_index and forwards the others (D22).
    replicas: int = Field(default=1, ge=1, le=PARTITIONS)
    replica_index: int = Field(default=0, ge=0)
    # Where the replicas answer, for forwarding: either one URL with `{index}` in it
    # (http://approval-processing-{index}.approval-processing-peers:8000) or a comma-separated
    # list of `replicas` URLs, replica 0 first. Unused with one replica.
    peer_urls: str = ""

    @model_validator(mode="after")
    def _a_replica_of_the_set(self) -> ApprovalProcessingSettings:
        if self.replica_index >= self.replicas:
            raise ValueError(
                f"replica_index {self.replica_index} is not one of {self.replicas} replicas "
                "(0 to replicas - 1): refusing to start"
            )
        if self.replicas > 1:
            self.peers()
        return self

    def peers(self) -> list[str]:
        """The base URL of every replica, replica 0 first."""
        if self.replicas == 1:
            return [self.peer_urls.rstrip("/")] if self.peer_urls else [""]
        if "{index}" in self.peer_urls:
            return [self.peer_urls.format(index=i).rstrip("/") for i in range(self.replicas)]
        urls = [url.strip().rstrip("/") for url in self.peer_urls.split(",") if url.strip()]
        if len(urls) != self.replicas:
            raise ValueError(
                f"peer_urls must name the {self.replicas} replicas (a URL with {{index}}, or "
                f"{self.replicas} comma-separated URLs), not {len(urls)}"
            )
        return urls
