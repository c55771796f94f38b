"""Credentials are cut out of log lines and span attributes, whichever way they were written."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from services.common.logging import JsonFormatter
from services.common.redaction import redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI3In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
OPAQUE = "opaque-credential-0123456789"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f'"WebSocket /ws/7?token={OPAQUE}" 403', '"WebSocket /ws/7?token=REDACTED" 403'),
        (f"/ws/7?after=3&token={OPAQUE}&x=1", "/ws/7?after=3&token=REDACTED&x=1"),
        (f"token={OPAQUE}", "token=REDACTED"),
        (f"/cb?access_token={OPAQUE}", "/cb?access_token=REDACTED"),
        (f"Authorization: Bearer {OPAQUE}", "Authorization: REDACTED"),
        ("Authorization: Basic dXNlcjpwYXNz", "Authorization: REDACTED"),
        (f"{{'authorization': 'Bearer {OPAQUE}'}}", "{'authorization': 'REDACTED'}"),
        (f"(b'authorization', b'Bearer {OPAQUE}')", "(b'authorization', b'REDACTED')"),
        (f"offered bearer, {OPAQUE}", "offered bearer, REDACTED"),
        (f"a JWT {JWT} anywhere", "a JWT REDACTED anywhere"),
    ],
)
def test_credentials_are_replaced(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Missing bearer token",
        "the bearer subprotocol",
        "after=3&employeeId=7",
        "a valid token for this employee is required",
    ],
)
def test_text_without_credentials_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_log_lines_carry_no_credential_in_message_fields_or_traceback() -> None:
    try:
        raise ValueError(f"rejected {JWT}")
    except ValueError:
        record = logging.LogRecord(
            "uvicorn.error",
            logging.INFO,
            __file__,
            1,
            '%s - "WebSocket %s" [accepted]',
            ("127.0.0.1:5000", f"/ws/7?token={OPAQUE}"),
            exc_info=sys.exc_info(),
        )
    record.headers = {"authorization": f"Bearer {OPAQUE}"}

    line = JsonFormatter("notification-service").format(record)

    assert OPAQUE not in line
    assert JWT not in line
    entry = json.loads(line)
    assert entry["message"] == '127.0.0.1:5000 - "WebSocket /ws/7?token=REDACTED" [accepted]'
    assert "REDACTED" in entry["exception"]
