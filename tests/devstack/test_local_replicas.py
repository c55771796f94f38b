"""`erp up --replicas 2`: two processes of each service behind the local gateway, which keeps
every service on its usual port, so the README's walkthroughs run through it unchanged.

The layout runs beside the session's stack: every port moved by one offset, its own
state dir and its own fresh databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.apps import APP_SERVICES
from devstack.topology import Topology
from tests.support import replicas
from tests.support.stack import TEST_DB
from tests.support.walkthrough import Shell, bash_blocks, moved, run_walkthrough, section

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture(scope="module")
def layout(infra: None, state: Path) -> Iterator[Topology]:
    with replicas.running(f"{TEST_DB}_replicas", state) as topology:
        yield topology


def test_status_lists_every_replica_and_the_gateway_as_json(layout: Topology, state: Path) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "devstack", "status", "--json"],
        cwd=REPO,
        env={**os.environ, "ERP_STATE_DIR": str(state)},
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
