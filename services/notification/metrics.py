"""Prometheus metrics of notification-service; labels never carry employee or request ids."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PUSH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

WEBSOCKET_CONNECTIONS = Gauge(
    "erp_websocket_connections",
    "Open notification WebSocket connections.",
)
NOTIFICATIONS = Counter(
    "erp_notifications_total",
    "Notifications this replica read from the stream, by type and whether one of its own open"
    " connections took them (with several replicas, sum by type counts each once per replica).",
    ["type", "delivered"],
)
DROPPED_CONNECTIONS = Counter(
    "erp_websocket_dropped_connections_total",
    "WebSocket connections the server closed on a client, by reason.",
    ["reason"],
)
PUSH_DURATION = Histogram(
    "erp_notification_push_duration_seconds",
    "Time from a /notify call (on any replica) to its message being written to a live"
    " connection here.",
    buckets=PUSH_BUCKETS,
)
STREAM_OFFSET = Gauge(
    "erp_notification_stream_offset",
    "Offset of the last notification-stream entry this replica has read. A replica's lag in"
    " entries is max(erp_notification_stream_offset) minus its own.",
)
STREAM_LAG = Gauge(
    "erp_notification_stream_lag_seconds",
    "Age of the last notification this replica read from the stream, when it read it (entries"
    " read while catching up after attaching are left out).",
)
STREAM_CAUGHT_UP = Gauge(
    "erp_notification_stream_caught_up",
    "1 while this replica is attached to the notification stream and has read it up to the"
    " tail it found on attaching; 0 while catching up or detached.",
)
