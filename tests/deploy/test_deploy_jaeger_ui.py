"""Jaeger's UI behind basic auth (deploy/gateway/jaeger-ui.conf, stack.yml's jaeger-ui), run by
a real nginx in front of a stand-in Jaeger on loopback, with the user file and password
deploy/swarm/make-secrets.sh writes: /jaeger/ asks for them however spelt, the operator
reaches Jaeger without the credentials being passed on, /healthz answers anyone, every other
path is refused, and the access log never holds a credential."""

from __future__ import annotations

import base64
import http.client
import os
import pwd
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.deploy.deploy_model import REPO
from tests.deploy.gateway import start_gateway
from tests.support.stack import free_port

CONFIG = REPO / "deploy" / "gateway" / "jaeger-ui.conf"
MAKE_SECRETS = REPO / "deploy" / "swarm" / "make-secrets.sh"
USER = "operator"
PATHS = [
    "/jaeger/",
    "/jaeger/search?service=approval-request-service&lookback=2d",
    "/jaeger/static/index.js",
    "/jaeger/api/services",
    "/jaeger/api/traces/4bf92f3577b34da6a3ce929d0e0e4736",
]


class StandInJaeger(BaseHTTPRequestHandler):
    """Answers with the path it was asked for and keeps every request's headers."""

    received: ClassVar[list[http.client.HTTPMessage]] = []

    def do_GET(self) -> None:
        self.received.append(self.headers)
        body = f"jaeger {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Answer:
    status: int
    body: str
    challenge: str | None  # WWW-Authenticate
    location: str | None


@dataclass
class JaegerUi:
    port: int
    password: str
    work: Path
    received: list[http.client.HTTPMessage]

    @property
    def operator(self) -> str:
        return f"{USER}:{self.password}"

    def get(self, path: str, credentials: str | None = None) -> Answer:
        """`path` sent as written, with `credentials` ("user:password") as basic auth."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.putrequest("GET", path, skip_accept_encoding=True)
            if credentials is not None:
                token = base64.b64encode(credentials.encode()).decode()
                connection.putheader("Authorization", f"Basic {token}")
            connection.endheaders()
            response = connection.getresponse()
            body = response.read().decode()
            return Answer(
                response.status,
                body,
                response.getheader("WWW-Authenticate"),
                response.getheader("Location"),
            )
        finally:
            connection.close()


def local_config(upstream: int, port: int, work: Path) -> str:
    """jaeger-ui.conf with Jaeger at 127.0.0.1:`upstream`, listening on `port`, its
    temporary files and the secret's user file under `work`."""
    config = CONFIG.read_text()
    config, upstreams = re.subn(r"server jaeger:16686;", f"server 127.0.0.1:{upstream};", config)
    assert upstreams == 1, "jaeger-ui.conf names Jaeger once"
    config = config.replace("listen 16686;", f"listen 127.0.0.1:{port};")
    config = config.replace("/tmp/", f"{work}/").replace("/run/secrets/", f"{work}/secrets/")
    assert not re.search(r"listen \d+;|server [a-z-]+:\d+;", config), config
    if os.geteuid() == 0:
        # Started as root, nginx's workers would run as nobody, who may not read `work`.
        config = f"user {pwd.getpwuid(work.stat().st_uid).pw_name};\n{config}"
    return config


