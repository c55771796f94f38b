"""The local stack's processes: one per service on its usual port, or N replicas of each
behind the local gateway (devstack/gateway.py), which then keeps the usual ports so every
command in the README works unchanged.

Ports, with `offset` added to each (a test runs a second stack beside the local one):
- 8001-8004: each service's public port (the process itself, or the gateway);
- 8011-8014: the gateway's mesh ports, for the calls between services (replicas only);
- 8010: the gateway's health port;
- 82ik: replica k of the i-th service (8210 is employee-service's first).
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from devstack import apps, gateway, process
from devstack.apps import APP_SERVICES, AppService
from devstack.process import HOST

MESH_PORT_OFFSET = 10
GATEWAY_HEALTH_PORT = 8010
REPLICA_PORT_BASE = 8200
MAX_REPLICAS = 10  # one decimal digit of the replica ports


@dataclass(frozen=True)
class Replica:
    service: AppService
    index: int
    count: int
    port: int

    @property
    def name(self) -> str:
        """The service's name for a lone process, `<name>-<index>` for a replica."""
        return self.service.name if self.count == 1 else f"{self.service.name}-{self.index}"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass(frozen=True)
class Topology:
    replicas: int = 1
    offset: int = 0
    # Per package, variables that win over everything else (a test's own databases).
    overrides: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise ValueError(f"replicas must be 1 to {MAX_REPLICAS}, not {self.replicas}")

    @property
    def gateway(self) -> bool:
        return self.replicas > 1

    def public_port(self, service: AppService) -> int:
        return service.port + self.offset

    def public_url(self, service: AppService) -> str:
        return f"http://{HOST}:{self.public_port(service)}"

    def mesh_port(self, service: AppService) -> int:
        return service.port + MESH_PORT_OFFSET + self.offset

    @property
    def health_port(self) -> int:
        return GATEWAY_HEALTH_PORT + self.offset

    def replicas_of(self, service: AppService) -> list[Replica]:
        if not self.gateway:
            return [Replica(service, 0, 1, self.public_port(service))]
        slot = APP_SERVICES.index(service) + 1
        return [
            Replica(service, k, self.replicas, REPLICA_PORT_BASE + 10 * slot + k + self.offset)
            for k in range(self.replicas)
        ]

    def processes(self) -> list[Replica]:
        return [r for s in APP_SERVICES if s.available for r in self.replicas_of(s)]

    def env(self, replica: Replica) -> dict[str, str]:
        """The service's local environment with its peers' addresses moved to where this
        layout serves them (the mesh ports behind a gateway), plus each processing
        replica's identity (docs/decisions.md D22)."""
        peers = {
            peer.url: (
                f"http://{HOST}:{self.mesh_port(peer)}" if self.gateway else self.public_url(peer)
            )
            for peer in APP_SERVICES
        }
        env = dict(replica.service.env)
        for key, value in env.items():
            for local, moved in peers.items():
                value = value.replace(local, moved)
            env[key] = value
        if replica.service.package == "approval_processing" and self.gateway:
            env |= {
                "APPROVAL_PROCESSING_REPLICAS": str(replica.count),
                "APPROVAL_PROCESSING_REPLICA_INDEX": str(replica.index),
                "APPROVAL_PROCESSING_PEER_URLS": ",".join(
                    r.url for r in self.replicas_of(replica.service)
                ),
            }
        return env | self.overrides.get(replica.service.package, {})

    def start(self, replica: Replica, log_dir: Path | None = None) -> subprocess.Popen[bytes]:
        return apps.start_app(
            replica.service,
            port=replica.port,
            extra_env=self.env(replica),
            log_dir=log_dir,
            log_name=replica.name,
        )

    def gateway_config(self, work: Path) -> str:
        services = [s for s in APP_SERVICES if s.available]
        return gateway.local_config(
            upstreams={s.name: [r.port for r in self.replicas_of(s)] for s in services},
            public={s.name: self.public_port(s) for s in services},
            mesh={s.name: self.mesh_port(s) for s in services},
            deployed_ports={s.name: s.port for s in services},
            health_port=self.health_port,
            work=work,
        )

    def start_gateway(self, work: Path, nginx: Path) -> subprocess.Popen[bytes]:
        """nginx in the foreground with this layout's config; its access log (the
        deployed config's stdout) and error log go to `<work>/gateway.log`."""
        work.mkdir(parents=True, exist_ok=True)
        (work / "nginx.conf").write_text(self.gateway_config(work))
        args = [str(nginx), "-e", "stderr", "-p", str(work), "-c", str(work / "nginx.conf")]
        return process.spawn(
            "gateway",
            [*args, "-g", "daemon off;"],
            log=work / "gateway.log",
        )


def saved(path: Path) -> Topology:
    """The layout `erp up` last started (one process a service if none)."""
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return Topology()
    return Topology(replicas=int(data.get("replicas", 1)), offset=int(data.get("offset", 0)))


def save(topology: Topology, path: Path) -> None:
    path.write_text(json.dumps({"replicas": topology.replicas, "offset": topology.offset}) + "\n")
