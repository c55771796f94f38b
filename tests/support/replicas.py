"""A second local stack for tests: two processes of each service behind the local gateway
(devstack's own `erp up --replicas` layout), every port moved by one offset, on its own
fresh databases and state dir, so it runs beside the session's one-process stack."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from devstack import backing, local
from devstack.apps import APP_SERVICES, AppService
from devstack.topology import Topology
from tests.support.stack import (
    MONGO_URL,
    TRACING,
    amqp_url,
    create_databases,
    drop_databases,
    mysql_url,
)


def _taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def free_offset(replicas: int) -> int:
    """An offset that puts every port of the layout on a free loopback port. Sessions
    running side by side start their search at different offsets (a layout's ports stay
    free until its processes bind them, seconds after the search), below the ephemeral
    ports first (from 32768, where outgoing connections may hold one)."""
    below = [20_000, 21_000, 22_000, 23_000, 24_000]
    first = os.getpid() % len(below)
    for offset in [*below[first:], *below[:first], *range(25_000, 40_000, 1_000)]:
        layout = Topology(replicas=replicas, offset=offset)
        ports = [r.port for r in layout.processes()] + [layout.health_port]
        ports += [p for s in APP_SERVICES for p in (layout.public_port(s), layout.mesh_port(s))]
        if not any(_taken(port) for port in ports):
            return offset
    raise AssertionError("no free ports for a second local layout")


def layout_on(db: str, replicas: int = 2) -> Topology:
    amqp = amqp_url(db)
    return Topology(
        replicas=replicas,
        offset=free_offset(replicas),
        overrides={
            "employee": {"EMPLOYEE_DATABASE_URL": mysql_url(db), **TRACING},
            "approval_request": {
                "APPROVAL_REQUEST_MONGO_URL": MONGO_URL,
                "APPROVAL_REQUEST_MONGO_DB": db,
                "APPROVAL_REQUEST_AMQP_URL": amqp,
                "APPROVAL_REQUEST_OUTBOX_POLL_SECONDS": "0.5",
                "APPROVAL_REQUEST_OUTBOX_MAX_BACKOFF_SECONDS": "2",
                "APPROVAL_REQUEST_OUTBOX_LEASE_SECONDS": "3",
                **TRACING,
            },
            "approval_processing": {"APPROVAL_PROCESSING_AMQP_URL": amqp, **TRACING},
            "notification": {"NOTIFICATION_AMQP_URL": amqp, **TRACING},
        },
    )


@contextlib.contextmanager
def state_dir(state: Path) -> Iterator[None]:
    """devstack's state dir (pid files, logs) moved to `state` for the calls inside, and
    only those: the session's own backing services keep theirs."""
    saved = os.environ.get("ERP_STATE_DIR")
    os.environ["ERP_STATE_DIR"] = str(state)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("ERP_STATE_DIR", None)
        else:
            os.environ["ERP_STATE_DIR"] = saved


@contextlib.contextmanager
def running(db: str, state: Path, replicas: int = 2) -> Iterator[Topology]:
    """The layout on fresh databases named `db`, its pid files and logs under `state`; all
    of it stopped and dropped again at the end."""
    backing.install_missing(gateway=True)
    create_databases(db)
    topology = layout_on(db, replicas)
    try:
        with state_dir(state):
            started = local.start(topology)
        assert started, f"the {replicas}-replica layout did not start (logs in {state})"
        yield topology
    finally:
        with state_dir(state):
            local.stop()
        drop_databases(db)


def mesh_url(topology: Topology, service: AppService) -> str:
    """Where the layout serves every path of `service` (the internal ones too), load
    balanced over its replicas, as a cluster's Service address would."""
    return f"http://127.0.0.1:{topology.mesh_port(service)}"
