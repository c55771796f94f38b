"""The net itself: a provider that drifts from a committed pact must fail verification, with
Pact's mismatch report naming what drifted. Each test breaks one provider on purpose."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from contracts.providers.employee_states import employee_states
from contracts.providers.messages import handoff_producer, push_producer
from contracts.support import Provider, run, verifier_for
from services.approval_request import workflow
from services.notification.hub import build_message

pytestmark = pytest.mark.timeout(120)

HOP_HEADERS = {"connection", "content-length", "transfer-encoding", "keep-alive"}


def renamed(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {(new if k == old else k): renamed(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v, old, new) for v in value]
    return value


@pytest.fixture
def employee_renaming_a_field(employee_provider: Provider) -> Iterator[str]:
    """employee-service as if a release renamed ``employee_id`` to ``employeeId`` in its
    answers: a proxy in front of the real process rewrites every JSON response."""
    upstream = urlsplit(employee_provider.url)

    class Rename(BaseHTTPRequestHandler):
        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=10)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
            connection.request(self.command, self.path, body=body or None, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            if answer.getheader("content-type", "").startswith("application/json") and payload:
                payload = orjson.dumps(renamed(orjson.loads(payload), "employee_id", "employeeId"))
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in HOP_HEADERS:
                    self.send_header(key, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            connection.close()

        do_GET = do_POST = _forward

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Rename)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_renaming_a_response_field_fails_verification(
    employee_provider: Provider, employee_renaming_a_field: str, service_authorization: str
) -> None:
    verifier = (
        verifier_for(employee_provider.name)
        .add_transport(url=employee_renaming_a_field)
        .state_handler(employee_states(employee_provider, service_authorization))
        .add_custom_header("Authorization", service_authorization)
    )

    passed, report = run(verifier)

    assert not passed
    assert "employee_id" in report, report


def test_dropping_a_field_from_the_handoff_message_fails_verification(
    approval_request_provider: Provider, approvals_collection: Any
) -> None:
    def without_title(doc: dict[str, Any]) -> dict[str, Any]:
        message = workflow.handoff_message(doc)
        del message["title"]
        return message

    verifier = (
        verifier_for(approval_request_provider.name)
        .add_transport(url=approval_request_provider.url)
        .message_handler(handoff_producer(approvals_collection, build=without_title))
        .state_handler(approval_request_provider.states_url, body=True)
        .filter(description="hand-off")
    )

    passed, report = run(verifier)

    assert not passed
    assert "title" in report, report


def test_dropping_created_at_from_the_pushed_message_fails_verification(
    notification_provider: Provider,
) -> None:
    def without_created_at(fields: Any, **options: Any) -> dict[str, Any]:
        message = build_message(fields, **options)
        del message["createdAt"]
        return message

    verifier = (
        verifier_for(notification_provider.name)
        .add_transport(url=notification_provider.url)
        .message_handler(push_producer(build=without_created_at))
        .filter(description="pushed")
    )

    passed, report = run(verifier)

    assert not passed
    assert "createdAt" in report, report
