"""The app services of the local stack: the one place naming each service's
port, command and environment, and helpers to start, probe and stop them."""

from __future__ import annotations

import http.client
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from devstack import process
from devstack.process import HOST, REPO_ROOT

log = logging.getLogger(__name__)

_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
EMPLOYEE_DATABASE_URL = "mysql+asyncmy://erp:erp@127.0.0.1:3306/erp?charset=utf8mb4"
ALEMBIC_INI = REPO_ROOT / "services" / "employee" / "alembic.ini"


@dataclass(frozen=True)
class AppService:
    name: str  # "employee-service"
    package: str  # "employee" (python package services.employee)
    port: int  # local port
    env: dict[str, str]  # extra environment
    server_args: tuple[str, ...] = ()  # extra uvicorn options (also in the Dockerfile)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def available(self) -> bool:
        """Started only once its package exists, so the stack grows with the code."""
        return (REPO_ROOT / "services" / self.package / "app.py").exists()


APP_SERVICES = (
    AppService(
        "employee-service",
        "employee",
        8001,
        {
            "EMPLOYEE_DATABASE_URL": EMPLOYEE_DATABASE_URL,
        },
    ),
    AppService(
        "approval-request-service",
        "approval_request",
        8002,
        {
            "APPROVAL_REQUEST_MONGO_URL": "mongodb://127.0.0.1:27017",
            "APPROVAL_REQUEST_MONGO_DB": "erp",
            "APPROVAL_REQUEST_AMQP_URL": _AMQP_URL,
            "APPROVAL_REQUEST_EMPLOYEE_SERVICE_URL": "http://127.0.0.1:8001",
            "APPROVAL_REQUEST_NOTIFICATION_SERVICE_URL": "http://127.0.0.1:8004",
        },
    ),
    AppService(
        "approval-processing-service",
        "approval_processing",
        8003,
        {
            "APPROVAL_PROCESSING_AMQP_URL": _AMQP_URL,
            "APPROVAL_PROCESSING_APPROVAL_REQUEST_SERVICE_URL": "http://127.0.0.1:8002",
            "APPROVAL_PROCESSING_NOTIFICATION_SERVICE_URL": "http://127.0.0.1:8004",
        },
    ),
    # wsproto: an idle WebSocket costs ~48 KB there against ~85 KB with uvicorn's default
    # websockets implementation (loadtests/README.md), and this service holds thousands.
    AppService(
        "notification-service",
        "notification",
        8004,
        {"NOTIFICATION_AMQP_URL": _AMQP_URL},
        ("--ws", "wsproto"),
    ),
)


def get_service(name: str) -> AppService:
    """Look a service up by its name ("employee-service") or package ("employee")."""
    for service in APP_SERVICES:
        if name in (service.name, service.package):
            return service
    raise KeyError(f"unknown app service {name!r}")


def command(service: AppService, port: int | None = None) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        f"services.{service.package}.app:create_app",
        "--host",
        HOST,
        "--port",
        str(port or service.port),
        "--no-access-log",
        "--log-level",
        "warning",
        *service.server_args,
    ]


def start_app(
    service: AppService,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    log_dir: Path | None = None,
    log_name: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start `service` as its own uvicorn process and return at once.

    The environment is ours plus the service's, `extra_env` and
    `OTEL_SERVICE_NAME`; output goes to `<log_dir>/<log_name or name>.log` (default
    `.run/logs`).
    """
    env = {**os.environ, **service.env, **(extra_env or {}), "OTEL_SERVICE_NAME": service.name}
    log_file = (log_dir or process.sub_dir("logs")) / f"{log_name or service.name}.log"
    log.info("starting %s on port %d", service.name, port or service.port)
    return process.spawn(service.name, command(service, port), env=env, log=log_file)


def is_ready(url: str, timeout: float = 2.0) -> bool:
    """True if `GET <url>/ready` answers 200 (`url` is a plain http:// base URL)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or HOST, parts.port, timeout=timeout)
    try:
        connection.request("GET", f"{parts.path.rstrip('/')}/ready")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def wait_ready(
    url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `GET <url>/ready` until it answers 200; raise TimeoutError after
    `timeout` seconds, or RuntimeError as soon as `proc` has exited."""
    deadline = time.monotonic() + timeout
    while not is_ready(url):
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url}/ready did not answer 200 within {timeout:.0f}s")
        time.sleep(0.25)


def stop_process(popen_or_pid: subprocess.Popen[bytes] | int, grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    if isinstance(popen_or_pid, int):
        process.stop_pid(popen_or_pid, grace=grace)
        return
    popen_or_pid.terminate()
    try:
        popen_or_pid.wait(grace)
    except subprocess.TimeoutExpired:
        popen_or_pid.kill()
        popen_or_pid.wait()


def migrate(database_url: str | None = None) -> None:
    """Run the employee service's Alembic migrations to head, once it has them."""
    if not ALEMBIC_INI.exists():
        log.info("no %s yet; nothing to migrate", ALEMBIC_INI.relative_to(REPO_ROOT))
        return
    env = {**os.environ, "EMPLOYEE_DATABASE_URL": database_url or EMPLOYEE_DATABASE_URL}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "alembic",
            "-c",
            str(ALEMBIC_INI.relative_to(REPO_ROOT)),
            "upgrade",
            "head",
        ],
        cwd=REPO_ROOT,
        env=env,
        check=True,
    )
