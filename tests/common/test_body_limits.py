"""The request body limit (``<PREFIX>_MAX_BODY_BYTES``, 65536 on the test stack) on a real
service process: a body over it is a 413 whether it announced its size or came chunked."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import orjson

from tests.support.auth import as_admin

LIMIT = 64 * 1024
TOO_LARGE = {"detail": f"Request body too large (limit {LIMIT} bytes)"}


async def chunks(body: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def test_a_chunked_body_over_the_limit_is_a_413(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    response = await client.post(
        f"{employee_url}/employees",
        content=chunks(b"x" * (LIMIT + 10_000)),
        headers={"content-type": "application/json"},
    )

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert response.json() == TOO_LARGE


async def test_a_body_over_the_limit_with_its_length_announced_is_a_413(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    response = await client.post(
        f"{employee_url}/employees",
        content=b"x" * (LIMIT + 1),
        headers={"content-type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json() == TOO_LARGE


async def test_a_chunked_body_within_the_limit_reaches_the_app(
    client: httpx.AsyncClient, employee_url: str
) -> None:
    body = orjson.dumps({"name": "청크", "department": "개발팀", "position": "사원"})

    response = await client.post(
        f"{employee_url}/employees",
        content=chunks(body, size=7),
        headers={"content-type": "application/json"},
    )

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "청크"


def endless_chunks() -> Iterator[bytes]:
    while True:
        yield b"1000\r\n" + b"x" * 0x1000 + b"\r\n"


def test_a_chunked_body_that_never_ends_is_answered_413_once_over_the_limit(
    employee_url: str,
) -> None:
    """The service answers as soon as the limit is passed, without waiting for the end of
    a body that has none (a raw socket: an HTTP client sends the whole body first)."""
    address = urlsplit(employee_url)
    head = (
        "POST /employees HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Authorization: {as_admin()['Authorization']}\r\n"
        "Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    )
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head.encode())
        sent = 0
        for chunk in endless_chunks():
            sock.sendall(chunk)
            sent += len(chunk)
            if sent > 2 * LIMIT:
                break
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            received = sock.recv(65536)
            assert received, f"connection closed after {answer!r}"
            answer += received

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.split()[1] == b"413"
    assert orjson.loads(rest.partition(b"\r\n\r\n")[2]) == TOO_LARGE
