"""What an operator watches of leave reservations on employee-service."""

from prometheus_client import Counter

RESERVATIONS = Counter(
    "erp_leave_reservations_total",
    "Leave reservations by what happened to them (reserved, held, confirmed, released, "
    "expired: a tentative one whose request was never stored; cancelled: an approved leave "
    "called off before it started).",
    ["outcome"],
)
REFUSED = Counter(
    "erp_leave_reservations_refused_total",
    "Reservations refused, by reason (unknown_type, invalid_dates, no_working_days, "
    "days_mismatch, overlap, insufficient_balance, unknown_employee, conflict).",
    ["reason"],
)
OUTCOMES = ("reserved", "held", "confirmed", "released", "expired")
REASONS = (
    "unknown_type",
    "invalid_dates",
    "no_working_days",
    "days_mismatch",
    "overlap",
    "insufficient_balance",
    "unknown_employee",
    "conflict",
)
# At zero from the start, so rate() sees the first one.
for _outcome in OUTCOMES:
    RESERVATIONS.labels(_outcome)
for _reason in REASONS:
    REFUSED.labels(_reason)
