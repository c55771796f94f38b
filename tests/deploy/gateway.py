"""Runs the gateway's real nginx configuration (deploy/gateway/nginx.conf) on loopback: its
upstreams and ports moved to given ones, its temporary files under a work directory."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.deploy.deploy_model import APPS, REPO

CONFIG = REPO / "deploy" / "gateway" / "nginx.conf"
FOREGROUND = ("-g", "daemon off;")


def find_nginx() -> Path:
    """The system's nginx, else Debian's unpacked by scripts/deploy-tools.sh (run if needed)."""
    found = shutil.which("nginx")
    unpacked = REPO / ".run" / "deploy-tools" / "nginx" / "usr" / "sbin" / "nginx"
    if found is None and not unpacked.exists():
        subprocess.run(
            ["bash", str(REPO / "scripts" / "deploy-tools.sh")],
            check=True,
            capture_output=True,
            timeout=1200,
        )
    return Path(found) if found else unpacked


def _servers(ports: int | Sequence[int]) -> str:
    listed = [ports] if isinstance(ports, int) else list(ports)
    assert listed, "an upstream needs at least one server"
    return "\n        ".join(f"server 127.0.0.1:{port};" for port in listed)


def _server_lines(ports: int | Sequence[int]) -> str:
    listed = [ports] if isinstance(ports, int) else list(ports)
    assert listed, "an upstream needs at least one server"
    return "".join(f"        server 127.0.0.1:{port};\n" for port in listed)


def gateway_config(
    upstreams: Mapping[str, int | Sequence[int]], ports: Mapping[str, int], work: Path
) -> str:
    """The gateway config with each service's upstream at 127.0.0.1:``upstreams[name]`` (a
    port, or the ports of several replicas, balanced as the orchestrator's VIP would): every
    server line of its upstream block, one or one per replica, is replaced. Its public port
    goes to ``ports[name]`` and the console's port (which answers /healthz too) to
    ``ports['health']``."""
    config = CONFIG.read_text()
    for name, replicas in upstreams.items():
        pattern = rf"(upstream {re.escape(name)} \{{\n)((?:[ \t]*server [^;]+;\n)+)"
        config, found = re.subn(pattern, rf"\g<1>{_server_lines(replicas)}", config)
        assert found == 1, f"the gateway config has no upstream {name}"
    for name, service in APPS.items():
        config = config.replace(f"listen {service.port};", f"listen 127.0.0.1:{ports[name]};")
    config = config.replace("listen 8080;", f"listen 127.0.0.1:{ports['health']};")
    config = config.replace("/tmp/", f"{work}/")
    unrewritten = re.search(r"server [a-z0-9-]+:\d+;|listen \d+;", config)
    assert not unrewritten, f"every address rewritten: {unrewritten and unrewritten[0]}"
    return config


def internal_config(
    upstreams: Mapping[str, Sequence[int]], ports: Mapping[str, int], work: Path
) -> str:
    """A plain nginx spreading service-to-service calls over replicas: ``ports[name]`` passes
    every path (the internal ones included, unlike the gateway) to ``upstreams[name]``'s
    replicas on loopback; ``ports['health']`` answers /healthz. A replica that refuses the
    connection is skipped for the next one, as a Swarm VIP or a Kubernetes Service would."""
    blocks = []
    for name, replicas in upstreams.items():
        blocks.append(
            f"""
    upstream {name} {{
        {_servers(replicas)}
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{ports[name]};
        location / {{
            proxy_pass http://{name};
        }}
    }}"""
        )
    temp = "\n".join(
        f"    {kind}_temp_path {work}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes 1;
pid {work}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
{temp}
    client_max_body_size 1m;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_connect_timeout 2s;
    proxy_read_timeout 60s;
    server {{
        listen 127.0.0.1:{ports["health"]};
        location = /healthz {{
            return 200 "ok\\n";
        }}
    }}{"".join(blocks)}
}}
"""


def start_gateway(
    nginx: Path, config: str, work: Path, health_port: int
) -> subprocess.Popen[bytes]:
    """nginx in the foreground with ``config``, once its health port answers. Its access log
    (the config's stdout) goes to ``work/access.log``, its error log to ``work/error.log``."""
    (work / "nginx.conf").write_text(config)
    with (work / "access.log").open("ab") as access, (work / "error.log").open("ab") as errors:
        nginx_proc = subprocess.Popen(
            [str(nginx), "-e", "stderr", "-p", str(work), "-c", f"{work}/nginx.conf", *FOREGROUND],
            stdout=access,
            stderr=errors,
        )
    deadline = time.monotonic() + 20
    while not _answers(health_port):
        if nginx_proc.poll() is not None:
            errors_text = (work / "error.log").read_text()
            raise AssertionError(f"nginx refused the gateway config: {errors_text}")
        if time.monotonic() > deadline:
            nginx_proc.terminate()
            nginx_proc.wait(10)
            raise AssertionError("nginx did not start")
        time.sleep(0.1)
    return nginx_proc


def _answers(port: int) -> bool:
    """An HTTP answer, not only a connection: while nginx retries binding a port that is
    taken, the ports it did bind already accept connections, then it gives up and exits."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            return sock.recv(5) == b"HTTP/"
    except OSError:
        return False
