"""The web console on the local stack: nginx serving console/dist at http://127.0.0.1:8080/
and passing the API paths to the services, by path, on that one origin (the console calls
the API and opens its WebSocket same-origin). The internal endpoints are refused as the
deployed gateway refuses them (deploy/gateway/nginx.conf). The console's trace pages read
Jaeger's query API under `/jaeger/api/` (GET of traces and services only), the pipeline page
Prometheus's under `/prometheus/api/v1/` (GET of query and query_range only). Started by
`erp up` only when nginx and a built console are both there; without either the stack runs
as before.

`build()` brings console/node_modules and console/dist up to date, doing only what is stale
(`erp install --with-console`, `erp up`, `erp build-console`)."""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from devstack import backing, gateway, install, process
from devstack.process import HOST, REPO_ROOT

log = logging.getLogger(__name__)

CONSOLE = "console"
CONSOLE_PORT = 8080
SOURCE = REPO_ROOT / "console"
DIST = SOURCE / "dist"
# What `npm run build` reads besides node_modules: a change to any of them makes dist stale.
BUILD_INPUTS = (
    "src",
    "index.html",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "vite.config.ts",
    "scripts",
)

# Path prefix -> the service (package) that serves it.
ROUTES = {
    "/dev/sign-in": "employee",
    "/employees": "employee",
    "/attendance": "employee",
    "/leaves": "employee",
    "/holidays": "employee",
    "/approvals": "approval_request",
    "/process": "approval_processing",
    "/ws/": "notification",
}
# Service-to-service endpoints under the prefixes above: never from a browser.
REFUSED = ("/leaves/internal", "/approvals/internal")
JAEGER_QUERY = f"{HOST}:{backing.JAEGER_QUERY_PORT}"
# What the trace pages read of Jaeger's query API; the rest of it stays off the console's origin.
JAEGER_PATHS = ("/api/services", "/api/traces")
PROMETHEUS_API = f"{HOST}:{backing.PROMETHEUS_PORT}"
# What the pipeline page reads of Prometheus: queries, never its admin, config or write API.
PROMETHEUS_PATHS = ("/api/v1/query", "/api/v1/query_range")

MIME_TYPES = {
    "text/html": "html",
    "text/css": "css",
    "application/javascript": "js mjs",
    "application/json": "json",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/x-icon": "ico",
}


def _proxy(prefix: str, upstream: str) -> str:
    if prefix == "/ws/":
        # Sockets live for hours; the token travels in Sec-WebSocket-Protocol, never logged.
        return f"""
        location ^~ {prefix} {{
            proxy_pass http://{upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}"""
    return f"""
        location ^~ {prefix} {{
            proxy_pass http://{upstream};
        }}"""


def _jaeger(upstream: str) -> str:
    passed = "".join(
        f"""
        location ^~ /jaeger{path} {{
            limit_except GET {{
                deny all;
            }}
            proxy_pass http://{upstream}{path};
        }}"""
        for path in JAEGER_PATHS
    )
    return f"""
        location ^~ /jaeger/ {{
            return 404;
        }}{passed}"""


def _prometheus(upstream: str | None) -> str:
    # Exact matches: a prefix would pass /api/v1/query_exemplars and the like too.
    passed = "".join(
        f"""
        location = /prometheus{path} {{
            limit_except GET {{
                deny all;
            }}
            proxy_pass http://{upstream}{path};
        }}"""
        for path in (PROMETHEUS_PATHS if upstream else ())
    )
    return f"""
        location ^~ /prometheus/ {{
            return 404;
        }}{passed}"""


def _deployed(path: Path | None) -> str:
    # A deployment's gateway serves /config.json; a 404 tells the console it is on a
    # development stack (development sign-in, its own trace waterfall), where the catch-all
    # location would answer with index.html instead.
    if path is None:
        return """
        location = /config.json {
            return 404;
        }"""
    return f"""
        location = /config.json {{
            alias {path};
            add_header Cache-Control "no-cache";
        }}"""


def _worker_user(dist: Path) -> str:
    """Started as root, nginx's workers would run as nobody, who may not read a checkout or
    a temporary dir: they run as the owner of the files they serve instead."""
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(dist.stat().st_uid).pw_name};\n"