@pytest.fixture(scope="module")
def jaeger_ui(
    tools: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[JaegerUi]:
    work = tmp_path_factory.mktemp("jaeger-ui")
    subprocess.run(
        ["bash", str(MAKE_SECRETS)],
        env={**os.environ, "ERP_STACK_SECRETS": str(work / "secrets")},
        check=True,
        capture_output=True,
        timeout=60,
    )
    received: list[http.client.HTTPMessage] = []
    handler = type("StandInJaegerUi", (StandInJaeger,), {"received": received})
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = free_port()
    try:
        config = local_config(upstream.server_port, port, work)
        nginx = start_gateway(tools["nginx"], config, work, port)
        try:
            password = (work / "secrets" / "jaeger_ui_password").read_text()
            yield JaegerUi(port, password, work, received)
        finally:
            nginx.terminate()
            nginx.wait(10)
    finally:
        upstream.shutdown()


def test_the_user_file_holds_the_operator_s_sha_512_crypt_hash(jaeger_ui: JaegerUi) -> None:
    (line,) = (jaeger_ui.work / "secrets" / "jaeger_ui_htpasswd").read_text().splitlines()
    user, _, hashed = line.partition(":")
    assert user == USER
    assert hashed.startswith("$6$")
    assert jaeger_ui.password not in line


def test_jaeger_s_ui_asks_for_a_password_and_passes_nothing_without_it(
    jaeger_ui: JaegerUi,
) -> None:
    before = len(jaeger_ui.received)
    for path in PATHS:
        answer = jaeger_ui.get(path)
        assert answer.status == 401, path
        assert (answer.challenge or "").startswith("Basic realm="), path
    assert len(jaeger_ui.received) == before


def test_jaeger_s_ui_refuses_a_wrong_user_or_password(jaeger_ui: JaegerUi) -> None:
    wrong = [
        f"{USER}:{jaeger_ui.password[:-1]}",
        f"{USER}:{jaeger_ui.password.upper()}",
        f"{USER}:",
        f"admin:{jaeger_ui.password}",
        f"{USER.upper()}:{jaeger_ui.password}",
        jaeger_ui.password,
    ]
    before = len(jaeger_ui.received)
    for credentials in wrong:
        answer = jaeger_ui.get("/jaeger/api/services", credentials)
        assert answer.status == 401, credentials
        assert (answer.challenge or "").startswith("Basic realm="), credentials
    assert len(jaeger_ui.received) == before


def test_jaeger_s_ui_asks_for_the_password_however_the_path_is_spelt(
    jaeger_ui: JaegerUi,
) -> None:
    """nginx matches the normalised path, so no spelling of /jaeger/ slips past the check."""
    before = len(jaeger_ui.received)
    for path in ("//jaeger/api/services", "/%6Aaeger/api/services", "/x/../jaeger/api/services"):
        assert jaeger_ui.get(path).status == 401, path
    assert len(jaeger_ui.received) == before


def test_the_operator_reaches_jaeger_which_never_sees_the_credentials(
    jaeger_ui: JaegerUi,
) -> None:
    for path in PATHS:
        before = len(jaeger_ui.received)
        answer = jaeger_ui.get(path, jaeger_ui.operator)
        assert (answer.status, answer.body) == (200, f"jaeger {path}")
        (headers,) = jaeger_ui.received[before:]
        assert headers.get("Authorization") is None, path


def test_jaeger_ui_answers_its_health_check_without_credentials(jaeger_ui: JaegerUi) -> None:
    answer = jaeger_ui.get("/healthz")
    assert (answer.status, answer.body) == (200, "ok\n")


def test_jaeger_ui_refuses_every_other_path_even_to_the_operator(jaeger_ui: JaegerUi) -> None:
    before = len(jaeger_ui.received)
    for path in ("/", "/api/services", "/api/traces/1", "/search", "/metrics", "/jaegerx"):
        assert jaeger_ui.get(path).status == 404, path
        assert jaeger_ui.get(path, jaeger_ui.operator).status == 404, path
    assert len(jaeger_ui.received) == before


def test_jaeger_without_its_slash_redirects_to_the_ui_on_the_same_host_and_port(
    jaeger_ui: JaegerUi,
) -> None:
    before = len(jaeger_ui.received)
    answer = jaeger_ui.get("/jaeger")
    assert (answer.status, answer.location) == (301, "/jaeger/")
    assert len(jaeger_ui.received) == before


def test_the_access_log_holds_method_and_path_never_the_credentials(
    jaeger_ui: JaegerUi,
) -> None:
    log = jaeger_ui.work / "access.log"
    logged_before = log.stat().st_size
    wrong = f"{USER}:not-the-{jaeger_ui.password}"
    sent = [
        ("/jaeger/api/services?lookback=2d", jaeger_ui.operator, 200),
        ("/jaeger/search", wrong, 401),
        ("/jaeger/search", None, 401),
    ]
    for path, credentials, status in sent:
        assert jaeger_ui.get(path, credentials).status == status, path
    deadline = time.monotonic() + 10
    while (lines := log.read_bytes()[logged_before:].decode()).count("\n") < len(sent):
        assert time.monotonic() < deadline, f"nginx logged fewer requests:\n{lines}"
        time.sleep(0.05)
    assert '"GET /jaeger/api/services" 200' in lines
    assert lines.count('"GET /jaeger/search" 401') == 2
    assert "lookback" not in lines
    for secret in (jaeger_ui.password, wrong):
        assert secret not in lines
        assert base64.b64encode(secret.encode()).decode() not in lines
    assert base64.b64encode(jaeger_ui.operator.encode()).decode() not in lines
