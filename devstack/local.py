"""Runs a topology of the local stack (devstack/topology.py): starts what is missing,
stops what we started, and reports every process, each by the pid recorded under its
name in the state dir."""

from __future__ import annotations

import logging
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from devstack import apps, console, gateway, process
from devstack.topology import Replica, Topology, save, saved

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0
GATEWAY = "gateway"


def topology_file() -> Path:
    return process.state_dir() / "topology.json"


def gateway_dir() -> Path:
    return process.sub_dir(GATEWAY)


def _expect(replica: Replica) -> str:
    return f"services.{replica.service.package}.app"


def running_pid(name: str, expect: str) -> int | None:
    """Our recorded pid for `name` while that process still runs."""
    pid = process.read_pid(name)
    return pid if pid and process.pid_alive(pid, expect) else None


@dataclass(frozen=True)
class ProcessRow:
    """One line of `erp status` (and one object of `erp status --json`)."""

    service: str
    replica: int | None  # None for the gateway
    pid: int | None
    port: int
    state: str
    log: str


def rows(topology: Topology) -> list[ProcessRow]:
    found = []
    for replica in topology.processes():
        if apps.is_ready(replica.url):
            state = "ready"
        else:
            state = "up, not ready" if process.port_open(replica.port) else "down"
        found.append(
            ProcessRow(
                replica.service.name,
                replica.index,
                running_pid(replica.name, _expect(replica)),
                replica.port,
                state,
                str(process.log_path(replica.name)),
            )
        )
    if topology.gateway:
        found.append(
            ProcessRow(
                GATEWAY,
                None,
                running_pid(GATEWAY, "nginx"),
                topology.health_port,
                "up" if process.port_open(topology.health_port) else "down",
                str(gateway_dir() / "gateway.log"),
            )
        )
    return found


def as_json(found: list[ProcessRow]) -> list[dict[str, object]]:
    return [asdict(row) for row in found]


def _ours_running(topology: Topology) -> bool:
    return any(running_pid(r.name, _expect(r)) for r in topology.processes()) or bool(
        running_pid(GATEWAY, "nginx")
    )


def start(topology: Topology) -> bool:
    """Start every process of `topology` that is not running as ours, then wait until
    each is ready. False (with the reason logged) on a port clash or a failed start."""
    previous = saved(topology_file())
    if previous.replicas != topology.replicas and _ours_running(previous):
        log.error(
            "the stack runs with %d replica(s) a service; `erp down` first to start %d",
            previous.replicas,
            topology.replicas,
        )
        return False
    missing = [r for r in topology.processes() if not running_pid(r.name, _expect(r))]
    ports = [(r.name, r.port) for r in missing]
    nginx = None
    if topology.gateway and not running_pid(GATEWAY, "nginx"):
        nginx = gateway.nginx_binary()
        if nginx is None:
            log.error("the gateway needs nginx: `erp install --with-gateway` installs it")
            return False
        services = {r.service.name: r.service for r in topology.processes()}.values()
        ports += [(f"{GATEWAY} {s.name}", topology.public_port(s)) for s in services]
    taken = [(name, port) for name, port in ports if process.port_open(port)]
    for name, port in taken:
        log.error("port %d of %s is taken by a process we did not start", port, name)
    if taken:
        return False
    save(topology, topology_file())
    started: list[tuple[Replica, subprocess.Popen[bytes]]] = []
    for replica in missing:
        popen = topology.start(replica)
        process.write_pid(replica.name, popen.pid)
        started.append((replica, popen))
    # The gateway first: replicas reach each other through its mesh ports while starting
    # (approval-processing rebuilds its inboxes from approval-request-service).
    if nginx is not None:
        popen = topology.start_gateway(gateway_dir(), nginx)
        process.write_pid(GATEWAY, popen.pid)
        try:
            process.wait_port(topology.health_port, 20, popen)
        except (TimeoutError, RuntimeError) as error:
            log_file = gateway_dir() / "gateway.log"
            log.error("the gateway did not start: %s\n%s", error, process.tail(log_file))
            return False
    for replica, popen in started:
        try:
            apps.wait_ready(replica.url, READY_TIMEOUT, popen)
        except (TimeoutError, RuntimeError) as error:
            log_file = process.log_path(replica.name)
            log.error(
                "%s is not ready: %s\n--- %s ---\n%s",
                replica.name,
                error,
                log_file,
                process.tail(log_file),
            )
            apps.stop_process(popen)
            process.clear_pid(replica.name)
            return False
    return True


def stop() -> None:
    """Stop the console and the gateway, then every app process we started, whatever the
    layout."""
    console.stop_local()
    pid = running_pid(GATEWAY, "nginx")
    if pid:
        log.info("stopping the gateway (pid %d)", pid)
        process.stop_pid(pid, "nginx")
    process.clear_pid(GATEWAY)
    layout = saved(topology_file())
    replicas = {r.name: r for r in [*Topology().processes(), *layout.processes()]}.values()
    for replica in replicas:
        pid = running_pid(replica.name, _expect(replica))
        if pid:
            log.info("stopping %s (pid %d)", replica.name, pid)
            apps.stop_process(pid)
        process.clear_pid(replica.name)
    topology_file().unlink(missing_ok=True)
