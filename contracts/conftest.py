"""Fixtures of the contract tests.

Consumer side: each consumer module names its ``CONSUMER`` and ``PROVIDER``; its pact file is
rebuilt from scratch by its tests (one ``Pact`` per test, merged into the file).

Provider side: each provider runs as its own process in test mode (provider-state hook
mounted) on real MariaDB, FerretDB and RabbitMQ, in databases and a vhost of their own
(``erp_contracts_<pid>``) so the state hooks never touch anyone else's data."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pact import Pact
from pymongo import MongoClient
from pymongo.collection import Collection

from contracts.support import PACTS, Provider, normalise, pact_path
from devstack.apps import get_service, migrate, start_app, stop_process, wait_ready
from services.common import create_http_session
from services.common.auth import AuthSettings, ServiceCredentials, issue_token
from tests.support.stack import MONGO_URL, free_port

# The FFI otherwise reports usage over the network on every run.
os.environ.setdefault("PACT_DO_NOT_TRACK", "true")

REPO = Path(__file__).resolve().parent.parent
# One set of databases per session, as for the test suite (docs/decisions.md, D8).
CONTRACTS_DB = f"erp_contracts_{os.getpid()}"
MYSQL_URL = f"mysql+asyncmy://erp:erp@127.0.0.1:3306/{CONTRACTS_DB}?charset=utf8mb4"
AMQP_URL = f"amqp://guest:guest@127.0.0.1:5672/{CONTRACTS_DB}"


@pytest.fixture(scope="module")
def pact_file(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The module's pact, removed before its first test (so a dropped interaction leaves
    the file) and made reproducible after its last."""
    path = pact_path(request.module.CONSUMER, request.module.PROVIDER)
    path.unlink(missing_ok=True)
    yield path
    if path.exists():
        normalise(path)


@pytest.fixture
def pact(request: pytest.FixtureRequest, pact_file: Path) -> Iterator[Pact]:
    contract = Pact(request.module.CONSUMER, request.module.PROVIDER)
    yield contract
    contract.write_file(PACTS)


@pytest.fixture
async def http(request: pytest.FixtureRequest) -> AsyncIterator[aiohttp.ClientSession]:
    """The session the consumer service itself would build, with its service credentials."""
    credentials = ServiceCredentials(AuthSettings(), request.module.CONSUMER)
    session = create_http_session(timeout_seconds=5, authorization=credentials.header)
    try:
        yield session
    finally:
        await session.close()


def _sh(*args: str, stdin: str | None = None) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=300, input=stdin, text=True)


def _drop_contract_databases() -> None:
    _sh("mariadb", "-uroot", stdin=f"DROP DATABASE IF EXISTS {CONTRACTS_DB};")
    with MongoClient(MONGO_URL) as mongo:
        mongo.drop_database(CONTRACTS_DB)
    subprocess.run(
        ["rabbitmqctl", "-q", "delete_vhost", CONTRACTS_DB],
        capture_output=True,
        check=False,
        timeout=60,
    )


@pytest.fixture(scope="session")
def contract_backing() -> Iterator[None]:
    """Backing services up (installed if missing) and this session's own empty databases,
    where provider states may create and delete freely."""
    _sh(sys.executable, "-m", "devstack", "infra", "up")
    _drop_contract_databases()
    # The erp user may only use databases granted to it; root (socket auth) grants this one.
    _sh(
        "mariadb",
        "-uroot",
        stdin=f"CREATE DATABASE {CONTRACTS_DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
        f" GRANT ALL PRIVILEGES ON {CONTRACTS_DB}.* TO 'erp'@'127.0.0.1', 'erp'@'localhost';",
    )
    migrate(MYSQL_URL)
    _sh("rabbitmqctl", "-q", "add_vhost", CONTRACTS_DB)
    _sh("rabbitmqctl", "-q", "set_permissions", "-p", CONTRACTS_DB, "guest", ".*", ".*", ".*")
    yield
    _drop_contract_databases()


def _provider(package: str, prefix: str, env: dict[str, str]) -> Iterator[Provider]:
    service = get_service(package)
    port = free_port()
    log_dir = REPO / ".run" / "contract-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    extra_env = {
        **env,
        f"{prefix}_ENVIRONMENT": "test",
        f"{prefix}_TEST_MODE": "true",
        "OTEL_TRACES_EXPORTER": "none",
    }
    proc = start_app(service, port=port, extra_env=extra_env, log_dir=log_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, timeout=60, proc=proc)
        yield Provider(service.name, url)
    finally:
        stop_process(proc)


@pytest.fixture(scope="session")
def notification_provider(contract_backing: None) -> Iterator[Provider]:
    yield from _provider("notification", "NOTIFICATION", {"NOTIFICATION_AMQP_URL": AMQP_URL})


@pytest.fixture(scope="session")
def employee_provider(contract_backing: None) -> Iterator[Provider]:
    yield from _provider("employee", "EMPLOYEE", {"EMPLOYEE_DATABASE_URL": MYSQL_URL})


@pytest.fixture(scope="session")
def approval_request_provider(
    contract_backing: None, employee_provider: Provider, notification_provider: Provider
) -> Iterator[Provider]:
    """Its outbox relay delivers what provider states and verified decisions imply to the
    other two providers, so nothing piles up in retries."""
    env = {
        "APPROVAL_REQUEST_MONGO_URL": MONGO_URL,
        "APPROVAL_REQUEST_MONGO_DB": CONTRACTS_DB,
        "APPROVAL_REQUEST_AMQP_URL": AMQP_URL,
        "APPROVAL_REQUEST_EMPLOYEE_SERVICE_URL": employee_provider.url,
        "APPROVAL_REQUEST_NOTIFICATION_SERVICE_URL": notification_provider.url,
    }
    yield from _provider("approval_request", "APPROVAL_REQUEST", env)


@pytest.fixture(scope="session")
def approval_processing_provider(
    contract_backing: None, approval_request_provider: Provider, notification_provider: Provider
) -> Iterator[Provider]:
    """One replica, so it owns every approver and answers a forwarded call itself; it
    rebuilds from, and its consumer notifies, the other providers."""
    env = {
        "APPROVAL_PROCESSING_AMQP_URL": AMQP_URL,
        "APPROVAL_PROCESSING_APPROVAL_REQUEST_SERVICE_URL": approval_request_provider.url,
        "APPROVAL_PROCESSING_NOTIFICATION_SERVICE_URL": notification_provider.url,
    }
    yield from _provider("approval_processing", "APPROVAL_PROCESSING", env)


@pytest.fixture(scope="session")
def approvals_collection(contract_backing: None) -> Iterator[Collection[dict[str, Any]]]:
    """The documents approval-request-service's provider states create (read by the
    message producer, which builds hand-offs from them)."""
    with MongoClient(MONGO_URL) as mongo:
        yield mongo[CONTRACTS_DB]["approvals"]


@pytest.fixture(scope="session")
def service_authorization() -> str:
    """What the verifier presents instead of the pact's example token."""
    return f"Bearer {issue_token(AuthSettings(), 'pact-verifier', service=True)}"
