"""The gateway's nginx configuration (deploy/gateway/nginx.conf), run by a real nginx in
front of stand-in services (one per approval-processing replica the config lists): each
public port reaches its own service, WebSockets pass, the internal paths and /metrics never
reach a service, however spelt, and approval-processing's calls reach every replica; the
console port serves the console's files and /config.json and passes its API paths, never
development sign-in nor Jaeger's UI (which has no sign-in)."""

from __future__ import annotations

import http.client
import json
import os
import pwd
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.deploy_model import APPS, PROCESSING, gateway_upstreams
from tests.deploy.gateway import gateway_config, start_gateway
from tests.support.stack import free_port


class StandIn(BaseHTTPRequestHandler):
    """Answers with the service's name and the path it was asked for; a replica also names
    itself in a header."""

    service = ""
    replica = ""

    def _answer(self) -> None:
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\n")
            self.wfile.write(b"Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
            self.wfile.write(f"upgraded by {self.service}".encode())
            self.wfile.flush()
            self.close_connection = True
            return
        body = f"{self.service} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Replica", self.replica)
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def gateway_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nginx's prefix: its config, temporary files, access.log and error.log."""
    return tmp_path_factory.mktemp("gateway")


PROCESSING_REPLICAS = len(gateway_upstreams()[PROCESSING])
INDEX = "<!doctype html><title>ERP console</title>"
SCRIPT = "console.start()"
CONSOLE_CONFIG = {
    "signIn": "oidc",
    "traceUi": "http://{hostname}:16686/jaeger/search?x={requestId}",
}


