"""The two layouts the e2e and fault suites run in, driven alike: the session's one process
a service (tests/support/stack.py), and two replicas of each behind the local gateway
(tests/support/replicas.py). A module runs in both with `pytestmark = layouts.BOTH`; its
tests then take the `layout` fixture (tests/conftest.py) and the URL fixtures built on it."""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack import apps, local, process
from devstack.apps import APP_SERVICES, get_service
from devstack.topology import Replica, Topology
from tests.support.replicas import mesh_url, state_dir
from tests.support.stack import TEST_DB, Stack, amqp_url

ONE_PROCESS = "one process each"
REPLICATED = "two replicas each"
# Module scope: each layout starts once per module, every test of one layout runs together.
BOTH = pytest.mark.parametrize("layout", [ONE_PROCESS, REPLICATED], indirect=True, scope="module")


class Layout(abc.ABC):
    """Where each service answers, the databases and vhost behind it, and its processes."""

    name: str
    db: str

    @abc.abstractmethod
    def url(self, package: str) -> str:
        """Every path of the service (the internal ones too), over all its processes."""

    @abc.abstractmethod
    def process_urls(self, package: str) -> list[str]:
        """Each process of the service on its own."""

    @abc.abstractmethod
    def stop(self, package: str) -> None:
        """The whole service down: every process ended with SIGTERM, waiting for each."""

    @abc.abstractmethod
    def kill(self, package: str, replica: int = 0) -> None:
        """SIGKILL one process of the service: no shutdown hook runs, as in a crash."""

    @abc.abstractmethod
    def start(self, package: str) -> None:
        """Every stopped process of the service started again, back once each is ready."""

    @property
    def amqp_url(self) -> str:
        return amqp_url(self.db)

    @property
    def replicas(self) -> int:
        return len(self.process_urls(APP_SERVICES[0].package))


@dataclass
class OneProcess(Layout):
    stack: Stack
    name: str = ONE_PROCESS
    db: str = TEST_DB

    def url(self, package: str) -> str:
        return self.stack.url(package)

    def process_urls(self, package: str) -> list[str]:
        return [self.stack.url(package)]

    def stop(self, package: str) -> None:
        self.stack.stop(package)

    def kill(self, package: str, replica: int = 0) -> None:
        assert replica == 0, "the session stack runs one process a service"
        self.stack.kill(package)

    def start(self, package: str) -> None:
        self.stack.start(package)


@dataclass
class Replicated(Layout):
    """devstack's `erp up --replicas` layout (pid files and logs under `state`), where each
    call through the gateway may land on any replica."""

    topology: Topology
    state: Path
    db: str
    name: str = REPLICATED

    def _replicas(self, package: str) -> list[Replica]:
        return self.topology.replicas_of(get_service(package))

    def url(self, package: str) -> str:
        return mesh_url(self.topology, get_service(package))

    def process_urls(self, package: str) -> list[str]:
        return [r.url for r in self._replicas(package)]

    def _pid(self, replica: Replica) -> int:
        with state_dir(self.state):
            pid = local.running_pid(replica.name, _module(replica))
        assert pid, f"{replica.name} is not running"
        return pid

    def stop(self, package: str) -> None:
        for replica in self._replicas(package):
            pid = self._pid(replica)
            apps.stop_process(pid)
            _gone(replica, pid)

    def kill(self, package: str, replica: int = 0) -> None:
        victim = self._replicas(package)[replica]
        pid = self._pid(victim)
        os.kill(pid, signal.SIGKILL)
        _gone(victim, pid)

    def start(self, package: str) -> None:
        with state_dir(self.state):
            for replica in self._replicas(package):
                # A restart writes a new log: the old one is kept, it tells what the
                # stopped process did.
                log = process.log_path(replica.name)
                if log.exists() and not local.running_pid(replica.name, _module(replica)):
                    log.rename(log.with_suffix(f".{int(log.stat().st_mtime_ns)}.log"))
            started = local.start(self.topology)
        assert started, f"{package} did not start again (logs in {self.state})"
        # The gateway keeps refusing a service whose every replica failed it (502, no live
        # upstreams) for a few seconds after they are back.
        apps.wait_ready(self.url(package), timeout=20)


def _module(replica: Replica) -> str:
    """What the replica's command line names (a recycled pid is never taken for it)."""
    return f"services.{replica.service.package}.app"


def _gone(replica: Replica, pid: int) -> None:
    """Until the process has exited and its port is free. Its main thread shows as a
    zombie while the others still exit, holding the listening socket for a moment."""
    deadline = time.monotonic() + 10
    while process.pid_alive(pid) or process.port_open(replica.port):
        assert time.monotonic() < deadline, f"{replica.name} (pid {pid}) did not go"
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
