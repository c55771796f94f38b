"""Leave management: leave types (seeded), entitlements, holidays; leave records become
reservations too (status, expiry, half days, day counts in halves split per year).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-10
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}
MOMENT = mysql.DATETIME(fsp=6)
DAYS = sa.Numeric(4, 1)
SEEDED_TYPES: list[dict[str, Any]] = [
    {"code": "ANNUAL", "name": "연차", "annual_days": 15},
    {"code": "SICK", "name": "병가", "annual_days": 10},
    {"code": "UNPAID", "name": "무급 휴가", "annual_days": None},
]


def upgrade() -> None:
    leave_types = op.create_table(
        "leave_types",
        sa.Column("code", sa.String(30), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("annual_days", DAYS, nullable=True),
        **TABLE_OPTIONS,
    )
    op.bulk_insert(leave_types, SEEDED_TYPES)
    op.create_table(
        "leave_entitlements",
        sa.Column("employee_id", sa.BigInteger, sa.ForeignKey("employees.id"), primary_key=True),
        sa.Column("leave_type", sa.String(30), sa.ForeignKey("leave_types.code"), primary_key=True),
        sa.Column("year", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("days", DAYS, nullable=False),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "holidays",
        sa.Column("holiday_date", sa.Date, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        **TABLE_OPTIONS,
    )
    op.alter_column(
        "leave_records", "days", existing_type=sa.Integer, type_=DAYS, existing_nullable=False
    )
    op.add_column("leave_records", sa.Column("start_year_days", DAYS, nullable=True))
    # Leave recorded so far came with the client's count, all of it in its first year.
    op.execute("UPDATE leave_records SET start_year_days = days")
    op.alter_column("leave_records", "start_year_days", existing_type=DAYS, nullable=False)
    op.add_column("leave_records", sa.Column("half_day", sa.String(2), nullable=True))
    op.add_column("leave_records", sa.Column("expires_at", MOMENT, nullable=True))
    op.create_index("ix_leave_records_status_expires_at", "leave_records", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_leave_records_status_expires_at", table_name="leave_records")
    op.drop_column("leave_records", "expires_at")
    op.drop_column("leave_records", "half_day")
    op.drop_column("leave_records", "start_year_days")
    op.alter_column(
        "leave_records", "days", existing_type=DAYS, type_=sa.Integer, existing_nullable=False
    )
    op.drop_table("holidays")
    op.drop_table("leave_entitlements")
    op.drop_table("leave_types")