def config(
    *,
    upstreams: dict[str, str],
    port: int,
    dist: Path,
    work: Path,
    jaeger: str = JAEGER_QUERY,
    prometheus: str | None = PROMETHEUS_API,
    deployed: Path | None = None,
) -> str:
    """nginx's configuration: `dist` at `/` on 127.0.0.1:`port`, each of ROUTES passed to
    `upstreams[package]` (`host:port`), `/jaeger/api/` to Jaeger's query API at `jaeger`
    (`host:port`), PROMETHEUS_PATHS under `/prometheus` to `prometheus` (`host:port`; None:
    the whole of `/prometheus/` refused), `deployed` (a file) at `/config.json`, nginx's own
    files under `work`."""
    types = "".join(f"        {mime} {ext};\n" for mime, ext in MIME_TYPES.items())
    refused = "".join(
        f"\n        location ^~ {p} {{\n            return 404;\n        }}" for p in REFUSED
    )
    proxied = "".join(_proxy(prefix, upstreams[package]) for prefix, package in ROUTES.items())
    temp = "".join(
        f"    {kind}_temp_path {work}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes 1;
{_worker_user(dist)}pid {work}/nginx.pid;
error_log stderr warn;
events {{
    worker_connections 1024;
}}
http {{
    types {{
{types}    }}
    default_type application/octet-stream;
    # The path alone: no query string (nor any header) reaches the log.
    log_format console '$remote_addr [$time_local] "$request_method $uri" $status $body_bytes_sent';
    access_log {work}/access.log console;
{temp}    client_max_body_size 1m;
    proxy_http_version 1.1;
    proxy_set_header Host $host;
    proxy_set_header Connection "";
    proxy_connect_timeout 5s;
    proxy_read_timeout 60s;
    server_tokens off;
    server {{
        listen {HOST}:{port};
        root {dist};
        location = /index.html {{
            add_header Cache-Control "no-cache";
        }}
        location ^~ /assets/ {{
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
        location / {{
            try_files $uri /index.html;
        }}{_deployed(deployed)}{refused}{proxied}{_jaeger(jaeger)}{_prometheus(prometheus)}
    }}
}}
"""


def start(
    upstreams: dict[str, str],
    *,
    port: int = CONSOLE_PORT,
    dist: Path = DIST,
    work: Path | None = None,
    jaeger: str = JAEGER_QUERY,
    prometheus: str | None = PROMETHEUS_API,
    deployed_config: dict[str, Any] | None = None,
) -> subprocess.Popen[bytes] | None:
    """nginx serving the console, or None (with the reason logged) when nginx or the built
    console is missing or the port is taken: the console is optional on the local stack.
    `deployed_config` is served as /config.json, as a deployment's gateway serves it."""
    nginx = gateway.nginx_binary()
    if nginx is None or not (dist / "index.html").exists():
        log.info(
            "console not served: needs nginx and a built console (cd console && npm run build)"
        )
        return None
    if process.port_open(port):
        log.warning("console not served: port %d is taken", port)
        return None
    work = work or process.sub_dir(CONSOLE)
    work.mkdir(parents=True, exist_ok=True)
    deployed = None
    if deployed_config is not None:
        deployed = work / "config.json"
        deployed.write_text(json.dumps(deployed_config))
    (work / "nginx.conf").write_text(
        config(
            upstreams=upstreams,
            port=port,
            dist=dist.resolve(),
            work=work,
            jaeger=jaeger,
            prometheus=prometheus,
            deployed=deployed,
        )
    )
    args = [str(nginx), "-e", "stderr", "-p", str(work), "-c", str(work / "nginx.conf")]
    return process.spawn(CONSOLE, [*args, "-g", "daemon off;"], log=work / "console.log")


def _running() -> int | None:
    pid = process.read_pid(CONSOLE)
    return pid if pid and process.pid_alive(pid, "nginx") else None


def serve_local(public_urls: dict[str, str]) -> str | None:
    """Serve the console in front of the local stack's public ports (`public_urls` by
    package), once; its URL, or None when it is not served."""
    url = f"http://{HOST}:{CONSOLE_PORT}/"
    if _running():
        return url
    upstreams = {package: u.removeprefix("http://") for package, u in public_urls.items()}
    popen = start(upstreams)
    if popen is None:
        return None
    try:
        process.wait_port(CONSOLE_PORT, 10, popen)
    except (TimeoutError, RuntimeError) as error:
        log.warning(
            "console not served: %s\n%s",
            error,
            process.tail(process.sub_dir(CONSOLE) / "console.log"),
        )
        return None
    process.write_pid(CONSOLE, popen.pid)
    return url


def stop_local() -> None:
    pid = _running()
    if pid:
        log.info("stopping the console (pid %d)", pid)
        process.stop_pid(pid, "nginx")
    process.clear_pid(CONSOLE)


def _files(paths: Iterable[Path]) -> Iterable[Path]:
    for path in paths:
        if path.is_dir():
            yield from (found for found in path.rglob("*") if found.is_file())
        elif path.exists():
            yield path


def stale(target: Path, sources: Iterable[Path]) -> bool:
    """Whether `target` is missing or older than any file of `sources` (directories are
    searched through)."""
    if not target.exists():
        return True
    built = target.stat().st_mtime_ns
    return any(found.stat().st_mtime_ns > built for found in _files(sources))


def needs_install(source: Path = SOURCE) -> bool:
    """npm writes node_modules/.package-lock.json last on every install: older than the
    lock file, node_modules is not what the lock file pins."""
    return stale(source / "node_modules" / ".package-lock.json", [source / "package-lock.json"])


def needs_build(source: Path = SOURCE) -> bool:
    return stale(source / "dist" / "index.html", [source / name for name in BUILD_INPUTS])


def build(source: Path = SOURCE) -> None:
    """`npm ci` when node_modules is missing or older than the lock file, then `npm run
    build` when dist is missing or older than what it is built from; nothing when both are
    up to date."""
    npm = shutil.which("npm")
    if npm is None:
        raise install.InstallError("building the console needs node and npm: `npm` is not on PATH")
    if needs_install(source):
        install._run_logged(
            "npm",
            "npm ci in console/",
            [npm, "ci"],
            log_name="console-build",
            env=dict(os.environ),
            cwd=source,
        )
    if needs_build(source):
        install._run_logged(
            "npm",
            "npm run build in console/",
            [npm, "run", "build"],
            log_name="console-build",
            env=dict(os.environ),
            cwd=source,
        )
