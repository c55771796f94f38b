"""What an operator watches on approval-processing-service."""

from prometheus_client import Counter, Gauge

INBOX_ITEMS = Gauge("erp_inbox_items", "Work items waiting in approvers' inboxes.")
CONSUMER_CONNECTED = Gauge(
    "erp_amqp_consumer_connected", "1 while the approval.work consumer is connected, else 0."
)
MESSAGES_CONSUMED = Counter(
    "erp_amqp_messages_consumed_total",
    "approval.work messages handled, by outcome (held, duplicate, stale, retried).",
    ["outcome"],
)
DEAD_LETTERED = Counter(
    "erp_amqp_messages_dead_lettered_total", "Unparseable messages sent to the dead-letter queue."
)
INBOX_REBUILD_SECONDS = Gauge(
    "erp_inbox_rebuild_seconds", "How long the last inbox rebuild after start-up took."
)
DECISIONS_SUBMITTED = Counter(
    "erp_processing_decisions_total",
    "Approver decisions submitted, by action and result (applied, conflict, gone, failed).",
    ["action", "result"],
)
