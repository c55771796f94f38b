"""The schema is built by Alembic migrations from empty, and only by them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

import services.employee.attendance.models
import services.employee.employees.models
import services.employee.holidays.models
import services.employee.leaves.models  # noqa: F401 - registers the tables on Base.metadata
from services.employee.db import Base

REPO = Path(__file__).resolve().parents[2]
SCRATCH = "erp_scratch"
URL = f"mysql+asyncmy://erp:erp@127.0.0.1:3306/{SCRATCH}?charset=utf8mb4"


def _alembic(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", "-c", "services/employee/alembic.ini", *args],
        cwd=REPO,
        check=True,
        capture_output=True,
        env={"EMPLOYEE_DATABASE_URL": URL, "PATH": "/usr/bin:/bin"},
    )


def _fresh_database() -> None:
    subprocess.run(
        [
            "mariadb",
            "-uroot",
            "-e",
            f"DROP DATABASE IF EXISTS {SCRATCH}; CREATE DATABASE {SCRATCH} "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; "
            f"GRANT ALL ON {SCRATCH}.* TO 'erp'@'127.0.0.1'",
        ],
        check=True,
        capture_output=True,
    )


async def _schema_state() -> tuple[set[str], list[object]]:
    engine = create_async_engine(URL)
    async with engine.connect() as connection:
        tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
        diff = await connection.run_sync(
            lambda c: compare_metadata(MigrationContext.configure(c), Base.metadata)
        )
    await engine.dispose()
    return tables, diff


async def test_migrations_build_the_models_schema_from_empty() -> None:
    _fresh_database()
    _alembic("upgrade", "head")
    tables, diff = await _schema_state()
    assert {
        "employees",
        "attendance_records",
        "leave_records",
        "leave_types",
        "leave_entitlements",
        "holidays",
    } <= tables
    assert diff == []


async def test_migrations_downgrade_to_empty_and_up_again() -> None:
    _fresh_database()
    _alembic("upgrade", "head")
    _alembic("downgrade", "base")
    tables, _ = await _schema_state()
    assert tables == {"alembic_version"}
    _alembic("upgrade", "head")
    assert {"employees", "leave_records"} <= (await _schema_state())[0]


def test_no_service_creates_tables_itself() -> None:
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "services").rglob("*.py")
        if "create_all(" in path.read_text()
    ]
    assert offenders == []


async def test_upgrading_keeps_recorded_leave_and_seeds_the_leave_types() -> None:
    _fresh_database()
    _alembic("upgrade", "0001")
    engine = create_async_engine(URL)
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO employees (id, name, department, position, created_at) "
                "VALUES (1, '직원', '개발팀', '사원', NOW(6))"
            )
        )
        await connection.execute(
            text(
                "INSERT INTO leave_records (employee_id, start_date, end_date, days, leave_type,"
                " status, reason, approval_request_id, created_at) VALUES (1, '2026-12-01',"
                " '2026-12-03', 3, 'ANNUAL', 'approved', '', 7, NOW(6))"
            )
        )
    _alembic("upgrade", "head")
    async with engine.connect() as connection:
        leave = (
            await connection.execute(
                text("SELECT days, start_year_days, status, expires_at FROM leave_records")
            )
        ).one()
        types = dict(
            (await connection.execute(text("SELECT code, annual_days FROM leave_types"))).all()
        )
    await engine.dispose()
    assert tuple(leave) == (3, 3, "approved", None)
    assert types == {"ANNUAL": 15, "SICK": 10, "UNPAID": None}
