"""Settings of notification-service, read from ``NOTIFICATION_*`` environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common import ServiceSettings


class NotificationSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFICATION_")

    # Notifications kept per employee for clients that reconnect with ``?after=``.
    backlog_per_employee: int = Field(default=200, gt=0)
    # ... and in all (~1 KB each): the oldest of the least recently notified employee go first.
    backlog_total: int = Field(default=20_000, gt=0)
    # Messages waiting for one connection; a connection that falls this far behind is dropped.
    send_queue_size: int = Field(default=256, gt=0)
    max_connections_per_employee: int = Field(default=20, gt=0)
    # Limits on what a client sends us (we expect nothing but keep-alives).
    ws_max_message_bytes: int = Field(default=4096, gt=0)
    ws_client_messages_per_second: float = Field(default=5.0, gt=0)
    # With 2,000 sockets open a full collection takes 130-240 ms and came every 10-20 s under
    # 500 pushes/s: the tail of the push latency. Every 100 middle collections (~140 s there)
    # measured p99 110-130 ms instead of 140-170 ms (traced, same session); the price is
    # cyclic garbage waiting longer: peak RSS 151-187 MB instead of 150-151 MB (issue 6).
    gc_full_collection_every: int = Field(default=100, ge=1, le=10_000)

    # Every replica publishes each notification to one RabbitMQ stream and reads all of it
    # back (docs/decisions.md D20). The vhost is the URL's path, as for the other services.
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    stream: str = Field(default="notifications", min_length=1, max_length=200)
    # Retention, applied when the stream is first declared (RabbitMQ refuses to change it by
    # redeclaring: change it with a policy). Whole segments go, so the segment size is the
    # grain: at most one segment more than the limits is kept.
    stream_max_age: str = Field(default="7D", pattern=r"^\d+[YMDhms]$")
    stream_max_length_bytes: int = Field(default=2_000_000_000, gt=0)
    stream_max_segment_size_bytes: int = Field(default=50_000_000, gt=0)
    # Stream entries in flight to this replica before it acknowledges (credit).
    stream_prefetch: int = Field(default=1000, ge=2, le=65_535)
    # How long /notify waits for the broker's confirm (503 after it), then for this replica
    # to read the entry back (202 after it anyway: it is stored).
    publish_timeout_seconds: float = Field(default=5.0, gt=0)
