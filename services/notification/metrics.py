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
    "Notifications received on /notify, by type and whether an open connection took them.",
    ["type", "delivered"],
)
DROPPED_CONNECTIONS = Counter(
    "erp_websocket_dropped_connections_total",
    "WebSocket connections the server closed on a client, by reason.",
    ["reason"],
)
PUSH_DURATION = Histogram(
    "erp_notification_push_duration_seconds",
    "Time from a /notify call to its message being written to a live connection.",
    buckets=PUSH_BUCKETS,
)
