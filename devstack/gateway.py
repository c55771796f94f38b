"""The local gateway in front of several replicas: the deployed gateway's own nginx
configuration (deploy/gateway/nginx.conf), its upstreams pointed at the local replicas and
its ports moved to loopback, plus one "mesh" port a service for the calls between
services, which the public ports refuse (`/notify`, `*/internal/*`), as a cluster's
Service addresses would carry them."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from devstack.process import HOST, REPO_ROOT

DEPLOYED_CONFIG = REPO_ROOT / "deploy" / "gateway" / "nginx.conf"
UNPACKED_NGINX = REPO_ROOT / ".run" / "deploy-tools" / "nginx" / "usr" / "sbin" / "nginx"
# The deployed gateway's console (and health) port, and the port every service listens on
# in a cluster.
DEPLOYED_HEALTH_PORT = 8080
DEPLOYED_SERVICE_PORT = 8000


def nginx_binary() -> Path | None:
    """The system's nginx, else Debian's unpacked by scripts/deploy-tools.sh, else None."""
    found = shutil.which("nginx")
    if found:
        return Path(found)
    return UNPACKED_NGINX if UNPACKED_NGINX.exists() else None


def local_config(
    *,
    upstreams: dict[str, list[int]],
    public: dict[str, int],
    mesh: dict[str, int],
    deployed_ports: dict[str, int],
    health_port: int,
    work: Path,
) -> str:
    """The deployed config with each service `name`'s upstream at the loopback ports
    `upstreams[name]`, its public server (deployed on `deployed_ports[name]`) on
    `public[name]`, a mesh server on `mesh[name]`, and nginx's files under `work`."""
    config = DEPLOYED_CONFIG.read_text()
    for name, ports in upstreams.items():
        servers = "".join(f"        server {HOST}:{port};\n" for port in ports)
        # Every server line of the service's upstream block (one in Kubernetes, where a
        # Service name load-balances; one per replica where the deployment names each).
        pattern = rf"(upstream {re.escape(name)} \{{\n)((?:\s*server [^;]+;\n)+)"
        config, found = re.subn(pattern, rf"\g<1>{servers}", config)
        if not found:
            raise ValueError(f"the gateway config has no upstream {name}")
        config = config.replace(f"listen {deployed_ports[name]};", f"listen {HOST}:{public[name]};")
    config = config.replace(f"listen {DEPLOYED_HEALTH_PORT};", f"listen {HOST}:{health_port};")
    config = config.replace("/tmp/", f"{work}/")
    # A mesh port carries every path and WebSocket upgrades too, as a Service address does.
    mesh_servers = """
    map $http_upgrade $erp_mesh_connection {
        default upgrade;
        "" "";
    }
""" + "".join(
        f"""
    server {{
        listen {HOST}:{port};
        location / {{
            proxy_pass http://{name};
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $erp_mesh_connection;
            proxy_read_timeout 1h;
        }}
    }}
"""
        for name, port in mesh.items()
    )
    # The http block is the config's last: the mesh servers go just inside its end.
    end = config.rstrip().rfind("}")
    config = config[:end] + mesh_servers + config[end:]
    unrewritten = re.search(r"server [a-z0-9-]+:\d+;|listen \d+;", config)
    if unrewritten:
        raise ValueError(f"the gateway config has an address left to rewrite: {unrewritten[0]}")
    return config
