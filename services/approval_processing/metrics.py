"""What an operator watches on approval-processing-service."""

from prometheus_client import Counter, Gauge

INBOX_ITEMS = Gauge("erp_inbox_items", "Work items waiting in approvers' inboxes.")
CONSUMER_CONNECTED = Gauge(
    "erp_amqp_consumer_connected",
    "1 while the approval.work partitions' consumer is connected, else 0.",
)
MESSAGES_CONSUMED = Counter(
    "erp_amqp_messages_consumed_total",
    "approval.work messages handled, by outcome (held, duplicate, stale, retried, moved: "
    "taken from the unpartitioned queue to its partition; withdrawn: a withdrawal that "
    "took its item out, withdrawn_unheld: one for an item not held here; reassigned, "
    "reassigned_unheld: the same for a reassignment).",
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
FORWARDED = Counter(
    "erp_processing_forwarded_total",
    "Calls passed to the replica owning the approver, by method and outcome "
    "(answered, owner_unavailable, misrouted: a forwarded call that reached a non-owner).",
    ["method", "outcome"],
)
# At zero from the start, so rate() sees a replica's first forwarded call, and a replica
# that never forwards (one replica owns everything) still shows a flat line, not "no data".
for _method in ("GET", "POST"):
    for _outcome in ("answered", "owner_unavailable", "misrouted"):
        FORWARDED.labels(_method, _outcome)
PARTITION_OWNED = Gauge(
    "erp_processing_partition_owned",
    "1 for each approval.work partition this replica holds the inboxes of, 0 for the others.",
    ["partition"],
)
PARTITION_READY = Gauge(
    "erp_processing_partition_messages_ready",
    "Hand-offs waiting in approval.work.pNN, not yet delivered to a consumer, as the replica"
    " owning the partition last counted them (a passive queue declare every few seconds);"
    " only the owner exports a partition.",
    ["partition"],
)
