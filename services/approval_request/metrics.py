"""What an operator watches on approval-request-service (ids are never labels)."""

from prometheus_client import Counter, Gauge, Histogram

APPROVALS_CREATED = Counter(
    "erp_approvals_created_total", "Approval requests created, by request type.", ["type"]
)
DECISIONS = Counter(
    "erp_approval_decisions_total",
    "Decisions applied, by step outcome and the final status they led to.",
    ["outcome", "final_status"],
)
WITHDRAWALS = Counter(
    "erp_approval_withdrawals_total",
    "Requests withdrawn by their requester or an admin, by request type and by whom.",
    ["type", "by"],
)
CANCELLATIONS = Counter(
    "erp_leave_cancellations_total",
    "Approved LEAVE requests cancelled before they started, by whom.",
    ["by"],
)
REASSIGNMENTS = Counter(
    "erp_approval_reassignments_total",
    "Waiting steps given to another approver, by request type and by whom (the step's "
    "approver or an admin).",
    ["type", "by"],
)
COMPLETION = Histogram(
    "erp_approval_completion_seconds",
    "Time from an approval's creation to its final status.",
    ["final_status"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400),
)
OUTBOX_DELIVERIES = Counter(
    "erp_outbox_deliveries_total",
    "Outbox side effects attempted, by kind and outcome (delivered, retry, failed).",
    ["kind", "outcome"],
)
OUTBOX_PENDING = Gauge(
    "erp_outbox_pending_documents", "Approval documents with side effects not yet delivered."
)
AMQP_PUBLISHED = Counter(
    "erp_amqp_messages_published_total",
    "Messages published and confirmed by the broker.",
    ["routing_key"],
)
