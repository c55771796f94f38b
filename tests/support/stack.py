"""Starts the four services as real processes for a test session, on free loopback ports
against the test databases (``erp_test`` everywhere), and restarts or kills them on demand."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pymongo import MongoClient

from devstack.apps import AppService, get_service, migrate, start_app, stop_process, wait_ready

# One set of databases per test session (MySQL database, MongoDB database, RabbitMQ vhost),
# so sessions running side by side never share state.
TEST_DB = os.environ.get("ERP_TEST_DB") or f"erp_test_{os.getpid()}"
MONGO_URL = "mongodb://127.0.0.1:27017"


def mysql_url(db: str) -> str:
    return f"mysql+asyncmy://erp:erp@127.0.0.1:3306/{db}?charset=utf8mb4"


def amqp_url(db: str) -> str:
    return f"amqp://guest:guest@127.0.0.1:5672/{db}"


MYSQL_URL = mysql_url(TEST_DB)
AMQP_URL = amqp_url(TEST_DB)


def _sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=120)


def drop_databases(db: str) -> None:
    """Remove one set of databases (MySQL database, MongoDB database, RabbitMQ vhost)."""
    _sh("mariadb", "-uroot", "-e", f"DROP DATABASE IF EXISTS {db}")
    with MongoClient(MONGO_URL) as mongo:
        mongo.drop_database(db)
    subprocess.run(
        ["rabbitmqctl", "-q", "delete_vhost", db], capture_output=True, check=False, timeout=60
    )


def create_databases(db: str) -> None:
    """A fresh, empty, migrated set of databases named `db`."""
    drop_databases(db)
    _sh(
        "mariadb",
        "-uroot",
        "-e",
        f"CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci; "
        f"GRANT ALL ON {db}.* TO 'erp'@'127.0.0.1'; "
        f"GRANT ALL ON {db}.* TO 'erp'@'localhost'",
    )
    migrate(mysql_url(db))
    _sh("rabbitmqctl", "-q", "add_vhost", db)
    _sh("rabbitmqctl", "-q", "set_permissions", "-p", db, "guest", ".*", ".*", ".*")


# Every test stack exports its traces to the local Jaeger (started by the infra fixture),
# flushing quickly so a test can read a trace back a moment after causing it.
JAEGER_OTLP = "http://127.0.0.1:4318"
JAEGER_QUERY = "http://127.0.0.1:16686"
TRACING = {
    "OTEL_TRACES_EXPORTER": "otlp",
    "OTEL_EXPORTER_OTLP_ENDPOINT": JAEGER_OTLP,
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_BSP_SCHEDULE_DELAY": "200",
}


_handed_out: set[int] = set()


def _ephemeral_floor() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free now, below the kernel's ephemeral range. A port the kernel handed out
    (bind to 0) is an ephemeral one, and between this call and the server binding it an
    outgoing connection may take it as its local port: nginx then fails to bind it (seen
    in a full run). Below the range only listeners compete, and each port is handed out
    once per session."""
    floor = _ephemeral_floor()
    for _ in range(1000):
        port = random.randrange(max(1024, floor - 12000), floor)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


@dataclass
class Stack:
    log_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    db: str = TEST_DB  # the set of databases it runs on (create_databases)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)

    def url(self, package: str) -> str:
        return f"http://127.0.0.1:{self.ports[package]}"

    def env_for(self, package: str) -> dict[str, str]:
        url = self.url
        env = {
            "employee": {"EMPLOYEE_DATABASE_URL": mysql_url(self.db)},
            "approval_request": {
                "APPROVAL_REQUEST_MONGO_URL": MONGO_URL,
                "APPROVAL_REQUEST_MONGO_DB": self.db,
                "APPROVAL_REQUEST_AMQP_URL": amqp_url(self.db),
                "APPROVAL_REQUEST_EMPLOYEE_SERVICE_URL": url("employee"),
                "APPROVAL_REQUEST_NOTIFICATION_SERVICE_URL": url("notification"),
                "APPROVAL_REQUEST_OUTBOX_POLL_SECONDS": "0.5",
                "APPROVAL_REQUEST_OUTBOX_MAX_BACKOFF_SECONDS": "2",
                # A crashed relay's lease must not hold its documents for long in tests.
                "APPROVAL_REQUEST_OUTBOX_LEASE_SECONDS": "3",
            },
            "approval_processing": {
                "APPROVAL_PROCESSING_AMQP_URL": amqp_url(self.db),
                "APPROVAL_PROCESSING_APPROVAL_REQUEST_SERVICE_URL": url("approval_request"),
                "APPROVAL_PROCESSING_NOTIFICATION_SERVICE_URL": url("notification"),
            },
            "notification": {"NOTIFICATION_AMQP_URL": amqp_url(self.db)},
        }[package]
        return {
            **env,
            **TRACING,
            **self.overrides.get(package, {}),
        }

    def start(self, package: str, *, wait: bool = True) -> None:
        service: AppService = get_service(package)
        port = self.ports.setdefault(package, free_port())
        proc = start_app(service, port=port, extra_env=self.env_for(package), log_dir=self.log_dir)
        self.procs[package] = proc
        if wait:
            wait_ready(self.url(package), timeout=60, proc=proc)

    @contextlib.contextmanager
    def another_replica(self, package: str, log_dir: Path) -> Iterator[str]:
        """One more process of `package` on this stack's databases and vhost, for as long
        as the block runs; yields its URL."""
        port = free_port()
        proc = start_app(
            get_service(package), port=port, extra_env=self.env_for(package), log_dir=log_dir
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, timeout=60, proc=proc)
            yield url
        finally:
            stop_process(proc)

    def stop(self, package: str) -> None:
        proc = self.procs.pop(package, None)
        if proc is not None:
            stop_process(proc)

    def kill(self, package: str) -> None:
        """SIGKILL: no shutdown hook runs, as in a crash."""
        proc = self.procs.pop(package)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all(self) -> None:
        for package in list(self.procs):
            self.stop(package)
