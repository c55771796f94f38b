"""The gateway's nginx configuration (deploy/gateway/nginx.conf), run by a real nginx in
front of four stand-in services: each public port reaches its own service, WebSockets
pass, and the internal paths and /metrics never reach a service, however spelt."""

from __future__ import annotations

import http.client
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.deploy.deploy_model import APPS, REPO

CONFIG = REPO / "deploy" / "gateway" / "nginx.conf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class StandIn(BaseHTTPRequestHandler):
    """Answers with the service's name and the path it was asked for."""

    service = ""

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
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def gateway(
    tools: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, int]]:
    """nginx with the gateway config, its upstreams pointed at local stand-ins and its
    ports moved to free ones: {'employee-service': port, ..., 'health': port}."""
    servers = []
    config = CONFIG.read_text()
    for name in APPS:
        handler = type(f"StandIn_{name}", (StandIn,), {"service": name})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        config = config.replace(f"server {name}:8000;", f"server 127.0.0.1:{server.server_port};")
    ports = {name: free_port() for name in [*APPS, "health"]}
    for name, service in APPS.items():
        config = config.replace(f"listen {service.port};", f"listen 127.0.0.1:{ports[name]};")
    config = config.replace("listen 8080;", f"listen 127.0.0.1:{ports['health']};")
    work = tmp_path_factory.mktemp("gateway")
    config = config.replace("/tmp/", f"{work}/")
    assert not re.search(r"server [a-z-]+:8000;|listen \d+;", config), "every address rewritten"
    (work / "nginx.conf").write_text(config)
    nginx = subprocess.Popen(
        [
            str(tools["nginx"]),
            "-e",
            "stderr",
            "-p",
            str(work),
            "-c",
            str(work / "nginx.conf"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not _answers(ports["health"]):
            if nginx.poll() is not None:
                pytest.fail(f"nginx refused the gateway config: {nginx.stderr.read().decode()}")  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.1)
        yield ports
    finally:
        nginx.terminate()
        nginx.wait(10)
        for server in servers:
            server.shutdown()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def request(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    """Sends `path` exactly as written (no client-side normalisation)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read().decode()
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
    assert request(gateway["health"], "/employees")[0] == 404
