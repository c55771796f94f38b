"""Credentials out of what is recorded: log lines and span attributes never carry a bearer
token, whichever way a client passed it (``?token=``, ``Authorization``, a JWT anywhere)."""

from __future__ import annotations

import re

REDACTED = "REDACTED"

# A query parameter whose name ends in "token" (token, access_token, ...): its value runs to
# the next parameter, a space, a quote or an escape (the text may be JSON already).
_QUERY_TOKEN = re.compile(r"(?i)((?:^|(?<=[?&;]))[\w.~-]*token=)[^&;#\s\"'\\]+")
# The value of an Authorization header, however it was written out ("authorization:",
# "'authorization': b'...'", "Authorization=..."), scheme included.
_AUTHORIZATION = re.compile(
    r"(?i)(authorization['\"]?\s*[:=,]\s*(?:b?['\"])?)(?:[a-z]+\s+)?[^\s'\"\\,)}]+"
)
# "Bearer <token>", and the WebSocket subprotocol pair "bearer, <token>".
_BEARER = re.compile(r"(?i)(\bbearer[\s,]+)[\w.~+/=-]{16,}")
# A JWT wherever it appears: base64url of '{"' starts its header and its payload.
_JWT = re.compile(r"eyJ[\w-]*\.eyJ[\w-]*\.[\w-]*")


def redact(text: str) -> str:
    """``text`` with every credential it carries replaced by ``REDACTED``."""
    text = _AUTHORIZATION.sub(rf"\g<1>{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    text = _QUERY_TOKEN.sub(rf"\g<1>{REDACTED}", text)
    return _JWT.sub(REDACTED, text)
