"""Session-wide test fixtures: the backing services (real MariaDB, RabbitMQ, FerretDB) and
the four services as real processes, started once per session on fresh test databases."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import replicas
from tests.support.auth import as_admin, as_service, as_user
from tests.support.layouts import ONE_PROCESS, Layout, OneProcess, Replicated
from tests.support.stack import TEST_DB, Stack, create_databases, drop_databases, free_port

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("notification", "employee", "approval_request", "approval_processing")


@pytest.fixture(scope="session")
def infra() -> Iterator[None]:
    """Backing services up (installed if missing) and this session's own empty databases."""
    # Installing and building may take minutes on a new machine (`make infra` does it
    # first); only starting is under the short timeout.
    subprocess.run(
        [sys.executable, "-m", "devstack", "install", "--with-jaeger", "--with-prometheus"],
        check=True,
    )
    subprocess.run(
        [sys.executable, "-m", "devstack", "infra", "up", "--with-jaeger"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    create_databases(TEST_DB)
    yield
    drop_databases(TEST_DB)


@pytest.fixture(scope="session")
def stack(infra: None) -> Iterator[Stack]:
    log_dir = REPO / ".run" / "test-logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    running = Stack(log_dir=log_dir, ports={package: free_port() for package in PACKAGES})
    try:
        for package in PACKAGES:
            running.start(package)
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def replicated(
    infra: None, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicated]:
    """Two replicas of every service behind the local gateway, on databases of their own,
    for the tests of one module (pid files and logs in the session's temporary dir, so
    sessions running side by side never take each other's processes for their own)."""
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    db = f"{TEST_DB}_{module}"
    state = tmp_path_factory.mktemp(module)
    with replicas.running(db, state) as topology:
        yield Replicated(topology, state, db)


@pytest.fixture(scope="module")
def layout(request: pytest.FixtureRequest) -> Layout:
    """The session's one process a service, unless the module runs in both layouts
    (`pytestmark = layouts.BOTH`) and this is its turn on the replicated one."""
    if getattr(request, "param", ONE_PROCESS) == ONE_PROCESS:
        return OneProcess(request.getfixturevalue("stack"))
    replicated: Replicated = request.getfixturevalue("replicated")
    return replicated


@pytest.fixture(scope="module")
def employee_url(layout: Layout) -> str:
    return layout.url("employee")


@pytest.fixture(scope="module")
def approvals_url(layout: Layout) -> str:
    return layout.url("approval_request")


@pytest.fixture(scope="module")
def processing_url(layout: Layout) -> str:
    return layout.url("approval_processing")


@pytest.fixture(scope="module")
def notification_url(layout: Layout) -> str:
    return layout.url("notification")


async def _credentials(request: httpx.Request) -> None:
    """Present the credentials the natural caller of each endpoint has, unless the test set
    its own: a service token for internal endpoints, the approver's own token for their
    inbox, an administrator's elsewhere. Authorization rules are proven in tests/auth/."""
    if "authorization" in request.headers:
        return
    path = request.url.path
    if "/internal/" in path or path == "/notify":
        request.headers.update(as_service())
    elif path.startswith("/process/"):
        request.headers.update(as_user(int(path.split("/")[2])))
    else:
        request.headers.update(as_admin())


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=15, event_hooks={"request": [_credentials]}) as http:
        yield http


@pytest.fixture
async def anonymous() -> AsyncIterator[httpx.AsyncClient]:
    """A client that sends no credentials at all."""
    async with httpx.AsyncClient(timeout=15) as http:
        yield http