def with_console_files(config: str, work: Path) -> str:
    """`config` with the console's root and /config.json at files under `work`, in place of
    the image's and the mounted ones."""
    dist = work / "dist"
    (dist / "assets").mkdir(parents=True, exist_ok=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-abc123.js").write_text(SCRIPT)
    (work / "config.json").write_text(json.dumps(CONSOLE_CONFIG))
    config = config.replace("root /usr/share/nginx/html;", f"root {dist};")
    config = config.replace(
        "alias /etc/nginx/console/config.json;", f"alias {work / 'config.json'};"
    )
    if os.geteuid() == 0:
        # Started as root, nginx's workers would run as nobody, who may not read `work`.
        config = f"user {pwd.getpwuid(dist.stat().st_uid).pw_name};\n{config}"
    return config


@pytest.fixture(scope="module")
def gateway(tools: dict[str, Path], gateway_dir: Path) -> Iterator[dict[str, int]]:
    """nginx with the gateway config, its upstreams pointed at local stand-ins (one per
    approval-processing replica), its ports moved to free ones and the
    console's files in `gateway_dir`: {'employee-service': port, ..., 'health': port}, the
    health port being the console's."""
    servers = []
    upstreams: dict[str, list[int]] = {}
    for name in APPS:
        replicas = PROCESSING_REPLICAS if name == PROCESSING else 1
        for replica in range(replicas):
            handler = type(
                f"StandIn_{name}_{replica}", (StandIn,), {"service": name, "replica": str(replica)}
            )
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
            upstreams.setdefault(name, []).append(server.server_port)
    ports = {name: free_port() for name in [*APPS, "health"]}
    config = with_console_files(gateway_config(upstreams, ports, gateway_dir), gateway_dir)
    try:
        nginx = start_gateway(tools["nginx"], config, gateway_dir, ports["health"])
        try:
            yield ports
        finally:
            nginx.terminate()
            nginx.wait(10)
    finally:
        for server in servers:
            server.shutdown()


def request(
    port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """Sends `path` exactly as written (no client-side normalisation)."""
    status, body, _ = answer(port, path, method, headers)
    return status, body


def answer(
    port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, str, str | None]:
    """Status, body and the X-Replica header of the answer to `path`, sent as written."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.putheader("Content-Length", "0")
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode(), response.getheader("X-Replica")
    finally:
        connection.close()


PUBLIC = {
    "employee-service": [
        "/employees",
        "/employees/1",
        "/attendance/me?employeeId=1",
        "/leaves/me",
        "/docs",
    ],
    "approval-request-service": ["/approvals", "/approvals/7", "/openapi.json"],
    "approval-processing-service": ["/process/2", "/process/2/7"],
    "notification-service": ["/docs"],
}
INTERNAL = {
    "employee-service": [
        "/leaves/internal/approved",
        "//leaves/internal/approved",
        "/leaves//internal/approved",
        "/leaves/./internal/approved",
        "/x/../leaves/internal/approved",
        "/leaves/%69nternal/approved",
        "/leaves%2Finternal/approved",
    ],
    "approval-request-service": [
        "/approvals/internal/result",
        "/approvals//internal/result",
        "/approvals/%69nternal/result",
        "/approvals/internal/waiting?afterRequestId=0",
    ],
    "approval-processing-service": [],
    "notification-service": ["/notify", "/notify/", "//notify", "/%6Eotify", "/notify?x=1"],
}


@pytest.mark.parametrize("service", APPS)
def test_each_public_port_reaches_its_own_service(gateway: dict[str, int], service: str) -> None:
    for path in PUBLIC[service]:
        for method in ("GET", "POST"):
            status, body = request(gateway[service], path, method)
            assert (status, body) == (200, f"{service} {path}"), (method, path)


@pytest.mark.parametrize("service", APPS)
def test_internal_paths_and_metrics_never_reach_a_service(
    gateway: dict[str, int], service: str
) -> None:
    for path in [*INTERNAL[service], "/metrics", "/metrics/", "/%6Detrics"]:
        for method in ("GET", "POST"):
            status, body = request(gateway[service], path, method)
            assert status == 404, (method, path, status)
            assert service not in body, (method, path)


def test_approval_processing_calls_reach_every_replica(gateway: dict[str, int]) -> None:
    """Each replica answers for every approver (it forwards to the owner), so the gateway
    balances over all the replicas it lists, GET and POST alike."""
    seen: set[str | None] = set()
    for attempt in range(20 * PROCESSING_REPLICAS):
        method = "GET" if attempt % 2 else "POST"
        status, body, replica = answer(gateway[PROCESSING], "/process/2", method)
        assert (status, body) == (200, f"{PROCESSING} /process/2")
        seen.add(replica)
        if len(seen) == PROCESSING_REPLICAS:
            break
    assert seen == {str(k) for k in range(PROCESSING_REPLICAS)}


def test_approval_processing_calls_skip_a_replica_that_is_down(
    tools: dict[str, Path], tmp_path: Path
) -> None:
    """A replica whose address refuses connections (its pod or task gone) costs no failed
    call: the gateway passes the call, a POST too, to the next replica."""
    running = []
    for replica in range(1, PROCESSING_REPLICAS):
        handler = type(
            f"StandInUp_{replica}", (StandIn,), {"service": PROCESSING, "replica": str(replica)}
        )
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        running.append(server)
    ports = {name: free_port() for name in [*APPS, "health"]}
    upstreams = {name: free_port() for name in APPS}
    config = gateway_config(
        {**upstreams, PROCESSING: [free_port(), *(s.server_port for s in running)]},
        ports,
        tmp_path,
    )
    nginx = start_gateway(tools["nginx"], config, tmp_path, ports["health"])
    try:
        for method in ("POST", "GET") * (2 * PROCESSING_REPLICAS):
            status, _, replica = answer(ports[PROCESSING], "/process/2/7", method)
            assert status == 200, method
            assert replica != "0", method
    finally:
        nginx.terminate()
        nginx.wait(10)
        for server in running:
            server.shutdown()


def test_websockets_pass_through_the_notification_port(gateway: dict[str, int]) -> None:
    with socket.create_connection(
        ("127.0.0.1", gateway["notification-service"]), timeout=5
    ) as sock:
        sock.sendall(
            b"GET /ws/42?after=3 HTTP/1.1\r\nHost: erp\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        received = b""
        while b"upgraded by" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 101")
    assert b"upgraded by notification-service" in received


def test_the_gateway_answers_its_own_health_check(gateway: dict[str, int]) -> None:
    assert request(gateway["health"], "/healthz") == (200, "ok\n")


def _get(port: int, path: str) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response


def test_the_console_port_serves_the_console_its_assets_and_its_config(
    gateway: dict[str, int],
) -> None:
    port = gateway["health"]
    for path in ("/", "/index.html", "/some/deep/link"):
        status, body, _ = answer(port, path)
        assert (status, body) == (200, INDEX), path
    index = _get(port, "/")
    assert index.getheader("Content-Type", "").startswith("text/html")
    assert index.getheader("Cache-Control") == "no-cache"
    script = _get(port, "/assets/index-abc123.js")
    assert script.status == 200
    assert script.getheader("Content-Type") == "application/javascript"
    assert "immutable" in script.getheader("Cache-Control", "")
    assert _get(port, "/assets/missing.js").status == 404
    status, body, _ = answer(port, "/config.json")
    assert (status, json.loads(body)) == (200, CONSOLE_CONFIG)
    assert _get(port, "/config.json").getheader("Cache-Control") == "no-cache"


CONSOLE_API = {
    "/employees": "employee-service",
    "/employees/1": "employee-service",
    "/attendance/me?employeeId=1": "employee-service",
    "/leaves/me": "employee-service",
    "/leaves/working-days?start=2026-01-05&end=2026-01-09": "employee-service",
    "/holidays": "employee-service",
    "/approvals": "approval-request-service",
    "/approvals/7": "approval-request-service",
    "/process/2": "approval-processing-service",
    "/process/2/7": "approval-processing-service",
}


def test_the_console_port_passes_the_console_s_api_paths_to_their_services(
    gateway: dict[str, int],
) -> None:
    for path, service in CONSOLE_API.items():
        for method in ("GET", "POST"):
            status, body = request(gateway["health"], path, method)
            assert (status, body) == (200, f"{service} {path}"), (method, path)


def test_the_console_port_refuses_development_sign_in_internal_paths_and_metrics(
    gateway: dict[str, int],
) -> None:
    refused = [
        "/dev/sign-in",
        "/dev/sign-in?employeeId=1",
        "//dev/sign-in",
        "/%64ev/sign-in",
        "/metrics",
        "/%6Detrics",
        *INTERNAL["employee-service"],
        *INTERNAL["approval-request-service"],
        *INTERNAL["notification-service"],
    ]
    _console_port_refuses(gateway, refused)


def _console_port_refuses(gateway: dict[str, int], paths: list[str]) -> None:
    """A 404 from the gateway itself: neither passed to a service nor the console's page."""
    for path in paths:
        for method in ("GET", "POST"):
            status, body = request(gateway["health"], path, method)
            assert status == 404, (method, path, status)
            assert "service" not in body, (method, path)
            assert body != INDEX, (method, path)


def test_the_console_port_passes_websockets_to_notification_service(
    gateway: dict[str, int],
) -> None:
    with socket.create_connection(("127.0.0.1", gateway["health"]), timeout=5) as sock:
        sock.sendall(
            b"GET /ws/42 HTTP/1.1\r\nHost: erp\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )
        received = b""
        while b"upgraded by" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    assert received.startswith(b"HTTP/1.1 101")
    assert b"upgraded by notification-service" in received


def test_the_console_port_refuses_jaeger_s_ui_which_has_no_sign_in(
    gateway: dict[str, int],
) -> None:
    """Its traces carry request and employee ids and comments: a 404, neither passed on nor
    answered with the console's index.html, however spelt."""
    refused = [
        "/jaeger/",
        "/jaeger/search?service=approval-request-service&lookback=2d",
        "/jaeger/api/services",
        "/jaeger/api/traces/4bf92f3577b34da6a3ce929d0e0e4736",
        "//jaeger/api/services",
        "/%6Aaeger/api/services",
        "/static/../jaeger/api/services",
    ]
    _console_port_refuses(gateway, refused)


def test_the_console_port_logs_method_and_path_only(
    gateway: dict[str, int], gateway_dir: Path
) -> None:
    sent = [
        (f"/employees/1?token={SECRET}", {"Authorization": f"Bearer {SECRET}"}),
        ("/approvals?status=pending", {"Referer": f"https://erp.example/?token={SECRET}"}),
    ]
    log = gateway_dir / "access.log"
    logged_before = log.stat().st_size
    for path, headers in sent:
        assert request(gateway["health"], path, headers=headers)[0] == 200, path
    deadline = time.monotonic() + 10
    while (lines := log.read_bytes()[logged_before:].decode()).count("\n") < len(sent):
        assert time.monotonic() < deadline, f"nginx logged fewer requests:\n{lines}"
        time.sleep(0.05)
    assert SECRET not in lines
    assert "status=pending" not in lines
    assert '"GET /employees/1" 200' in lines
    assert '"GET /approvals" 200' in lines


SECRET = "s3cr3t-t0k3n-value"


def test_the_access_log_carries_no_credential(gateway: dict[str, int], gateway_dir: Path) -> None:
    port = gateway["notification-service"]
    sent = [
        (f"/ws/1?token={SECRET}", {}),
        (f"/ws/1?after=3&token={SECRET}", {}),
        (f"/docs?access_token={SECRET}", {}),
        (f"/docs?%74oken={SECRET}", {}),
        ("/docs", {"Authorization": f"Bearer {SECRET}"}),
        ("/docs", {"Sec-WebSocket-Protocol": f"bearer, {SECRET}"}),
        ("/docs", {"Referer": f"https://erp.example/inbox?token={SECRET}"}),
        ("/docs?after=3", {}),
    ]
    log = gateway_dir / "access.log"
    logged_before = log.stat().st_size
    for path, headers in sent:
        assert request(port, path, headers=headers)[0] == 200, path
    deadline = time.monotonic() + 10
    while (lines := log.read_bytes()[logged_before:].decode()).count("\n") < len(sent):
        assert time.monotonic() < deadline, f"nginx logged fewer requests:\n{lines}"
        time.sleep(0.05)

    assert SECRET not in lines
    assert '"GET /ws/1?REDACTED HTTP/1.1" 200' in lines
    assert '"GET /docs?after=3 HTTP/1.1" 200' in lines
    assert '"https://erp.example/inbox?REDACTED"' in lines
