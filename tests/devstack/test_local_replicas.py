"""`erp up --replicas 2`: two processes of each service behind the local gateway, which keeps
every service on its usual port, so the README's walkthroughs run through it unchanged.

The layout runs beside the session's stack: every port moved by one offset, its own
state dir and its own fresh databases."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack import backing, local
from devstack.apps import APP_SERVICES
from devstack.topology import Topology
from tests.support.stack import (
    MONGO_URL,
    TEST_DB,
    amqp_url,
    create_databases,
    drop_databases,
    mysql_url,
)
from tests.support.walkthrough import Shell, bash_blocks, moved, run_walkthrough, section

REPO = Path(__file__).resolve().parents[2]
DB = f"{TEST_DB}_replicas"


def _free_offset() -> int:
    """An offset that puts every port of a two-replica layout on a free port."""
    for offset in range(20_000, 40_000, 1_000):
        layout = Topology(replicas=2, offset=offset)
        ports = [r.port for r in layout.processes()] + [layout.health_port]
        ports += [p for s in APP_SERVICES for p in (layout.public_port(s), layout.mesh_port(s))]
        if not any(_taken(port) for port in ports):
            return offset
    raise AssertionError("no free ports for a second local layout")


def _taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def layout(infra: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    backing.install_missing(gateway=True)
    create_databases(DB)
    state = tmp_path_factory.mktemp("state")
    saved_state = os.environ.get("ERP_STATE_DIR")
    os.environ["ERP_STATE_DIR"] = str(state)
    amqp = amqp_url(DB)
    topology = Topology(
        replicas=2,
        offset=_free_offset(),
        overrides={
            "employee": {"EMPLOYEE_DATABASE_URL": mysql_url(DB)},
            "approval_request": {
                "APPROVAL_REQUEST_MONGO_URL": MONGO_URL,
                "APPROVAL_REQUEST_MONGO_DB": DB,
                "APPROVAL_REQUEST_AMQP_URL": amqp,
            },
            "approval_processing": {"APPROVAL_PROCESSING_AMQP_URL": amqp},
            "notification": {"NOTIFICATION_AMQP_URL": amqp},
        },
    )
    try:
        assert local.start(topology), "the two-replica layout did not start (see the log)"
        yield topology
    finally:
        local.stop()
        if saved_state is None:
            os.environ.pop("ERP_STATE_DIR", None)
        else:
            os.environ["ERP_STATE_DIR"] = saved_state
        drop_databases(DB)


def test_status_lists_every_replica_and_the_gateway_as_json(layout: Topology) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "devstack", "status", "--json"],
        cwd=REPO,
        env=dict(os.environ),
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    rows = json.loads(printed)["processes"]
    services = [(row["service"], row["replica"]) for row in rows]
    assert services == [(s.name, k) for s in APP_SERVICES for k in (0, 1)] + [("gateway", None)]
    assert all(row["state"] in ("ready", "up") for row in rows), rows
    assert all(isinstance(row["pid"], int) for row in rows), rows
    assert len({row["port"] for row in rows}) == len(rows)


def test_the_readme_walkthroughs_run_unchanged_through_the_gateway(layout: Topology) -> None:
    readme = (REPO / "README.md").read_text()
    gateway = {s.port: f"127.0.0.1:{layout.public_port(s)}" for s in APP_SERVICES}
    shell = Shell(REPO, dict(os.environ))
    try:
        for heading in ("The employee API in five commands", "The whole leave flow, step by step"):
            # The leave flow's first block is the watcher, which tests/docs runs.
            for block in bash_blocks(section(readme, heading))[-1:]:
                run_walkthrough(shell, moved(block, gateway))
    finally:
        shell.close()
