"""Times every SQL statement into the shared dependency metrics (target ``mysql``), labelled
by statement kind only (SELECT, INSERT, ...) so the label set stays small."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from services.common.metrics import observe_dependency

KINDS = {"SELECT", "INSERT", "UPDATE", "DELETE", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT"}


def _kind(statement: str) -> str:
    word = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    return word if word in KINDS else "OTHER"


def instrument(engine: Engine) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _started(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault("erp_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _finished(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        started = conn.info["erp_started"].pop()
        observe_dependency("mysql", _kind(statement), time.perf_counter() - started, ok=True)

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        stack = context.connection.info.get("erp_started") if context.connection else None
        elapsed = time.perf_counter() - stack.pop() if stack else 0.0
        observe_dependency("mysql", _kind(context.statement or ""), elapsed, ok=False)
