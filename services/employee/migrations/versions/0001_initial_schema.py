"""Initial schema: employees, attendance_records, leave_records.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE_OPTIONS: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_unicode_ci",
}
MOMENT = mysql.DATETIME(fsp=6)


def upgrade() -> None:
    op.create_table(
        "employees",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("position", sa.String(100), nullable=False),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.Column("deactivated_at", MOMENT, nullable=True),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "attendance_records",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("employee_id", sa.BigInteger, sa.ForeignKey("employees.id"), nullable=False),
        sa.Column("attendance_date", sa.Date, nullable=False),
        sa.Column("check_in", MOMENT, nullable=False),
        sa.Column("check_out", MOMENT, nullable=True),
        sa.Column("work_minutes", sa.Integer, nullable=True),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.UniqueConstraint("employee_id", "attendance_date", name="uq_attendance_employee_day"),
        **TABLE_OPTIONS,
    )
    op.create_table(
        "leave_records",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("employee_id", sa.BigInteger, sa.ForeignKey("employees.id"), nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date, nullable=False),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("leave_type", sa.String(30), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("approval_request_id", sa.BigInteger, nullable=True),
        sa.Column("created_at", MOMENT, nullable=False),
        sa.UniqueConstraint("approval_request_id", name="uq_leave_approval_request"),
        **TABLE_OPTIONS,
    )
    op.create_index("ix_leave_records_employee_id", "leave_records", ["employee_id"])


def downgrade() -> None:
    op.drop_table("leave_records")
    op.drop_table("attendance_records")
    op.drop_table("employees")
